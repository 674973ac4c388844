#!/usr/bin/env python3
"""A .sprig blob as a TFLite flatbuffer with the blob's own tensors, for LiteRT.

Used by tools/bench_peers.py (and runnable alone: `tflite_from_blob.py IN.sprig OUT.tflite`).
The blob is read as docs/blob-format.md lays it out; the TFLite model is written
with the object API of the schema that ai-edge-litert ships (schema_py_generated).

Both are NHWC and the blob's int8 scheme is TFLite's, so the mapping is direct:
  activations   [H][W][C] → [1,H,W,C], [N] → [1,N]; int8 with the blob's (scale, zero point)
  Conv2D        HWIO → OHWI, per-channel scales on axis 0; DepthwiseConv2D [KH][KW][C] → [1,KH,KW,C], axis 3
  Dense         FULLY_CONNECTED, W [Out][In] as stored (it flattens an NHWC input in the blob's order)
  bias          int32 as stored, scale s_x · s_w[c], zero point 0
  pads          SAME or VALID when the blob's pads are TFLite's; a conv's other pads become a PAD op
  GlobalAvgPool AVERAGE_POOL_2D over the whole map, then RESHAPE to [1,C]
  Quantize, Dequantize, Add, MaxPool2D, AvgPool2D, Reshape, Softmax: their TFLite ops
The requantization multipliers and shifts are not written: TFLite derives them
from the scales as Sprig's compiler does, XNNPACK requantizes in float.
"""
import os, sys

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tfl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sprig_blob import Blob

def same_pads(size, kernel, stride):
    """TFLite's SAME padding (before, after) along one axis."""
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Writer:
    def __init__(self, blob):
        self.blob = blob
        self.model = tfl.ModelT()
        self.model.version = 3
        self.model.operatorCodes, self.model.buffers = [], [tfl.BufferT()]
        self.graph = tfl.SubGraphT()
        self.graph.tensors, self.graph.operators = [], []
        self.codes = {}
        self.mapped = {}

    def buffer(self, array):
        b = tfl.BufferT()
        b.data = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8)
        self.model.buffers.append(b)
        return len(self.model.buffers) - 1

    def tensor(self, name, shape, dtype, data=None, scales=None, zeros=None, axis=0):
        t = tfl.TensorT()
        t.name, t.shape = name, list(shape)
        t.type = {np.float32: tfl.TensorType.FLOAT32, np.int8: tfl.TensorType.INT8,
                  np.int32: tfl.TensorType.INT32}[dtype]
        t.buffer = 0 if data is None else self.buffer(data.astype(dtype))
        if scales is not None:
            q = tfl.QuantizationParametersT()
            q.scale, q.zeroPoint, q.quantizedDimension = list(map(float, scales)), list(map(int, zeros)), axis
            t.quantization = q
        self.graph.tensors.append(t)
        return len(self.graph.tensors) - 1

    def activation(self, t):
        """The TFLite tensor of blob arena tensor `t` (made on first use)."""
        if t not in self.mapped:
            info = self.blob.tensors[t]
            shape = [1] + info["dims"] if len(info["dims"]) == 3 else [1, int(np.prod(info["dims"]))]
            q = info["quant"]
            self.mapped[t] = self.tensor(f"t{t}", shape, info["dtype"],
                                         scales=[q[0][0]] if q else None, zeros=[q[0][1]] if q else None)
        return self.mapped[t]

    def op(self, name, code, version, inputs, outputs, options_type=0, options=None):
        key = (code, version)
        if key not in self.codes:
            c = tfl.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), version
            self.model.operatorCodes.append(c)
            self.codes[key] = len(self.model.operatorCodes) - 1
        o = tfl.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = self.codes[key], inputs, outputs
        o.builtinOptionsType, o.builtinOptions = options_type, options
        self.graph.operators.append(o)

    def weights(self, i, op, int8):
        """The weight and bias tensors of a Dense, Conv2D or DepthwiseConv2D op."""
        b = self.blob
        w = op["inputs"][1]
        data = b.constant(w)
        if op["op"] == "conv2d":
            data, axis = data.transpose(3, 0, 1, 2), 0
        elif op["op"] == "depthwise":
            data, axis = data.reshape([1] + list(data.shape)), 3
        else:
            axis = 0
        channels = data.shape[axis]
        wq = b.tensors[w]["quant"]
        scales = [wq[c if len(wq) > 1 else 0][0] for c in range(channels)] if int8 else None
        wt = self.tensor(f"w{i}", data.shape, data.dtype.type, data, scales,
                         [0] * channels if int8 else None, axis)
        # An absent bias becomes zeros: some TFLite kernels insist on the third input.
        bias = op["inputs"][2] if len(op["inputs"]) > 2 else -1
        values = b.constant(bias) if bias >= 0 else np.zeros(channels, np.int32 if int8 else np.float32)
        sx = b.tensors[op["inputs"][0]]["quant"][0][0] if int8 else None
        bt = self.tensor(f"b{i}", [channels], values.dtype.type, values,
                         [np.float32(sx) * np.float32(s) for s in scales] if int8 else None,
                         [0] * channels if int8 else None, 0)
        return [wt, bt]

    def padding(self, i, x, xt, p, kh, kw, allow_pad):
        """(TFLite padding, input tensor): SAME or VALID, or a PAD op in front when allowed."""
        info = self.blob.tensors[x]
        h, w = info["dims"][0], info["dims"][1]
        sh, sw, top, left, bottom, right = p
        if (top, left, bottom, right) == (0, 0, 0, 0):
            return tfl.Padding.VALID, xt
        if same_pads(h, kh, sh) == (top, bottom) and same_pads(w, kw, sw) == (left, right):
            return tfl.Padding.SAME, xt
        if not allow_pad:
            raise ValueError(f"op {i}: pool pads {top, left, bottom, right} are neither SAME nor VALID")
        q = info["quant"]
        padded = self.tensor(f"pad{i}", [1, h + top + bottom, w + left + right, info["dims"][2]], info["dtype"],
                             scales=[q[0][0]] if q else None, zeros=[q[0][1]] if q else None)
        pads = self.tensor(f"pads{i}", [4, 2], np.int32, np.array([[0, 0], [top, bottom], [left, right], [0, 0]]))
        self.op("pad", tfl.BuiltinOperator.PAD, 2 if q else 1, [xt, pads], [padded],
                tfl.BuiltinOptions.PadOptions, tfl.PadOptionsT())
        return tfl.Padding.VALID, padded

    def reshape(self, i, xt, yt, n):
        shape = self.tensor(f"shape{i}", [2], np.int32, np.array([1, n]))
        opts = tfl.ReshapeOptionsT(); opts.newShape = [1, n]
        self.op("reshape", tfl.BuiltinOperator.RESHAPE, 1, [xt, shape], [yt], tfl.BuiltinOptions.ReshapeOptions, opts)

    def convert(self):
        b = self.blob
        acts = {0: tfl.ActivationFunctionType.NONE, 1: tfl.ActivationFunctionType.RELU,
                2: tfl.ActivationFunctionType.RELU6}
        for i, op in enumerate(b.ops):
            x, y = op["inputs"][0], op["output"]
            int8 = b.tensors[x]["dtype"] is np.int8
            xt, yt, p, act = self.activation(x), self.activation(y), op["params"], acts[op["act"]]
            kind = op["op"]
            if kind in ("conv2d", "depthwise"):
                w, bias = self.weights(i, op, int8)
                kh, kw = b.tensors[op["inputs"][1]]["dims"][:2]
                pad, xt = self.padding(i, x, xt, p[:6], kh, kw, allow_pad=True)
                if kind == "conv2d":
                    o = tfl.Conv2DOptionsT(); t = tfl.BuiltinOptions.Conv2DOptions; code = tfl.BuiltinOperator.CONV_2D
                else:
                    o = tfl.DepthwiseConv2DOptionsT(); o.depthMultiplier = 1
                    t = tfl.BuiltinOptions.DepthwiseConv2DOptions; code = tfl.BuiltinOperator.DEPTHWISE_CONV_2D
                o.padding, o.strideH, o.strideW, o.fusedActivationFunction = pad, p[0], p[1], act
                o.dilationHFactor = o.dilationWFactor = 1
                self.op(kind, code, 3 if int8 else 1, [xt, w, bias], [yt], t, o)
            elif kind == "dense":
                w, bias = self.weights(i, op, int8)
                o = tfl.FullyConnectedOptionsT(); o.fusedActivationFunction = act
                self.op(kind, tfl.BuiltinOperator.FULLY_CONNECTED, 4 if int8 else 1, [xt, w, bias], [yt],
                        tfl.BuiltinOptions.FullyConnectedOptions, o)
            elif kind in ("maxpool", "avgpool"):
                pad, xt = self.padding(i, x, xt, [p[2], p[3], p[4], p[5], p[6], p[7]], p[0], p[1], allow_pad=False)
                o = tfl.Pool2DOptionsT()
                o.padding, o.strideH, o.strideW, o.filterHeight, o.filterWidth = pad, p[2], p[3], p[0], p[1]
                o.fusedActivationFunction = act
                code = tfl.BuiltinOperator.MAX_POOL_2D if kind == "maxpool" else tfl.BuiltinOperator.AVERAGE_POOL_2D
                self.op(kind, code, 2 if int8 else 1, [xt], [yt], tfl.BuiltinOptions.Pool2DOptions, o)
            elif kind == "gap":
                h, w, c = b.tensors[x]["dims"]
                q = b.tensors[x]["quant"]
                pooled = self.tensor(f"gap{i}", [1, 1, 1, c], b.tensors[y]["dtype"],
                                     scales=[q[0][0]] if q else None, zeros=[q[0][1]] if q else None)
                o = tfl.Pool2DOptionsT()
                o.padding, o.strideH, o.strideW, o.filterHeight, o.filterWidth = tfl.Padding.VALID, 1, 1, h, w
                o.fusedActivationFunction = act
                self.op(kind, tfl.BuiltinOperator.AVERAGE_POOL_2D, 2 if int8 else 1, [xt], [pooled],
                        tfl.BuiltinOptions.Pool2DOptions, o)
                self.reshape(i, pooled, yt, c)
            elif kind == "add":
                o = tfl.AddOptionsT(); o.fusedActivationFunction = act
                self.op(kind, tfl.BuiltinOperator.ADD, 2 if int8 else 1, [xt, self.activation(op["inputs"][1])], [yt],
                        tfl.BuiltinOptions.AddOptions, o)
            elif kind == "reshape":
                self.reshape(i, xt, yt, int(np.prod(b.tensors[y]["dims"])))
            elif kind == "softmax":
                o = tfl.SoftmaxOptionsT(); o.beta = 1.0
                self.op(kind, tfl.BuiltinOperator.SOFTMAX, 2 if int8 else 1, [xt], [yt], tfl.BuiltinOptions.SoftmaxOptions, o)
            elif kind == "quantize":
                self.op(kind, tfl.BuiltinOperator.QUANTIZE, 2, [xt], [yt])
            elif kind == "dequantize":
                self.op(kind, tfl.BuiltinOperator.DEQUANTIZE, 2, [xt], [yt])
            else:
                raise ValueError(f"op {i}: {kind} is not converted to TFLite")
        self.graph.inputs = [self.activation(t) for role, t, _, _ in b.io if role == 0]
        self.graph.outputs = [self.activation(t) for role, t, _, _ in b.io if role == 1]
        self.model.subgraphs = [self.graph]
        self.model.description = "sprig"
        builder = flatbuffers.Builder(1024)
        builder.Finish(self.model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def tflite_from_blob(path):
    return Writer(Blob(open(path, "rb").read())).convert()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: tflite_from_blob.py IN.sprig OUT.tflite")
    open(sys.argv[2], "wb").write(tflite_from_blob(sys.argv[1]))
