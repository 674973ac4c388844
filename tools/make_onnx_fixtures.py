"""Writes the ONNX import fixtures; run through tools/make-onnx-fixtures.

Each model is defined here in PyTorch, randomly initialised from a fixed seed
(BatchNorm statistics and affine parameters set to non-trivial values so that
BN matters), exported with torch.onnx.export, and run by ONNX Runtime on fixed
uint8 images normalised as Sprig does: x = (p / 255 - mean[c]) / std[c].

Outputs, in the folder given (Tests/Fixtures/onnx):
  NAME.onnx               the exported model
  NAME-expected.txt       one line per image: the logits as float32 bit patterns (hex)
  rgb32-input.idx         8 seeded 32x32x3 images (IDX, 4 dims), for the MobileNet-style models
  rgb16-input.idx         8 seeded 16x16x3 images, for the residual net
The 28x28x1 model reads the first 8 images of Tests/Fixtures/ref-input.idx.
"""

import os
import struct
import sys

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn

out_dir = sys.argv[1]
os.makedirs(out_dir, exist_ok=True)
IMAGES = 8


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def write_idx(path, array):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, array.ndim]))
        f.write(struct.pack(">" + "I" * array.ndim, *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def randomize_bn(model, gen):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                m.bias.copy_(0.2 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.2 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=gen))


def conv_bn(cin, cout, k=3, stride=1, groups=1, act=None):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return layers


class CNN(nn.Module):
    """Like the `cnn` preset, smaller, with a Flatten into two Linear layers and an AvgPool."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn(1, 8, act=nn.ReLU), nn.MaxPool2d(2),
            *conv_bn(8, 12, act=nn.ReLU), nn.MaxPool2d(2),
            *conv_bn(12, 16, act=nn.ReLU), nn.AvgPool2d(2))
        self.fc1 = nn.Linear(16 * 3 * 3, 24)
        self.fc2 = nn.Linear(24, 5)

    def forward(self, x):
        x = torch.flatten(self.features(x), 1)
        return self.fc2(torch.relu(self.fc1(x)))


class InvertedResidual(nn.Module):
    def __init__(self, cin, expand, cout, stride):
        super().__init__()
        self.add = stride == 1 and cin == cout
        self.body = nn.Sequential(
            *conv_bn(cin, expand, k=1, act=nn.ReLU6),
            *conv_bn(expand, expand, k=3, stride=stride, groups=expand, act=nn.ReLU6),
            *conv_bn(expand, cout, k=1))

    def forward(self, x):
        y = self.body(x)
        return x + y if self.add else y


class MobileNet(nn.Module):
    """MobileNetV2-style: stem, inverted residuals (depthwise, ReLU6, adds), 1x1 conv, GAP, Linear."""

    def __init__(self, classes=4):
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn(3, 8, act=nn.ReLU6),
            InvertedResidual(8, 24, 8, 1),
            InvertedResidual(8, 24, 12, 2),
            InvertedResidual(12, 32, 12, 1),
            *conv_bn(12, 32, k=1, act=nn.ReLU6),
            nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Linear(32, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(*conv_bn(cin, cout, stride=stride, act=nn.ReLU), *conv_bn(cout, cout))
        self.shortcut = nn.Sequential() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    """A small residual net: stem, an identity block, a stride-2 block with a projection, GAP, Linear."""

    def __init__(self, classes=3):
        super().__init__()
        self.stem = nn.Sequential(*conv_bn(3, 8, act=nn.ReLU))
        self.blocks = nn.Sequential(BasicBlock(8, 8, 1), BasicBlock(8, 16, 2))
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.fc(x.reshape(x.shape[0], -1))


def export(model, name, shape, opset, images, mean, std, keep_bn=False):
    model.eval()
    dummy = torch.zeros((1,) + shape)
    path = os.path.join(out_dir, name + ".onnx")
    kwargs = dict(opset_version=opset, input_names=["input"], output_names=["logits"])
    # Keeping BatchNormalization nodes: TrainingMode.PRESERVE with the model in eval mode
    # skips the exporter's Conv+BN fusion; EVAL (the default) folds BN into the conv.
    kwargs["training"] = torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL
    try:
        torch.onnx.export(model, (dummy,), path, dynamo=False, **kwargs)
    except TypeError:
        torch.onnx.export(model, (dummy,), path, **kwargs)
    mean = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    # images: [N][H][W][C] uint8 → NCHW float, normalised as Sprig's input record does.
    x = images.astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255)
    x = ((x - mean) / std).astype(np.float32)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    lines = []
    for i in range(x.shape[0]):
        (y,) = session.run(None, {"input": x[i:i + 1]})
        with torch.no_grad():
            ref = model(torch.from_numpy(x[i:i + 1])).numpy()
        assert np.allclose(ref, y, rtol=1e-4, atol=1e-5), (name, ref, y)
        lines.append(" ".join("%08x" % v for v in y.astype(np.float32).reshape(-1).view(np.uint32)))
    with open(os.path.join(out_dir, name + "-expected.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("%s: opset %d, %d bytes, outputs %s" % (name, opset, os.path.getsize(path), y.shape))


torch.manual_seed(1)
gen = torch.Generator().manual_seed(2)
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
gray = read_idx(os.path.join(root, "Tests/Fixtures/ref-input.idx"))[:IMAGES][..., None]
rng = np.random.default_rng(3)
rgb32 = rng.integers(0, 256, size=(IMAGES, 32, 32, 3), dtype=np.uint8)
rgb16 = rng.integers(0, 256, size=(IMAGES, 16, 16, 3), dtype=np.uint8)
write_idx(os.path.join(out_dir, "rgb32-input.idx"), rgb32)
write_idx(os.path.join(out_dir, "rgb16-input.idx"), rgb16)

fmnist = dict(mean=[0.2860], std=[0.3530])
imagenet = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])

cnn = CNN()
randomize_bn(cnn, gen)
export(cnn, "cnn-opset13", (1, 28, 28), 13, gray, **fmnist)

mobilenet = MobileNet()
randomize_bn(mobilenet, gen)
export(mobilenet, "mobilenet-opset13", (3, 32, 32), 13, rgb32, **imagenet)
export(mobilenet, "mobilenet-bn-opset17", (3, 32, 32), 17, rgb32, keep_bn=True, **imagenet)

resnet = ResNet()
randomize_bn(resnet, gen)
export(resnet, "resnet-opset17", (3, 16, 16), 17, rgb16, **imagenet)
