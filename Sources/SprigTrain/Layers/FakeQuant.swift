// Quantization-aware training: the trainer's network sees the rounding of the int8 blob.
//
// The int8 scheme (docs/blob-format.md, "int8 arithmetic", and SprigCompile's Quantizer):
//   weights      symmetric per output channel: s[c] = max|W[c]| / 127, q in [-127, 127]
//   activations  asymmetric per tensor from a [min, max] range that holds 0:
//                s = (max − min) / 255, z = round(−128 − min / s), q in [−128, 127]
//
// Weights. Per-channel symmetric rounding commutes with a per-channel positive or negative
// scale, so rounding a conv's weight before its BatchNorm is the same as rounding the folded
// weight the compiler writes: a network trained with `FakeQuantWeights` and then snapped
// (`W ← q(W)`) compiles to an int8 blob whose weights are its f32 weights exactly.
//
// Activations. `FakeQuantOutput` rounds a layer's output to the int8 grid of a range. The
// compiler takes each int8 tensor's range from a calibration of the finished f32 blob (the
// [min, max] over a few hundred training images, BatchNorm in eval mode, nothing rounded), so
// training against any other range (an observer's moving average of batch extremes, as
// TensorFlow's and PyTorch's do) trains the network for a grid it will not get.
// `QuantizationAwareness.calibrate` measures the ranges as the compiler will and freezes them;
// the prune's QAT stage does so before every epoch, so the grids trained against in the last
// epoch are the ones the compiler finds but for that epoch's drift (small: the rate is cosine
// to 0). Without a calibration the layer falls back to the observer (the first batch's
// [min, max], then a moving average).
//
// Backward is the straight-through estimator: the rounding passes the gradient unchanged,
// except where the output was clipped to the range, where it passes none. The weight's
// gradient is the one of the rounded weight, added to the float weight.

import SprigRuntime

/// How many training images the compiler calibrates an int8 blob's ranges on by default, and
/// quantization-aware training measures its frozen ranges on.
public let calibrationImageCount = 256

/// A calibrated real range of one activation tensor.
public struct ActivationRange: Equatable, Sendable {
    public var min: Float
    public var max: Float
    public init(min: Float, max: Float) {
        self.min = min
        self.max = max
    }

    /// Widens the range to cover `value`.
    public mutating func include(_ value: Float) {
        if value < min { min = value }
        if value > max { max = value }
    }
}

/// Asymmetric int8 parameters for a real range; 0 is always representable.
///
/// Example: [-1, 3] gives scale 4/255 ≈ 0.01569 and zero point
/// round(-128 + 1/0.01569) = -64.
public func activationQuant(_ range: ActivationRange) -> QuantParams {
    let lo = Swift.min(range.min, 0), hi = Swift.max(range.max, 0)
    let span = hi - lo
    let scale = span > 0 && span.isFinite ? span / 255 : 1.0 / 255
    let zero = (-128 - lo / scale).rounded(.toNearestOrAwayFromZero)
    return QuantParams(scale: scale, zeroPoint: Int32(Swift.max(-128, Swift.min(127, zero))))
}

/// Quantizes a real value with `q`, saturating to int8.
public func quantizeValue(_ x: Float, _ q: QuantParams) -> Int8 {
    let v = (x / q.scale).rounded(.toNearestOrAwayFromZero) + Float(q.zeroPoint)
    if !(v >= -128) { return -128 }
    if v > 127 { return 127 }
    return Int8(v)
}

/// Symmetric per-channel int8 weights, as the compiler writes them: along `axis` (the output
/// channel), s[c] = max|W[c]| / 127 (1e-8 for an all-zero channel), levels −127…127.
public func quantizeWeightsPerChannel(_ w: [Float], shape: [Int], axis: Int) -> (levels: [Int8], scales: [Float]) {
    let channels = shape[axis]
    let inner = shape[(axis + 1)...].reduce(1, *)
    var maxAbs = [Float](repeating: 0, count: channels)
    for (i, v) in w.enumerated() {
        let c = (i / inner) % channels
        maxAbs[c] = Swift.max(maxAbs[c], abs(v))
    }
    let scales = maxAbs.map { $0 > 0 ? $0 / 127 : Float(1e-8) }
    let levels = w.indices.map { i in
        Swift.max(-127, quantizeValue(w[i], QuantParams(scale: scales[(i / inner) % channels], zeroPoint: 0)))
    }
    return (levels, scales)
}

/// `w` rounded to its per-channel int8 grid (`quantizeWeightsPerChannel`), back in Float.
public func roundWeightsPerChannel(_ w: [Float], shape: [Int], axis: Int) -> [Float] {
    let (levels, scales) = quantizeWeightsPerChannel(w, shape: shape, axis: axis)
    let inner = shape[(axis + 1)...].reduce(1, *), channels = shape[axis]
    return levels.indices.map { Float(levels[$0]) * scales[($0 / inner) % channels] }
}

/// A layer whose output goes through int8 rounding (see the top of this file).
public final class FakeQuantOutput: Layer {
    public let inner: any Layer
    /// The range the output is rounded to; nil before a calibration or the first training batch.
    public private(set) var range: ActivationRange?
    /// Set by a calibration: training no longer moves the range.
    public private(set) var frozen = false
    /// Weight of a new batch's [min, max] in the moving average (without a calibration).
    public var momentum: Float = 0.01
    private var passes: [Bool] = []
    /// While calibrating: the output passes unrounded and widens `observed`.
    fileprivate var observing = false
    fileprivate var observed: ActivationRange?

    public init(_ inner: any Layer) { self.inner = inner }

    public var parameters: [Parameter] { inner.parameters }

    /// Rounds to `range` from now on, in training too.
    public func freeze(_ range: ActivationRange) {
        self.range = range
        frozen = true
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var y = inner.forward(x, training: training)
        if observing {
            if let lo = y.storage.min(), let hi = y.storage.max() {
                observed = ActivationRange(min: Swift.min(lo, observed?.min ?? lo), max: Swift.max(hi, observed?.max ?? hi))
            }
            passes = []
            return y
        }
        if training, !frozen, let lo = y.storage.min(), let hi = y.storage.max() {
            if var r = range {
                r.min += momentum * (lo - r.min)
                r.max += momentum * (hi - r.max)
                range = r
            } else {
                range = ActivationRange(min: lo, max: hi)
            }
        }
        guard let range else {
            passes = []
            return y
        }
        let q = activationQuant(range)
        let lo = q.scale * Float(-128 - q.zeroPoint), hi = q.scale * Float(127 - q.zeroPoint)
        passes = y.storage.map { $0 >= lo && $0 <= hi }
        for i in y.storage.indices {
            y.storage[i] = q.scale * Float(Int32(quantizeValue(y.storage[i], q)) - q.zeroPoint)
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var g = dy
        if passes.count == g.storage.count {
            for i in g.storage.indices where !passes[i] { g.storage[i] = 0 }
        }
        return inner.backward(g)
    }
}

/// A Conv2D, DepthwiseConv2D or Dense whose weight is rounded per output channel in forward
/// and backward; the gradient goes to the float weight (see the top of this file).
public final class FakeQuantWeights: Layer {
    public let inner: any Layer
    public let weight: Parameter
    /// The weight's output-channel axis: 3 for Conv2D (HWIO), 2 for DepthwiseConv2D (HWC), 0 for Dense ([Out][In]).
    public let axis: Int

    /// nil when `layer` has no weight that the compiler rounds per channel.
    public init?(_ layer: any Layer) {
        switch layer {
        case let c as Conv2D: weight = c.weight; axis = 3
        case let d as DepthwiseConv2D: weight = d.weight; axis = 2
        case let d as Dense: weight = d.weight; axis = 0
        default: return nil
        }
        inner = layer
    }

    public var parameters: [Parameter] { inner.parameters }

    /// Runs `body` with the weight rounded, then puts the float weight back.
    private func withRoundedWeight<R>(_ body: () -> R) -> R {
        let float = weight.value
        weight.value.storage = roundWeightsPerChannel(float.storage, shape: float.shape, axis: axis)
        defer { weight.value = float }
        return body()
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        withRoundedWeight { inner.forward(x, training: training) }
    }

    public func backward(_ dy: Tensor) -> Tensor {
        withRoundedWeight { inner.backward(dy) }
    }

    /// Replaces the float weight by its rounded value: the network the int8 blob computes.
    public func snap() {
        weight.value.storage = roundWeightsPerChannel(weight.value.storage, shape: weight.value.shape, axis: axis)
    }
}

/// A network inside `withQuantizationAwareness`: its rounded outputs, to calibrate.
public struct QuantizationAwareness {
    public let network: Sequential
    /// Every wrapped output, in the order of the walk.
    public let outputs: [FakeQuantOutput]

    /// Sets every rounded output's range to its [min, max] over `batches` (normalised images),
    /// with the network in eval mode and no output rounded, as the compiler calibrates the f32
    /// blob (`SprigCompile.calibrate`), and freezes the ranges.
    public func calibrate(on batches: [Tensor]) {
        for o in outputs {
            o.observing = true
            o.observed = nil
        }
        defer { for o in outputs { o.observing = false } }
        for x in batches { _ = network.forward(x, training: false) }
        for o in outputs {
            if let r = o.observed { o.freeze(r) }
        }
    }
}

/// Runs `body` (training, evaluating) on `network` with int8 rounding where the compiled blob
/// rounds: every Conv2D, DepthwiseConv2D and Dense weight, and the output of every op the blob
/// writes as an int8 tensor (an activation, a BatchNorm or weighted layer that no BatchNorm or
/// activation follows, a residual add). Afterwards the network is as it was, but for its
/// weights, which are left rounded (`FakeQuantWeights.snap`), so that its f32 and int8 blobs
/// compute with the same weights.
public func withQuantizationAwareness<R>(_ network: Sequential, _ body: (QuantizationAwareness) throws -> R) rethrows -> R {
    var outputs: [FakeQuantOutput] = []
    let restore = wrapForQuantization(network, outputs: &outputs)
    defer { restore() }
    return try body(QuantizationAwareness(network: network, outputs: outputs))
}

/// Wraps the layers of `chain` (recursively) in place, adding the output wrappers to `outputs`;
/// the closure unwraps them and snaps the weights.
private func wrapForQuantization(_ chain: Sequential, outputs: inout [FakeQuantOutput]) -> () -> Void {
    var undo: [() -> Void] = []
    let original = chain.layers
    var snaps: [FakeQuantWeights] = []
    for (i, layer) in original.enumerated() {
        let next = i + 1 < original.count ? original[i + 1] : nil
        let followedByNormOrActivation = next is BatchNorm2D || next is ReLU || next is ReLU6
        var wrapped: any Layer = layer
        switch layer {
        case let r as Residual:
            undo.append(wrapForQuantization(r.body, outputs: &outputs))
            if !r.shortcut.layers.isEmpty { undo.append(wrapForQuantization(r.shortcut, outputs: &outputs)) }
            wrapped = FakeQuantOutput(r)
        case let s as Sequential:
            undo.append(wrapForQuantization(s, outputs: &outputs))
        case is ReLU, is ReLU6:
            wrapped = FakeQuantOutput(layer)
        case is BatchNorm2D:
            if !followedByNormOrActivation { wrapped = FakeQuantOutput(layer) }
        default:
            if let w = FakeQuantWeights(layer) {
                snaps.append(w)
                wrapped = followedByNormOrActivation ? w : FakeQuantOutput(w)
            }
        }
        if let o = wrapped as? FakeQuantOutput { outputs.append(o) }
        chain.layers[i] = wrapped
    }
    return {
        for u in undo { u() }
        for w in snaps { w.snap() }
        chain.layers = original
    }
}
