// Post-training int8 quantization of a Float32 network description.
//
// The TFLite int8 scheme (docs/blob-format.md, "int8 arithmetic"):
//   weights      symmetric per output channel: s_w[c] = max|W[c]| / 127, zero point 0
//   activations  asymmetric per tensor from calibrated [min, max] (0 always inside)
//   bias         int32 with scale s_in · s_w[c], zero point 0
//   requant      M[c] = s_in · s_w[c] / s_out, stored as a Q31 multiplier and a shift
// The f32 input is kept, followed by a Quantize op; the f32 outputs are
// produced by Dequantize ops, so a q8 blob has the same interface as its f32 twin.

import SprigRuntime
import SprigTrain
import SprigWriter

/// Errors of the quantizer, each naming the op or tensor at fault.
public enum QuantizeError: Error, Equatable, CustomStringConvertible {
    case missingRange(tensor: String)
    case unsupported(op: String)
    case notFloat(tensor: String)
    case tooFewLayers(requested: Int, available: Int)

    public var description: String {
        switch self {
        case .tooFewLayers(let r, let a):
            return "a Float32 tail of \(r) layers before the classifier was asked for, but the network has \(a) "
                + "Dense/Conv2D/DepthwiseConv2D layers before it"
        case .missingRange(let t): return "no calibration range for activation '\(t)'"
        case .unsupported(let op): return "op \(op) cannot be quantized to int8"
        case .notFloat(let t): return "tensor '\(t)' is not Float32"
        }
    }
}

/// Builds the int8 twin of a Float32 network description.
///
/// - Parameters:
///   - source: a network whose tensors are all f32.
///   - ranges: the calibrated range of every arena tensor of `source`, by index.
///   - floatLayers: L > 0 keeps the last L Dense/Conv2D/DepthwiseConv2D layers
///     before the classifier, the classifier, and every op from the first of
///     them on in Float32 (a mixed blob): a Dequantize hands them their int8
///     inputs. The device's `last` method with L layers trains exactly these
///     (`BackboneSegment`), which it can only do in Float32.
///   - floatClassifier: keeps the classifier (the last Dense/Conv2D/DepthwiseConv2D op),
///     the ops between it and the layer before it (a global average pool, a reshape) and
///     every op after it in Float32, behind a Dequantize of the last int8 layer's output.
///     The pooled features then keep the precision of their average, and the logits are
///     not rounded to 256 steps, where two near classes tie and the argmax takes the
///     first (docs/method.md, "A Float32 classifier"). Implied by `floatLayers` > 0.
/// - Returns: a description whose ops run in int8 between a Quantize after the
///   input and a Dequantize before each output (or before the Float32 tail).
public func quantizeNetwork(_ source: BlobBuilder, ranges: [Int: ActivationRange],
                            floatLayers: Int = 0, floatClassifier: Bool = false) throws(QuantizeError) -> BlobBuilder {
    // Parameterised ops counted back from the classifier that stay Float32.
    let floatOps = floatLayers > 0 ? floatLayers + 1 : (floatClassifier ? 1 : 0)
    var out = BlobBuilder()
    out.finetune = source.finetune
    out.finetuneDetail = source.finetuneDetail
    for m in source.metadata { out.setMetadata(m.key, m.value) }
    // "mixed", as the device's tuned blobs with a Float32 classifier say.
    out.setMetadata("precision", floatOps > 0 ? "mixed" : "q8")
    var quant: [Int: QuantParams] = [:]
    var mapped: [Int: Int] = [:]  // source arena tensor -> its int8 tensor in `out`

    func activation(_ t: Int) throws(QuantizeError) -> QuantParams {
        if let q = quant[t] { return q }
        guard let r = ranges[t] else { throw .missingRange(tensor: source.tensors[t].name) }
        let q = activationQuant(r)
        quant[t] = q
        return q
    }

    // Inputs stay f32, then Quantize.
    for input in source.inputs {
        let s = source.tensors[input.tensor]
        guard s.dtype == .f32 else { throw .notFloat(tensor: s.name) }
        let f = out.addActivation(s.name, dtype: .f32, shape: s.shape)
        out.addInput(f, mean: input.mean, std: input.std)
        let q = try activation(input.tensor)
        let i8 = out.addActivation(s.name + ".q", dtype: .i8, shape: s.shape, quant: q)
        out.addOp(.quantize, inputs: [f], output: i8)
        mapped[input.tensor] = i8
    }

    // The Float32 tail: from the floatOps-th parameterised op counted back (the classifier is the first).
    var tailStart = source.ops.count
    if floatOps > 0 {
        var found = 0
        for o in source.ops.indices.reversed() where isParameterised(source.ops[o].opcode) {
            found += 1
            tailStart = o
            if found == floatOps { break }
        }
        guard found == floatOps else {
            if floatLayers > 0 { throw .tooFewLayers(requested: floatLayers, available: max(0, found - 1)) }
            throw .unsupported(op: "a Float32 classifier in a network without a Dense/Conv2D/DepthwiseConv2D layer")
        }
        // The classifier alone: its tail starts after the last backbone layer, so the pooling
        // (and reshape) between them also runs in Float32. A global average pool in int8 rounds
        // the mean of its window to the step of a single value and loses what averaging gained.
        if floatLayers == 0 {
            tailStart = (source.ops.indices[..<tailStart].last { isParameterised(source.ops[$0].opcode) } ?? -1) + 1
        }
    }
    var mappedF32: [Int: Int] = [:]  // source tensor -> its f32 tensor in `out` (the tail's)

    // A tail op's input or parameter in Float32: a copied constant, a tail op's output,
    // or a Dequantize of the int8 tensor the head of the net wrote.
    func floatTensor(_ t: Int) throws(QuantizeError) -> Int {
        if t < 0 { return -1 }
        if let f = mappedF32[t] { return f }
        let s = source.tensors[t]
        let f: Int
        if s.storage == .constant {
            guard s.dtype == .f32 else { throw .notFloat(tensor: s.name) }
            f = out.addConstant(s.name, floats: floats(s.data), shape: s.shape)
        } else {
            guard let q = mapped[t] else { throw .unsupported(op: "the Float32 tail's input '\(s.name)'") }
            f = out.addActivation(s.name + ".f32", dtype: .f32, shape: s.shape)
            out.addOp(.dequantize, inputs: [q], output: f)
        }
        mappedF32[t] = f
        return f
    }

    for (index, op) in source.ops.enumerated() {
        let y = source.tensors[op.output]
        if index >= tailStart {
            var inputs: [Int] = []
            for t in op.inputs { inputs.append(try floatTensor(t)) }
            let f = out.addActivation(y.name, dtype: .f32, shape: y.shape)
            out.addOp(op.opcode, activation: op.activation, inputs: inputs, output: f, params: op.params)
            mappedF32[op.output] = f
            continue
        }
        let x = op.inputs[0]
        guard let xi8 = mapped[x] else { throw .unsupported(op: op.opcode.name.description) }
        let sx = try activation(x)
        // Shape-preserving ops keep the input's quantization.
        let keepsScale: Bool
        switch op.opcode {
        case .maxPool2d, .avgPool2d, .globalAveragePool, .reshape: keepsScale = true
        default: keepsScale = false
        }
        let sy: QuantParams
        if keepsScale {
            sy = sx
            quant[op.output] = sx
        } else if op.opcode == .softmax {
            sy = QuantParams(scale: 1.0 / 256, zeroPoint: -128)
            quant[op.output] = sy
        } else {
            sy = try activation(op.output)
        }
        let yi8 = out.addActivation(y.name, dtype: .i8, shape: y.shape, quant: sy)
        mapped[op.output] = yi8
        switch op.opcode {
        case .dense, .conv2d, .depthwiseConv2d:
            let w = source.tensors[op.inputs[1]]
            guard w.dtype == .f32 else { throw .notFloat(tensor: w.name) }
            let weights = floats(w.data)
            let axis: Int
            switch op.opcode {
            case .dense: axis = 0
            case .conv2d: axis = 3
            default: axis = 2
            }
            let channels = w.shape[axis]
            // Per-channel symmetric scales, as quantization-aware training rounds them.
            let (q8, scales) = quantizeWeightsPerChannel(weights, shape: w.shape, axis: axis)
            let wq = out.addConstant(w.name, int8s: q8, shape: w.shape,
                                     quant: scales.map { QuantParams(scale: $0, zeroPoint: 0) },
                                     quantAxis: axis)
            var bias = -1
            if op.inputs.count > 2, op.inputs[2] >= 0 {
                let b = source.tensors[op.inputs[2]]
                let bf = floats(b.data)
                var bq = [Int32](repeating: 0, count: bf.count)
                for c in 0..<bf.count {
                    let v = (Double(bf[c]) / (Double(sx.scale) * Double(scales[c]))).rounded(.toNearestOrAwayFromZero)
                    bq[c] = Int32(max(-2_147_483_648, min(2_147_483_647, v)))
                }
                bias = out.addConstant(b.name, int32s: bq, shape: b.shape)
            }
            var multipliers = [Int32](repeating: 0, count: channels)
            var shifts = [Int32](repeating: 0, count: channels)
            for c in 0..<channels {
                let real = Double(sx.scale) * Double(scales[c]) / Double(sy.scale)
                let (m, s) = quantizeMultiplier(real)
                multipliers[c] = m
                shifts[c] = s
            }
            let mt = out.addConstant(w.name + ".multipliers", int32s: multipliers, shape: [channels])
            let st = out.addConstant(w.name + ".shifts", int32s: shifts, shape: [channels])
            out.addOp(op.opcode, activation: op.activation, inputs: [xi8, wq, bias, mt, st], output: yi8,
                      params: op.params)
        case .maxPool2d, .avgPool2d, .globalAveragePool, .reshape:
            out.addOp(op.opcode, inputs: [xi8], output: yi8, params: op.params)
        case .add:
            let b = op.inputs[1]
            guard let bi8 = mapped[b] else { throw .unsupported(op: "Add") }
            let sb = try activation(b)
            // TFLite's scheme: inputs rescaled to twice the larger input scale, 20 bits of headroom.
            let twiceMax = 2 * Double(max(sx.scale, sb.scale))
            let leftShift: Int32 = 20
            let (am, ash) = quantizeMultiplier(Double(sx.scale) / twiceMax)
            let (bm, bsh) = quantizeMultiplier(Double(sb.scale) / twiceMax)
            let (om, osh) = quantizeMultiplier(twiceMax / (Double(1 << leftShift) * Double(sy.scale)))
            out.addOp(.add, activation: op.activation, inputs: [xi8, bi8], output: yi8,
                      params: [leftShift, am, ash, bm, bsh, om, osh])
        case .softmax:
            var table = [Int32](repeating: 0, count: 256)
            table.withUnsafeMutableBufferPointer { makeSoftmaxExpTable(inputScale: sx.scale, into: $0.baseAddress!) }
            let tt = out.addConstant(y.name + ".exp_table", int32s: table, shape: [256])
            out.addOp(.softmax, inputs: [xi8, tt], output: yi8)
        case .quantize, .dequantize, .l2Normalize:  // L2Normalize is Float32 only
            throw .unsupported(op: op.opcode.name.description)
        }
    }

    // Outputs: Dequantize back to f32 (a Float32 tail's are already).
    for t in source.outputs {
        if let f = mappedF32[t] {
            out.addOutput(f)
            continue
        }
        guard let q = mapped[t] else { throw .unsupported(op: "output") }
        let s = source.tensors[t]
        let f = out.addActivation(s.name + ".f32", dtype: .f32, shape: s.shape)
        out.addOp(.dequantize, inputs: [q], output: f)
        out.addOutput(f)
    }
    return out
}

/// Little-endian f32 bytes to floats.
public func floats(_ bytes: [UInt8]) -> [Float] {
    var out = [Float](repeating: 0, count: bytes.count / 4)
    for i in 0..<out.count {
        let v = UInt32(bytes[4 * i]) | UInt32(bytes[4 * i + 1]) << 8 | UInt32(bytes[4 * i + 2]) << 16 | UInt32(bytes[4 * i + 3]) << 24
        out[i] = Float(bitPattern: v)
    }
    return out
}
