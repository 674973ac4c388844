// The classifier head's forward and backward, side by side, and its optimizers.
//
// Shapes (C classes, D features, B samples in a batch):
//   f        [B][D]   L2-normalised features (cached; the backbone is frozen)
//   W        [C][D]   rows start as scale · (normalised class mean), the imprint
//   b        [C]
//   W₀       [C][D]   the imprinted W, an anchor
//   z = W·f + b       logits           p = softmax(z)
//
//   L = (1/B) Σ_i −log p[y_i]  +  (λ/2) ‖W − W₀‖²
//   ∂L/∂z_i = (p_i − onehot(y_i)) / B
//   ∂L/∂W   = Σ_i ∂L/∂z_i ⊗ f_i  +  λ (W − W₀)
//   ∂L/∂b   = Σ_i ∂L/∂z_i
//
// Every sum runs in a fixed order on one thread, so the same inputs give the
// same bits. No allocation: the caller passes every buffer.

/// A head and its batch, as pointers into the fine-tuning arena (or test arrays).
public struct HeadBatch {
    /// `[*][dim]` feature rows.
    public var features: UnsafePointer<Float>
    /// Class of each feature row.
    public var labels: UnsafePointer<Int32>
    /// Rows of this batch (indices into `features`), or nil for rows `0 ..< count`.
    public var indices: UnsafePointer<Int32>?
    public var count: Int
    public var dim: Int
    public var classes: Int

    public init(features: UnsafePointer<Float>, labels: UnsafePointer<Int32>, indices: UnsafePointer<Int32>?,
                count: Int, dim: Int, classes: Int) {
        self.features = features
        self.labels = labels
        self.indices = indices
        self.count = count
        self.dim = dim
        self.classes = classes
    }

    @inline(__always)
    func row(_ i: Int) -> Int { indices.map { Int($0[i]) } ?? i }
}

/// Forward and backward of the head on one batch: returns the loss and
/// overwrites `gradWeights` and `gradBias` with its gradient. The naive
/// reference (through `denseF32` and `softmaxInto`) of ``headGradientSIMD``.
///
/// Example: one sample, C = 2, D = 1, f = [1], y = 0, W = [[0], [0]], b = 0,
/// λ = 0: p = [0.5, 0.5], L = ln 2 ≈ 0.6931, ∂L/∂W = [[−0.5], [0.5]], ∂L/∂b = [−0.5, 0.5].
///
/// - Parameters:
///   - weights: `[classes][dim]`; bias: `[classes]`.
///   - anchor: `[classes][dim]` W₀, or nil for λ = 0.
///   - anchorStrength: λ ≥ 0.
///   - gradWeights: `[classes][dim]`, overwritten; gradBias: `[classes]`, overwritten.
///   - logits, probs: `[classes]` scratch.
/// - Complexity: O(count · classes · dim); no allocation.
public func headLossAndGradient(_ batch: HeadBatch, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                anchor: UnsafePointer<Float>?, anchorStrength: Float,
                                gradWeights: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>,
                                logits: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>) -> Float {
    let c = batch.classes, d = batch.dim
    // Zero the gradients: backward accumulates.
    gradWeights.update(repeating: 0, count: c &* d)
    gradBias.update(repeating: 0, count: c)
    guard batch.count > 0 else { return 0 }
    let inverse = 1 / Float(batch.count)
    var loss: Float = 0
    for i in 0..<batch.count {
        let f = batch.features + batch.row(i) &* d
        let y = Int(batch.labels[batch.row(i)])
        // Forward: z = W f + b, p = softmax(z).
        denseF32(input: f, weights: weights, bias: bias, output: logits, inputCount: d, outputCount: c, clamp: .none)
        let logSum = softmaxInto(logits, probs, c)
        loss += logSum - logits[y]
        // Backward: dz = (p − onehot(y)) / B; dW += dz ⊗ f; db += dz.
        for k in 0..<c {
            let dz = (probs[k] - (k == y ? 1 : 0)) * inverse
            gradBias[k] += dz
            let g = gradWeights + k &* d
            for j in 0..<d { g[j] += dz * f[j] }
        }
    }
    loss *= inverse
    // The anchor: (λ/2)‖W − W₀‖², gradient λ(W − W₀).
    if let w0 = anchor, anchorStrength > 0 {
        loss += addAnchorGradient(weights: weights, anchor: w0, strength: anchorStrength, gradWeights: gradWeights,
                                  count: c &* d)
    }
    return loss
}

/// ``headLossAndGradient(_:weights:bias:anchor:anchorStrength:gradWeights:gradBias:logits:probs:)``
/// with the same bits, faster: what `FineTuner` runs at every step.
///
/// The same IEEE operations in the same order for every output element, so the
/// results are bit-identical (a test holds it to the naive version on odd shapes):
/// - a logit is `denseF32`'s row: 16-lane fused multiply-adds over the full blocks
///   of 16, the lane sum, the scalar tail, then the bias; but each row once
///   (`denseF32` recomputes the rows its last group of four overlaps) and the
///   sample's feature blocks loaded once for all rows;
/// - `dW[k] += dz · f` in 16 lanes, a multiply then an add, as the scalar loop;
/// - with `wantsLoss` false the per-sample log (only the loss needs it) is skipped
///   and 0 is returned; the gradient is the same.
///
/// - Complexity: O(count · classes · dim); no allocation.
public func headGradientSIMD(_ batch: HeadBatch, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                             anchor: UnsafePointer<Float>?, anchorStrength: Float,
                             gradWeights: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>,
                             logits: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                             wantsLoss: Bool) -> Float {
    let c = batch.classes, d = batch.dim
    let vectorEnd = d &- d % 16
    gradWeights.update(repeating: 0, count: c &* d)
    gradBias.update(repeating: 0, count: c)
    guard batch.count > 0 else { return 0 }
    let inverse = 1 / Float(batch.count)
    var loss: Float = 0
    for i in 0..<batch.count {
        let r = batch.row(i)
        let f = batch.features + r &* d
        let y = Int(batch.labels[r])
        // Forward: z = W f + b, each row as denseF32 sums it; four rows at a
        // time so that their four serial lane sums overlap.
        var k = 0
        while k &+ 4 <= c {
            let w0 = weights + k &* d, w1 = w0 + d, w2 = w1 + d, w3 = w2 + d
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            var j = 0
            while j < vectorEnd {
                let x: SIMD16<Float> = loadLanes(f + j)
                a0 = a0.addingProduct(x, loadLanes(w0 + j))
                a1 = a1.addingProduct(x, loadLanes(w1 + j))
                a2 = a2.addingProduct(x, loadLanes(w2 + j))
                a3 = a3.addingProduct(x, loadLanes(w3 + j))
                j &+= 16
            }
            // The scalar tails row by row: interleaved, LLVM turns them into a
            // 4-lane gather per element, several times slower on Intel cores.
            let s0 = scalarTail(a0.sum(), f, w0, from: j, to: d), s1 = scalarTail(a1.sum(), f, w1, from: j, to: d)
            let s2 = scalarTail(a2.sum(), f, w2, from: j, to: d), s3 = scalarTail(a3.sum(), f, w3, from: j, to: d)
            logits[k] = s0 + bias[k]
            logits[k &+ 1] = s1 + bias[k &+ 1]
            logits[k &+ 2] = s2 + bias[k &+ 2]
            logits[k &+ 3] = s3 + bias[k &+ 3]
            k &+= 4
        }
        while k < c {
            let w = weights + k &* d
            var a = SIMD16<Float>()
            var j = 0
            while j < vectorEnd {
                a = a.addingProduct(loadLanes(f + j) as SIMD16<Float>, loadLanes(w + j))
                j &+= 16
            }
            logits[k] = scalarTail(a.sum(), f, w, from: j, to: d) + bias[k]
            k &+= 1
        }
        let logSum = softmaxInto(logits, probs, c)
        if wantsLoss { loss += logSum - logits[y] }
        // Backward: dz = (p − onehot(y)) / B; dW += dz ⊗ f; db += dz.
        for k in 0..<c {
            let dz = (probs[k] - (k == y ? 1 : 0)) * inverse
            gradBias[k] += dz
            let g = gradWeights + k &* d
            let dzs = SIMD16<Float>(repeating: dz)
            var j = 0
            while j < vectorEnd {
                storeLanes((loadLanes(g + j) as SIMD16<Float>) + dzs * loadLanes(f + j), g + j)
                j &+= 16
            }
            while j < d {
                g[j] += dz * f[j]
                j &+= 1
            }
        }
    }
    loss *= inverse
    if let w0 = anchor, anchorStrength > 0 {
        loss += addAnchorGradient(weights: weights, anchor: w0, strength: anchorStrength, gradWeights: gradWeights,
                                  count: c &* d)
    }
    return wantsLoss ? loss : 0
}

/// `s + x[from] · w[from] + … + x[to − 1] · w[to − 1]`, added in that order, one
/// product at a time (denseF32's scalar tail).
@inline(__always)
func scalarTail(_ s: Float, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, from: Int, to: Int) -> Float {
    var s = s
    var j = from
    while j < to {
        s += x[j] * w[j]
        j &+= 1
    }
    return s
}

/// The anchor: adds λ(W − W₀) to `gradWeights`; returns (λ/2)‖W − W₀‖².
@inline(__always)
func addAnchorGradient(weights: UnsafePointer<Float>, anchor w0: UnsafePointer<Float>, strength: Float,
                       gradWeights: UnsafeMutablePointer<Float>, count: Int) -> Float {
    var sq: Float = 0
    for j in 0..<count {
        let diff = weights[j] - w0[j]
        sq += diff * diff
        gradWeights[j] += strength * diff
    }
    return 0.5 * strength * sq
}

/// Stable softmax of `z` into `p`; returns `log Σ exp(z)` (so `−log p[y] = lse − z[y]`).
@inline(__always)
func softmaxInto(_ z: UnsafePointer<Float>, _ p: UnsafeMutablePointer<Float>, _ c: Int) -> Float {
    var m = z[0]
    for k in 1..<max(c, 1) where z[k] > m { m = z[k] }
    var s: Float = 0
    for k in 0..<c {
        let e = expF32(z[k] - m)
        p[k] = e
        s += e
    }
    let inv = 1 / s
    for k in 0..<c { p[k] *= inv }
    return m + logF32(s)
}

// MARK: - Optimizers

/// Adam (Kingma & Ba), with bias correction, on `count` parameters.
///
/// `m ← β1 m + (1−β1) g`, `v ← β2 v + (1−β2) g²`,
/// `θ ← θ − lr · (m / (1−β1^t)) / (√(v / (1−β2^t)) + ε)`.
/// `powers` are β1^t and β2^t for this step t (the caller multiplies them in).
@inline(__always)
func adamStep(_ theta: UnsafeMutablePointer<Float>, _ grad: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
              _ v: UnsafeMutablePointer<Float>, count: Int, learningRate: Float, powers: (Float, Float)) {
    let b1: Float = 0.9, b2: Float = 0.999, eps: Float = 1e-8
    let c1 = 1 / (1 - powers.0), c2 = 1 / (1 - powers.1)
    for j in 0..<count {
        let g = grad[j]
        m[j] = b1 * m[j] + (1 - b1) * g
        v[j] = b2 * v[j] + (1 - b2) * g * g
        let mh = m[j] * c1, vh = v[j] * c2
        theta[j] -= learningRate * mh / (sqrtF32(vh) + eps)
    }
}

/// SGD with (heavy-ball) momentum: `m ← μ m + g`, `θ ← θ − lr · m`.
@inline(__always)
func sgdStep(_ theta: UnsafeMutablePointer<Float>, _ grad: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
             count: Int, learningRate: Float, momentum: Float) {
    for j in 0..<count {
        m[j] = momentum * m[j] + grad[j]
        theta[j] -= learningRate * m[j]
    }
}

// MARK: - The seeded generator

/// SplitMix64: the runtime's own seeded generator (same sequence everywhere).
public struct SplitMix64RNG: Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0 ..< bound` (bound ≥ 1), by Lemire's multiply-shift
    /// with rejection, so the result does not depend on the platform's `Int` width.
    public mutating func below(_ bound: Int) -> Int {
        let b = UInt64(truncatingIfNeeded: bound)
        if b <= 1 { return 0 }
        let threshold = (0 &- b) % b
        while true {
            let r = next()
            let full = r.multipliedFullWidth(by: b)
            if full.low >= threshold { return Int(truncatingIfNeeded: full.high) }
        }
    }

    /// Fisher–Yates shuffle of `count` Int32 values.
    public mutating func shuffle(_ values: UnsafeMutablePointer<Int32>, count: Int) {
        var i = count - 1
        while i > 0 {
            let j = below(i + 1)
            let t = values[i]
            values[i] = values[j]
            values[j] = t
            i -= 1
        }
    }
}
