// Lowering: trainer layers → a Float32 blob description.
//
//   Conv2D [+ BatchNorm2D] [+ ReLU | ReLU6]          → one Conv2D op, BN folded, activation fused
//   DepthwiseConv2D [+ BatchNorm2D] [+ ReLU | ReLU6] → one DepthwiseConv2D op, likewise
//   Dense  [+ BatchNorm2D] [+ ReLU | ReLU6]          → one Dense op, likewise
//   MaxPool2D / AvgPool2D             → the pool ops (symmetric padding)
//   GlobalAveragePool                 → GlobalAveragePool ([H][W][C] → [C])
//   Flatten                           → Reshape to [H·W·C] (channels-last order, as the trainer flattens)
//   residual(body, shortcut) [+ ReLU | ReLU6] → body and shortcut from the same input, then Add with
//                                       the activation fused (none: an inverted residual)
//
// BatchNorm folding, per output channel c, with eval statistics μ, σ², γ, β, ε:
//   k = γ[c] / sqrt(σ²[c] + ε)      W'[..][c] = k · W[..][c]      b'[c] = k · (b[c] − μ[c]) + β[c]
// computed in Double, then rounded once to Float. The output channel is the last weight axis for
// Conv2D ([KH][KW][Cin][Cout]) and DepthwiseConv2D ([KH][KW][C]), the first for Dense ([Out][In]).

import SprigRuntime
import SprigWriter
import SprigTrain

/// One step of a network, in execution order.
public indirect enum LoweringStep {
    case conv(Conv2D)
    /// Channel multiplier 1, weights `[KH][KW][C]`: the runtime's DepthwiseConv2D.
    case depthwiseConv(DepthwiseConv2D)
    case batchNorm(BatchNorm2D)
    case relu
    /// `min(max(x, 0), 6)`; fused as the runtime's `.relu6` clamp.
    case relu6
    case maxPool(MaxPool2D)
    case avgPool(AvgPool2D)
    case globalAveragePool
    case flatten
    case dense(Dense)
    /// `out = body(x) + shortcut(x)`; an empty shortcut is the identity.
    case residual(body: [LoweringStep], shortcut: [LoweringStep])
}

/// A lowering failure that names the step.
public struct LoweringError: Error, CustomStringConvertible, Equatable {
    public var description: String
}

/// Lowers `steps` to a Float32 blob description with input `[height][width][channels]`.
///
/// - Parameters:
///   - name, labels: metadata for the blob.
///   - mean, std: the input normalisation the network was trained with.
/// - Throws: ``LoweringError`` for a step that does not fit its input (shape,
///   a BatchNorm that follows nothing foldable, a residual whose branches disagree).
public func lowerNetwork(_ steps: [LoweringStep], height: Int, width: Int, channels: Int,
                         name: String, labels: [String] = [], mean: Float, std: Float) throws -> BlobBuilder {
    try lowerNetwork(steps, input: InputSpec(height: height, width: width, channels: channels, mean: [mean], std: [std]),
                     name: name, labels: labels)
}

/// Lowers `steps` to a Float32 blob description whose input is `input`.
///
/// The blob's input record holds one mean and std. When `input` has per-channel values
/// that differ, the record keeps (0, 1) and a 1×1 depthwise op first applies
/// `x ↦ (x − mean[c]) / std[c]` to each channel c, which is exact: the scale and
/// shift are the op's weight 1/std[c] and bias −mean[c]/std[c].
public func lowerNetwork(_ steps: [LoweringStep], input: InputSpec, name: String, labels: [String] = []) throws -> BlobBuilder {
    var b = BlobBuilder()
    b.setMetadata("name", name)
    b.setMetadata("precision", "f32")
    if !labels.isEmpty { b.setMetadata("labels", labels.joined(separator: ",")) }
    let shape = input.shape
    let x = b.addActivation("input", dtype: .f32, shape: shape)
    var first = Value(tensor: x, shape: shape)
    if input.hasDistinctChannelStatistics {
        b.addInput(x, mean: 0, std: 1)
        let c = input.channels
        let mean = (0..<c).map { input.mean[input.mean.count == 1 ? 0 : $0] }
        let std = (0..<c).map { input.std[input.std.count == 1 ? 0 : $0] }
        let wt = b.addConstant("normalize.weight", floats: std.map { 1 / $0 }, shape: [1, 1, c])
        let bt = b.addConstant("normalize.bias", floats: (0..<c).map { -mean[$0] / std[$0] }, shape: [c])
        let y = b.addActivation("normalize", dtype: .f32, shape: shape)
        b.addOp(.depthwiseConv2d, inputs: [x, wt, bt], output: y, params: [1, 1, 0, 0, 0, 0])
        first = Value(tensor: y, shape: shape)
    } else {
        b.addInput(x, mean: input.mean[0], std: input.std[0])
    }
    var lowering = Lowerer(builder: b)
    let out = try lowering.lower(steps, from: first, prefix: "")
    lowering.builder.addOutput(out.tensor)
    return lowering.builder
}

struct Value {
    var tensor: Int
    var shape: [Int]
}

struct Lowerer {
    var builder: BlobBuilder
    var counter = 0

    mutating func fresh(_ kind: String, _ prefix: String) -> String {
        counter += 1
        return "\(prefix)\(kind)\(counter)"
    }

    mutating func lower(_ steps: [LoweringStep], from input: Value, prefix: String) throws -> Value {
        var v = input
        var i = 0
        while i < steps.count {
            let step = steps[i]
            i += 1
            switch step {
            case .conv(let conv):
                guard v.shape.count == 3, v.shape[2] == conv.inputChannels else {
                    throw LoweringError(description: "Conv2D expects [H][W][\(conv.inputChannels)], got \(v.shape)")
                }
                var w = conv.weight.value.storage.map(Double.init)
                var bias = conv.bias?.value.storage.map(Double.init) ?? [Double](repeating: 0, count: conv.outputChannels)
                if i < steps.count, case .batchNorm(let bn) = steps[i] {
                    try fold(bn, weights: &w, bias: &bias, channelOf: { $0 % conv.outputChannels })
                    i += 1
                }
                let activation = takeActivation(steps, &i)
                let h = (v.shape[0] + 2 * conv.padding - conv.kernelHeight) / conv.stride + 1
                let wd = (v.shape[1] + 2 * conv.padding - conv.kernelWidth) / conv.stride + 1
                let name = fresh("conv", prefix)
                let wt = builder.addConstant(name + ".weight", floats: w.map(Float.init),
                                             shape: [conv.kernelHeight, conv.kernelWidth, conv.inputChannels, conv.outputChannels])
                let bt = builder.addConstant(name + ".bias", floats: bias.map(Float.init), shape: [conv.outputChannels])
                let y = builder.addActivation(name, dtype: .f32, shape: [h, wd, conv.outputChannels])
                let p = Int32(conv.padding), s = Int32(conv.stride)
                builder.addOp(.conv2d, activation: activation, inputs: [v.tensor, wt, bt], output: y, params: [s, s, p, p, p, p])
                v = Value(tensor: y, shape: [h, wd, conv.outputChannels])
            case .depthwiseConv(let conv):
                guard v.shape.count == 3, v.shape[2] == conv.channels else {
                    throw LoweringError(description: "DepthwiseConv2D expects [H][W][\(conv.channels)], got \(v.shape)")
                }
                var w = conv.weight.value.storage.map(Double.init)
                var bias = conv.bias?.value.storage.map(Double.init) ?? [Double](repeating: 0, count: conv.channels)
                if i < steps.count, case .batchNorm(let bn) = steps[i] {
                    try fold(bn, weights: &w, bias: &bias, channelOf: { $0 % conv.channels })
                    i += 1
                }
                let activation = takeActivation(steps, &i)
                let (h, wd) = conv.outputSize(height: v.shape[0], width: v.shape[1])
                guard h > 0, wd > 0 else {
                    throw LoweringError(description: "DepthwiseConv2D \(conv.kernelHeight)×\(conv.kernelWidth) does not fit its input \(v.shape)")
                }
                let name = fresh("dwconv", prefix)
                let wt = builder.addConstant(name + ".weight", floats: w.map(Float.init),
                                             shape: [conv.kernelHeight, conv.kernelWidth, conv.channels])
                let bt = builder.addConstant(name + ".bias", floats: bias.map(Float.init), shape: [conv.channels])
                let y = builder.addActivation(name, dtype: .f32, shape: [h, wd, conv.channels])
                let p = Int32(conv.padding), s = Int32(conv.stride)
                builder.addOp(.depthwiseConv2d, activation: activation, inputs: [v.tensor, wt, bt], output: y,
                              params: [s, s, p, p, p, p])
                v = Value(tensor: y, shape: [h, wd, conv.channels])
            case .dense(let dense):
                guard v.shape.reduce(1, *) == dense.inputDimensions else {
                    throw LoweringError(description: "Dense expects \(dense.inputDimensions) inputs, got \(v.shape)")
                }
                if v.shape.count != 1 { v = reshape(v, prefix) }
                var w = dense.weight.value.storage.map(Double.init)
                var bias = dense.bias?.value.storage.map(Double.init) ?? [Double](repeating: 0, count: dense.outputDimensions)
                if i < steps.count, case .batchNorm(let bn) = steps[i] {
                    try fold(bn, weights: &w, bias: &bias, channelOf: { $0 / dense.inputDimensions })
                    i += 1
                }
                let activation = takeActivation(steps, &i)
                let name = fresh("fc", prefix)
                let wt = builder.addConstant(name + ".weight", floats: w.map(Float.init), shape: [dense.outputDimensions, dense.inputDimensions])
                let bt = builder.addConstant(name + ".bias", floats: bias.map(Float.init), shape: [dense.outputDimensions])
                let y = builder.addActivation(name, dtype: .f32, shape: [dense.outputDimensions])
                builder.addOp(.dense, activation: activation, inputs: [v.tensor, wt, bt], output: y)
                v = Value(tensor: y, shape: [dense.outputDimensions])
            case .batchNorm:
                throw LoweringError(description: "BatchNorm2D must follow a Conv2D, a DepthwiseConv2D or a Dense to be folded")
            case .relu:
                throw LoweringError(description: "ReLU must follow a Conv2D, a DepthwiseConv2D, a Dense or a residual block to be fused")
            case .relu6:
                throw LoweringError(description: "ReLU6 must follow a Conv2D, a DepthwiseConv2D, a Dense or a residual block to be fused")
            case .maxPool(let pool):
                v = try lowerPool(.maxPool2d, pool.kernelSize, pool.stride, pool.padding, v, prefix)
            case .avgPool(let pool):
                v = try lowerPool(.avgPool2d, pool.kernelSize, pool.stride, pool.padding, v, prefix)
            case .globalAveragePool:
                guard v.shape.count == 3 else { throw LoweringError(description: "GlobalAveragePool expects [H][W][C], got \(v.shape)") }
                let y = builder.addActivation(fresh("gap", prefix), dtype: .f32, shape: [v.shape[2]])
                builder.addOp(.globalAveragePool, inputs: [v.tensor], output: y)
                v = Value(tensor: y, shape: [v.shape[2]])
            case .flatten:
                if v.shape.count != 1 { v = reshape(v, prefix) }
            case .residual(let body, let shortcut):
                let blockPrefix = prefix + "block\(counter + 1)."
                let a = try lower(body, from: v, prefix: blockPrefix)
                let c = shortcut.isEmpty ? v : try lower(shortcut, from: v, prefix: blockPrefix + "shortcut.")
                guard a.shape == c.shape else {
                    throw LoweringError(description: "residual branches disagree: body \(a.shape), shortcut \(c.shape)")
                }
                let activation = takeActivation(steps, &i)
                let y = builder.addActivation(fresh("add", prefix), dtype: .f32, shape: a.shape)
                builder.addOp(.add, activation: activation, inputs: [a.tensor, c.tensor], output: y)
                v = Value(tensor: y, shape: a.shape)
            }
        }
        return v
    }

    mutating func reshape(_ v: Value, _ prefix: String) -> Value {
        let n = v.shape.reduce(1, *)
        let y = builder.addActivation(fresh("flat", prefix), dtype: .f32, shape: [n])
        builder.addOp(.reshape, inputs: [v.tensor], output: y)
        return Value(tensor: y, shape: [n])
    }

    mutating func lowerPool(_ opcode: Opcode, _ k: Int, _ s: Int, _ p: Int, _ v: Value, _ prefix: String) throws -> Value {
        guard v.shape.count == 3 else { throw LoweringError(description: "\(opcode.name) expects [H][W][C], got \(v.shape)") }
        let h = (v.shape[0] + 2 * p - k) / s + 1, w = (v.shape[1] + 2 * p - k) / s + 1
        let y = builder.addActivation(fresh(opcode == .maxPool2d ? "maxpool" : "avgpool", prefix), dtype: .f32,
                                      shape: [h, w, v.shape[2]])
        let (k32, s32, p32) = (Int32(k), Int32(s), Int32(p))
        builder.addOp(opcode, inputs: [v.tensor], output: y, params: [k32, k32, s32, s32, p32, p32, p32, p32])
        return Value(tensor: y, shape: [h, w, v.shape[2]])
    }

    /// The activation at `steps[i]` to fuse into the op before it (consumed), or `.none`.
    func takeActivation(_ steps: [LoweringStep], _ i: inout Int) -> Activation {
        guard i < steps.count else { return .none }
        switch steps[i] {
        case .relu:
            i += 1
            return .relu
        case .relu6:
            i += 1
            return .relu6
        default:
            return .none
        }
    }

    /// Folds eval-mode BatchNorm into weights whose output channel of flat element j is `channelOf(j)`.
    func fold(_ bn: BatchNorm2D, weights: inout [Double], bias: inout [Double], channelOf: (Int) -> Int) throws {
        guard bn.channels == bias.count else {
            throw LoweringError(description: "BatchNorm2D has \(bn.channels) channels after a layer with \(bias.count) outputs")
        }
        let gamma = bn.weight.value.storage, beta = bn.bias.value.storage
        let mean = bn.runningMean.storage, variance = bn.runningVariance.storage
        let k = (0..<bn.channels).map { Double(gamma[$0]) / (Double(variance[$0]) + Double(bn.epsilon)).squareRoot() }
        for j in weights.indices { weights[j] *= k[channelOf(j)] }
        for c in 0..<bn.channels { bias[c] = k[c] * (bias[c] - Double(mean[c])) + Double(beta[c]) }
    }
}
