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
/// overwrites `gradWeights` and `gradBias` with its gradient.
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
        var sq: Float = 0
        for j in 0..<(c &* d) {
            let diff = weights[j] - w0[j]
            sq += diff * diff
            gradWeights[j] += anchorStrength * diff
        }
        loss += 0.5 * anchorStrength * sq
    }
    return loss
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
