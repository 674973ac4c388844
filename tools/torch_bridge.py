"""The PyTorch bridge: a Sprig checkpoint as a torch.nn.Module, and back.

Run it through tools/torch-bridge (which makes its own venv with torch,
safetensors and numpy from PyPI), or import it from Python:

    import sys; sys.path.insert(0, "tools")
    import torch_bridge as tb
    model, description = tb.load_checkpoint("supernet.safetensors")   # an nn.Module
    ...                                                                # train or fine-tune in PyTorch
    tb.save_checkpoint(model, description, "tuned.safetensors")       # a Sprig checkpoint again

The module is built from the checkpoint's own description
(__metadata__["architecture"], docs/checkpoint-format.md): conv, depthwise,
batch_norm, relu, relu6, max_pool, avg_pool, global_average_pool, flatten,
dense, residual and inverted_residual, then the head. Its state_dict keys are
the checkpoint's tensor names ("0.weight", "3.body.1.running_var", ...), so the
module's structure mirrors Sprig's trainer network one to one.

Layouts (Sprig is channels-last, PyTorch channels-first):

    tensor              Sprig                 PyTorch
    Conv2D weight       [KH][KW][Cin][Cout]   [Cout][Cin][KH][KW]   (OIHW)
    Depthwise weight    [KH][KW][C]           [C][1][KH][KW]
    Dense weight        [Out][In]             [Out][In]             (unchanged)
    BatchNorm, biases   [C]                   [C]                   (unchanged)

The module takes N x C x H x W float input, normalised as the description says
((x/255 - mean[c]) / std[c]; see `images_to_input`). `flatten` flattens in
Sprig's channels-last order (it permutes to N x H x W x C first), so a Dense
after a flatten keeps Sprig's weights as they are. BatchNorm is PyTorch's
(eps 1e-5, momentum 0.1) and AvgPool excludes padding (count_include_pad=False),
as in Sprig. PyTorch's `num_batches_tracked` counters are not written back.
"""

import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch
from torch import nn
from safetensors.numpy import load_file, save_file
from safetensors import safe_open


class BridgeError(Exception):
    """A refusal, with the file and the field at fault in its message."""


# MARK: The description

def _layer(spec, place):
    """(kind, fields) of one layer of the description, with the documented defaults."""
    if isinstance(spec, str):
        if spec not in ("batch_norm", "relu", "relu6", "global_average_pool", "flatten"):
            raise BridgeError(f"{place}: unknown layer '{spec}'")
        return spec, {}
    if not isinstance(spec, dict) or len(spec) != 1:
        raise BridgeError(f"{place}: a layer is a string or an object with one key, found {spec!r}")
    kind, fields = next(iter(spec.items()))
    fields = dict(fields or {})
    if kind in ("conv", "depthwise"):
        fields.setdefault("kernel", 3)
        fields.setdefault("stride", 1)
        fields.setdefault("padding", fields["kernel"] // 2)
        fields.setdefault("bias", False)
    elif kind in ("max_pool", "avg_pool"):
        fields.setdefault("kernel", 2)
        fields.setdefault("stride", fields["kernel"])
        fields.setdefault("padding", 0)
    elif kind == "dense":
        fields.setdefault("bias", True)
    elif kind == "residual":
        fields.setdefault("shortcut", "identity")
        fields.setdefault("activation", "relu")
    elif kind == "inverted_residual":
        fields.setdefault("kernel", 3)
        fields.setdefault("stride", 1)
        fields.setdefault("residual", None)
    else:
        raise BridgeError(f"{place}: unknown layer '{kind}'")
    return kind, fields


class GlobalAveragePool(nn.Module):
    """[N][C][H][W] -> [N][C]."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


class ChannelsLastFlatten(nn.Module):
    """[N][C][H][W] -> [N][H*W*C] in Sprig's channels-last order; a flat input passes through."""

    def forward(self, x):
        return x.permute(0, 2, 3, 1).flatten(1) if x.dim() == 4 else x


class Residual(nn.Module):
    """activation(body(x) + shortcut(x)); an empty shortcut is the identity."""

    def __init__(self, body, shortcut, relu):
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.relu = relu

    def forward(self, x):
        y = self.body(x) + (self.shortcut(x) if len(self.shortcut) > 0 else x)
        return torch.relu(y) if self.relu else y


def _total_stride(specs):
    s = 1
    for i, spec in enumerate(specs):
        kind, f = _layer(spec, f"[{i}]")
        if kind in ("conv", "depthwise", "max_pool", "avg_pool", "inverted_residual"):
            s *= f["stride"]
        elif kind == "residual":
            s *= _total_stride(f["body"])
    return s


def _window(f, shape, place):
    h, w, c = shape
    k, s, p = f["kernel"], f["stride"], f["padding"]
    return ((h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1, c)


def _chain(specs, shape, place):
    """The layers of one chain as a list of modules, and the shape after them ((H, W, C) or (N,))."""
    out = []
    for i, spec in enumerate(specs):
        at = f"{place}[{i}]"
        kind, f = _layer(spec, at)
        if kind in ("conv", "depthwise", "batch_norm", "max_pool", "avg_pool", "global_average_pool",
                    "residual", "inverted_residual") and len(shape) != 3:
            raise BridgeError(f"{at} ({kind}): needs an [H][W][C] input, its input is flat {list(shape)}")
        if kind == "conv":
            out.append(nn.Conv2d(shape[2], f["filters"], f["kernel"], f["stride"], f["padding"], bias=f["bias"]))
            h, w, _ = _window(f, shape, at)
            shape = (h, w, f["filters"])
        elif kind == "depthwise":
            c = shape[2]
            out.append(nn.Conv2d(c, c, f["kernel"], f["stride"], f["padding"], groups=c, bias=f["bias"]))
            shape = _window(f, shape, at)
        elif kind == "batch_norm":
            out.append(nn.BatchNorm2d(shape[2], eps=1e-5, momentum=0.1))
        elif kind == "relu":
            out.append(nn.ReLU())
        elif kind == "relu6":
            out.append(nn.ReLU6())
        elif kind in ("max_pool", "avg_pool"):
            if 2 * f["padding"] > f["kernel"]:
                raise BridgeError(f"{at} ({kind}): padding {f['padding']} is more than half the kernel {f['kernel']}, "
                                  "which PyTorch's pooling does not allow")
            if kind == "max_pool":
                out.append(nn.MaxPool2d(f["kernel"], f["stride"], f["padding"]))
            else:
                out.append(nn.AvgPool2d(f["kernel"], f["stride"], f["padding"], count_include_pad=False))
            shape = _window(f, shape, at)
        elif kind == "global_average_pool":
            out.append(GlobalAveragePool())
            shape = (shape[2],)
        elif kind == "flatten":
            out.append(ChannelsLastFlatten())
            shape = (int(np.prod(shape)),)
        elif kind == "dense":
            if len(shape) != 1:
                raise BridgeError(f"{at} (dense): needs a flat input, its input is {list(shape)}")
            out.append(nn.Linear(shape[0], f["units"], bias=f["bias"]))
            shape = (f["units"],)
        elif kind == "residual":
            body, after = _chain(f["body"], shape, f"{at}.residual.body")
            shortcut = []
            if f["shortcut"] == "projection":
                shortcut = [nn.Conv2d(shape[2], after[2], 1, _total_stride(f["body"]), 0, bias=False),
                            nn.BatchNorm2d(after[2], eps=1e-5, momentum=0.1)]
            elif f["shortcut"] != "identity":
                raise BridgeError(f"{at} (residual): shortcut '{f['shortcut']}' is not identity or projection")
            out.append(Residual(nn.Sequential(*body), nn.Sequential(*shortcut), f["activation"] == "relu"))
            shape = after
        elif kind == "inverted_residual":
            c = shape[2]
            block = [{"conv": {"filters": f["expand"], "kernel": 1}}, "batch_norm", "relu6",
                     {"depthwise": {"kernel": f["kernel"], "stride": f["stride"]}}, "batch_norm", "relu6",
                     {"conv": {"filters": f["filters"], "kernel": 1}}, "batch_norm"]
            adds = f["residual"] if f["residual"] is not None else (f["stride"] == 1 and c == f["filters"])
            layers, after = _chain(block, shape, f"{at}.inverted_residual")
            if adds:
                out.append(Residual(nn.Sequential(*layers), nn.Sequential(), False))
            else:
                out.append(nn.Sequential(*layers))
            shape = after
    return out, shape


def build_module(description):
    """The nn.Module (an nn.Sequential, the head last) of a version-2 description (a dict)."""
    if description.get("version") != 2:
        raise BridgeError(f"__metadata__['architecture']: version {description.get('version')!r}; the bridge reads "
                          "version 2 (load and save the checkpoint with a current `sprig` to upgrade it)")
    i = description["input"]
    layers, shape = _chain(description["layers"], (i["height"], i["width"], i["channels"]), "layers")
    if len(shape) != 1:
        raise BridgeError(f"head: the layers end in {list(shape)}, not flat")
    layers.append(nn.Linear(shape[0], description["head"]["classes"], bias=True))
    return nn.Sequential(*layers)


def _module_kinds(model):
    """{tensor name: 'conv' | 'depthwise' | 'other'} for every entry of the state_dict."""
    kinds = {}
    for name, module in model.named_modules():
        prefix = name + "." if name else ""
        kind = "other"
        if isinstance(module, nn.Conv2d):
            kind = "depthwise" if module.groups > 1 else "conv"
        for key in module.state_dict(keep_vars=True).keys():
            if "." not in key:
                kinds[prefix + key] = kind
    return kinds


# MARK: Checkpoints

def _metadata(path):
    with safe_open(path, framework="numpy") as f:
        return dict(f.metadata() or {})


def read_sprig(path):
    """(tensors in Sprig's layouts as float32 numpy arrays, metadata) of a Sprig checkpoint."""
    metadata = _metadata(path)
    if "architecture" not in metadata:
        raise BridgeError(f"{path}: __metadata__ has no 'architecture' (not a Sprig checkpoint)")
    tensors = {k: v.astype(np.float32) if v.dtype != np.float32 else v for k, v in load_file(path).items()}
    return tensors, metadata


def to_torch_layout(name, value, kind):
    """One Sprig tensor in PyTorch's layout (see the table at the top)."""
    if kind == "conv" and name.endswith("weight"):
        return np.ascontiguousarray(value.transpose(3, 2, 0, 1))
    if kind == "depthwise" and name.endswith("weight"):
        return np.ascontiguousarray(value.transpose(2, 0, 1)[:, None, :, :])
    return value


def to_sprig_layout(name, value, kind):
    """One PyTorch tensor in Sprig's layout (the inverse of `to_torch_layout`)."""
    if kind == "conv" and name.endswith("weight"):
        return np.ascontiguousarray(value.transpose(2, 3, 1, 0))
    if kind == "depthwise" and name.endswith("weight"):
        return np.ascontiguousarray(value[:, 0, :, :].transpose(1, 2, 0))
    return value


def load_checkpoint(path):
    """(model, description) of a Sprig checkpoint: the module built from its description,
    every tensor loaded in PyTorch's layout (strict: missing, unexpected or mis-shaped
    tensors are errors naming the file and the tensor). The model is in eval mode."""
    tensors, metadata = read_sprig(path)
    description = json.loads(metadata["architecture"])
    model = build_module(description)
    kinds = _module_kinds(model)
    expected = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise BridgeError(f"{path}: tensors missing {missing}, unexpected {unexpected}")
    state = {}
    for name, target in expected.items():
        value = to_torch_layout(name, tensors[name], kinds[name])
        if tuple(value.shape) != tuple(target.shape):
            raise BridgeError(f"{path}: tensor '{name}' has shape {list(tensors[name].shape)} (as PyTorch's "
                              f"{list(value.shape)}), the description needs PyTorch's {list(target.shape)}")
        state[name] = torch.from_numpy(value.copy())
    model.load_state_dict(state, strict=False)
    model.eval()
    model.sprig_metadata = metadata
    return model, description


def save_checkpoint(model, description, path, metadata=None):
    """Writes `model` (built by `build_module(description)`) as a Sprig checkpoint: tensors
    in Sprig's layouts, F32, no num_batches_tracked; __metadata__ holds the description
    (and `metadata`, e.g. the original checkpoint's entries). Refuses NaN or infinite values."""
    kinds = _module_kinds(model)
    out = {}
    for name, value in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        array = value.detach().cpu().to(torch.float32).numpy()
        if not np.isfinite(array).all():
            raise BridgeError(f"{path}: tensor '{name}' holds NaN or infinite values; nothing written")
        out[name] = np.ascontiguousarray(to_sprig_layout(name, array, kinds[name]))
    meta = dict(metadata or getattr(model, "sprig_metadata", {}) or {})
    if "architecture" not in meta:
        meta["architecture"] = json.dumps(description, sort_keys=True, separators=(",", ":"))
    meta.setdefault("format", "sprig-checkpoint-2")
    tmp = path + ".tmp-torch-bridge"
    save_file(out, tmp, metadata=meta)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def write_torch(path_in, path_out):
    """A Sprig checkpoint as a safetensors file in PyTorch's layouts (OIHW), for
    `model.load_state_dict(safetensors.torch.load_file(path_out))` on `build_module`."""
    model, _ = load_checkpoint(path_in)
    meta = dict(model.sprig_metadata)
    meta["format"] = "sprig-torch-1"
    tensors = {k: v.numpy() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    save_file(tensors, path_out, metadata=meta)


def read_torch(path_in):
    """The model and description of a file written by `write_torch` (or by PyTorch, with the
    same names and the description in __metadata__['architecture'])."""
    meta = _metadata(path_in)
    if "architecture" not in meta:
        raise BridgeError(f"{path_in}: __metadata__ has no 'architecture'")
    description = json.loads(meta["architecture"])
    model = build_module(description)
    state = {k: torch.from_numpy(v.astype(np.float32)) for k, v in load_file(path_in).items()
             if not k.endswith("num_batches_tracked")}
    expected = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise BridgeError(f"{path_in}: tensors missing {missing}, unexpected {unexpected}")
    for name, target in expected.items():
        if tuple(state[name].shape) != tuple(target.shape):
            already = (" (its __metadata__ format is sprig-checkpoint-2: is it a Sprig checkpoint already? "
                       "from-torch takes PyTorch's layouts, as to-torch writes them)") if meta.get("format") == "sprig-checkpoint-2" else ""
            raise BridgeError(f"{path_in}: tensor '{name}' has shape {list(state[name].shape)}, the description needs "
                              f"{list(target.shape)} in PyTorch's layout{already}")
    model.load_state_dict(state, strict=False)
    meta["format"] = "sprig-checkpoint-2"
    model.sprig_metadata = meta
    return model, description


# MARK: Images

def read_idx(path):
    """The uint8 array of an IDX file (gzip-compressed or not)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise BridgeError(f"{path}: not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(dims)):
        raise BridgeError(f"{path}: {array.size} bytes of data, the dimensions {list(dims)} need {int(np.prod(dims))}")
    return array.reshape(dims)


def images_to_input(images, description):
    """uint8 images [N][H][W] or [N][H][W][C] -> the normalised float input [N][C][H][W]."""
    i = description["input"]
    x = images.astype(np.float32)
    if x.ndim == 3:
        x = x[..., None]
    mean = np.asarray(i["mean"], dtype=np.float32)
    std = np.asarray(i["std"], dtype=np.float32)
    x = (x / np.float32(255) - mean) / std
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


# MARK: Command line

def _cmd_to_torch(a):
    write_torch(a.checkpoint, a.out)
    print(f"{a.out}: PyTorch layout (OIHW), from {a.checkpoint}")


def _cmd_from_torch(a):
    model, description = read_torch(a.file)
    save_checkpoint(model, description, a.out)
    print(f"{a.out}: Sprig checkpoint, from {a.file}")


def _cmd_logits(a):
    model, description = load_checkpoint(a.checkpoint)
    images = read_idx(a.images)[: a.count]
    with torch.no_grad():
        logits = model(images_to_input(images, description)).numpy()
    result = {"file": a.checkpoint, "images": a.images, "count": int(len(images)),
              "argmax": logits.argmax(1).tolist()}
    if a.labels:
        labels = read_idx(a.labels)[: a.count].astype(np.int64)
        classes = description["head"].get("source_classes", list(range(logits.shape[1])))
        keep = np.isin(labels, classes)
        mapped = np.array([classes.index(l) for l in labels[keep]])
        result["accuracy"] = float((logits[keep].argmax(1) == mapped).mean()) if keep.any() else 0.0
        result["evaluated"] = int(keep.sum())
    if a.hex:
        for row in logits:
            print(" ".join(f"{struct.unpack('<I', struct.pack('<f', v))[0]:08x}" for v in row)
                  + f" argmax={int(row.argmax())}")
    else:
        result["logits"] = logits.tolist()
        print(json.dumps(result))


def _cmd_compare(a):
    ta, ma = read_sprig(a.first)
    tb, mb = read_sprig(a.second)
    names = sorted(set(ta) | set(tb))
    worst = 0.0
    identical = set(ta) == set(tb)
    for n in names:
        if n not in ta or n not in tb:
            print(f"{n}: only in {a.first if n in ta else a.second}")
            continue
        same = ta[n].shape == tb[n].shape and ta[n].tobytes() == tb[n].tobytes()
        identical &= same
        diff = float(np.abs(ta[n].astype(np.float64) - tb[n].astype(np.float64)).max()) if ta[n].shape == tb[n].shape else float("inf")
        worst = max(worst, diff)
        if a.verbose or not same:
            print(f"{n}: {list(ta[n].shape)} {'bit-identical' if same else f'max |difference| {diff:.3g}'}")
    same_description = json.loads(ma["architecture"]) == json.loads(mb["architecture"])
    print(f"{len(names)} tensors, {'all bit-identical' if identical else 'DIFFERENT'} (max |difference| {worst:.3g}); "
          f"descriptions {'equal' if same_description else 'DIFFERENT'}")
    return 0 if identical and same_description else 1


def main(argv=None):
    p = argparse.ArgumentParser(prog="tools/torch-bridge", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="docs/checkpoint-format.md, 'The PyTorch bridge', has the layouts and a worked round trip.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("to-torch", help="a Sprig checkpoint -> safetensors in PyTorch's layouts (OIHW)")
    s.add_argument("checkpoint")
    s.add_argument("--out", required=True)
    s.set_defaults(run=_cmd_to_torch)
    s = sub.add_parser("from-torch", help="safetensors in PyTorch's layouts (from to-torch, trained) -> a Sprig checkpoint")
    s.add_argument("file")
    s.add_argument("--out", required=True)
    s.set_defaults(run=_cmd_from_torch)
    s = sub.add_parser("logits", help="the torch module's outputs on IDX images (JSON, or --hex as sprig-edge run --logits)")
    s.add_argument("checkpoint")
    s.add_argument("images")
    s.add_argument("--labels", help="IDX labels (dataset classes): adds the accuracy over the checkpoint's classes")
    s.add_argument("--count", type=int, default=None)
    s.add_argument("--hex", action="store_true")
    s.set_defaults(run=_cmd_logits)
    s = sub.add_parser("compare", help="two Sprig checkpoints, tensor by tensor (exit 1 unless bit-identical)")
    s.add_argument("first")
    s.add_argument("second")
    s.add_argument("--verbose", action="store_true")
    s.set_defaults(run=_cmd_compare)
    a = p.parse_args(argv)
    try:
        return a.run(a) or 0
    except (BridgeError, OSError) as e:
        print(f"torch-bridge {a.command}: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # safetensors' and torch's own errors: one line, exit 1, no traceback
        print(f"torch-bridge {a.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
