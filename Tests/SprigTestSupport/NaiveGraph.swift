// A naive whole-graph evaluator: runs a validated Model op by op with the
// naive reference kernels (Double for f32, Int64 for int8). Values are kept
// per tensor, so a test can compare every intermediate tensor with the
// runtime's and name the one that differs.

import Foundation
import SprigRuntime

/// The value of one tensor: reals for f32, integers for i8.
public enum NaiveValue {
    case real([Double])
    case int8([Int8])

    public var reals: [Double] {
        switch self {
        case .real(let v): return v
        case .int8(let v): return v.map(Double.init)
        }
    }
}

public enum NaiveGraph {
    /// Evaluates `model` on one 8-bit image; returns every arena tensor's value by index.
    public static func run(_ model: Model, pixels: [UInt8]) -> [Int: NaiveValue] {
        var values: [Int: NaiveValue] = [:]
        guard let entry = model.input(0) else { return values }
        let inputInfo = model.tensor(entry.tensor)
        let normalised = pixels.map { (Float($0) / 255 - entry.mean) / entry.std }
        switch inputInfo.dtype {
        case .i8:
            let q = model.quant(inputInfo, 0)
            values[entry.tensor] = .int8(Naive.quantize(normalised, scale: q.scale, zeroPoint: q.zeroPoint))
        default:
            values[entry.tensor] = .real(normalised.map(Double.init))
        }
        for o in 0..<model.opCount {
            let op = model.op(o)
            values[op.output] = evaluate(model, op, values)
        }
        return values
    }

    static func floats(_ model: Model, _ t: Int, _ values: [Int: NaiveValue]) -> [Float] {
        let info = model.tensor(t)
        if info.storage == .constant {
            let b = model.constantBytes(info)
            return (0..<info.elementCount).map { b.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
        }
        return (values[t]?.reals ?? []).map { Float($0) }
    }

    static func int8s(_ model: Model, _ t: Int, _ values: [Int: NaiveValue]) -> [Int8] {
        let info = model.tensor(t)
        if info.storage == .constant {
            return model.constantBytes(info).map { Int8(bitPattern: $0) }
        }
        if case .int8(let v)? = values[t] { return v }
        return []
    }

    static func int32s(_ model: Model, _ t: Int) -> [Int32] {
        let info = model.tensor(t)
        let b = model.constantBytes(info)
        return (0..<info.elementCount).map { b.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self) }
    }

    static func window(_ x: TensorInfo, _ y: TensorInfo, kernel: (Int, Int), _ p: [Int32]) -> Window2D {
        Window2D(inputHeight: x.dims.0, inputWidth: x.dims.1, inputChannels: x.dims.2,
                 outputHeight: y.dims.0, outputWidth: y.dims.1, outputChannels: y.dims.2,
                 kernelHeight: kernel.0, kernelWidth: kernel.1, strideHeight: Int(p[0]), strideWidth: Int(p[1]),
                 padTop: Int(p[2]), padLeft: Int(p[3]))
    }

    static func evaluate(_ m: Model, _ op: OpInfo, _ v: [Int: NaiveValue]) -> NaiveValue {
        let x = m.tensor(op.inputs.0), y = m.tensor(op.output)
        let params = (0..<8).map { op.param($0) }
        let q8 = x.dtype == .i8
        func requant() -> NaiveRequant {
            let q = m.quant(y, 0)
            let (lo, hi) = clampQ8(op.activation, q)
            return NaiveRequant(multipliers: int32s(m, op.inputs.3), shifts: int32s(m, op.inputs.4),
                                outputZeroPoint: q.zeroPoint, clampMin: lo, clampMax: hi)
        }
        switch op.opcode {
        case .dense:
            let w = m.tensor(op.inputs.1)
            if q8 {
                return .int8(Naive.denseQ8(input: int8s(m, op.inputs.0, v), inputZeroPoint: m.quant(x, 0).zeroPoint,
                                           weights: int8s(m, op.inputs.1, v), bias: op.inputs.2 >= 0 ? int32s(m, op.inputs.2) : nil,
                                           inputCount: w.dims.1, outputCount: w.dims.0, requant: requant()))
            }
            return .real(Naive.dense(input: floats(m, op.inputs.0, v), weights: floats(m, op.inputs.1, v),
                                     bias: op.inputs.2 >= 0 ? floats(m, op.inputs.2, v) : nil,
                                     inputCount: w.dims.1, outputCount: w.dims.0, clamp: clampF32(op.activation)))
        case .conv2d, .depthwiseConv2d:
            let w = m.tensor(op.inputs.1)
            let win = window(x, y, kernel: (w.dims.0, w.dims.1), params)
            let dw = op.opcode == .depthwiseConv2d
            if q8 {
                let xs = int8s(m, op.inputs.0, v), ws = int8s(m, op.inputs.1, v)
                let bs = op.inputs.2 >= 0 ? int32s(m, op.inputs.2) : nil
                let zp = m.quant(x, 0).zeroPoint
                return .int8(dw ? Naive.depthwiseConv2dQ8(input: xs, inputZeroPoint: zp, weights: ws, bias: bs, window: win, requant: requant())
                                : Naive.conv2dQ8(input: xs, inputZeroPoint: zp, weights: ws, bias: bs, window: win, requant: requant()))
            }
            let xs = floats(m, op.inputs.0, v), ws = floats(m, op.inputs.1, v)
            let bs = op.inputs.2 >= 0 ? floats(m, op.inputs.2, v) : nil
            return .real(dw ? Naive.depthwiseConv2d(input: xs, weights: ws, bias: bs, window: win, clamp: clampF32(op.activation))
                            : Naive.conv2d(input: xs, weights: ws, bias: bs, window: win, clamp: clampF32(op.activation)))
        case .maxPool2d, .avgPool2d:
            let win = window(x, y, kernel: (Int(params[0]), Int(params[1])), Array(params[2...]))
            let maxPool = op.opcode == .maxPool2d
            if q8 {
                let xs = int8s(m, op.inputs.0, v)
                return .int8(maxPool ? Naive.maxPool2dQ8(input: xs, window: win) : Naive.avgPool2dQ8(input: xs, window: win))
            }
            let xs = floats(m, op.inputs.0, v)
            return .real(maxPool ? Naive.maxPool2d(input: xs, window: win) : Naive.avgPool2d(input: xs, window: win))
        case .globalAveragePool:
            if q8 {
                return .int8(Naive.globalAveragePoolQ8(input: int8s(m, op.inputs.0, v), height: x.dims.0, width: x.dims.1, channels: x.dims.2))
            }
            return .real(Naive.globalAveragePool(input: floats(m, op.inputs.0, v), height: x.dims.0, width: x.dims.1, channels: x.dims.2))
        case .add:
            let b = m.tensor(op.inputs.1)
            if q8 {
                let q = m.quant(y, 0)
                let (lo, hi) = clampQ8(op.activation, q)
                let p = AddQ8Params(aZeroPoint: m.quant(x, 0).zeroPoint, bZeroPoint: m.quant(b, 0).zeroPoint,
                                    outputZeroPoint: q.zeroPoint, leftShift: params[0], aMultiplier: params[1],
                                    aShift: params[2], bMultiplier: params[3], bShift: params[4],
                                    outputMultiplier: params[5], outputShift: params[6], clampMin: lo, clampMax: hi)
                return .int8(Naive.addQ8(a: int8s(m, op.inputs.0, v), b: int8s(m, op.inputs.1, v), params: p))
            }
            return .real(Naive.add(a: floats(m, op.inputs.0, v), b: floats(m, op.inputs.1, v), clamp: clampF32(op.activation)))
        case .reshape:
            return v[op.inputs.0] ?? .real([])
        case .softmax:
            if q8 { return .int8(Naive.softmaxQ8(input: int8s(m, op.inputs.0, v), expTable: int32s(m, op.inputs.1))) }
            return .real(Naive.softmax(floats(m, op.inputs.0, v)))
        case .quantize:
            let q = m.quant(y, 0)
            return .int8(Naive.quantize(floats(m, op.inputs.0, v), scale: q.scale, zeroPoint: q.zeroPoint))
        case .dequantize:
            let q = m.quant(x, 0)
            return .real(Naive.dequantize(int8s(m, op.inputs.0, v), scale: q.scale, zeroPoint: q.zeroPoint))
        case .l2Normalize:
            return .real(Naive.l2Normalize(floats(m, op.inputs.0, v)))
        }
    }
}
