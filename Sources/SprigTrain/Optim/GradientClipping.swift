// Global gradient-norm clipping (PyTorch's `clip_grad_norm_` with the L2 norm).
//
//   n = √(Σ over every gradient element g²)        accumulated in Double
//   if n > maxNorm: every g ← g · maxNorm / (n + 1e-6)
//
// Returns n, the norm before clipping, for logging. A non-finite norm (a NaN or ∞
// gradient) is returned as is and the gradients are left untouched, so the caller can
// skip the step instead of spreading NaN into every weight.

/// Clips the gradients of `store` to a global L2 norm of at most `maxNorm`.
///
/// - Returns: the global norm before clipping.
/// - Precondition: `maxNorm > 0`.
@discardableResult
public func clipGradientNorm<Store: ParameterStore>(_ store: inout Store, maxNorm: Float) -> Float {
    precondition(maxNorm > 0, "clipGradientNorm: maxNorm must be positive")
    var sum = 0.0
    for i in 0..<store.parameterCount {
        store.withParameter(i) { _, g in
            for x in g { sum += Double(x) * Double(x) }
        }
    }
    let norm = sum.squareRoot()
    guard norm.isFinite else { return Float(norm) }
    if norm > Double(maxNorm) {
        let scale = Float(Double(maxNorm) / (norm + 1e-6))
        for i in 0..<store.parameterCount {
            store.withParameter(i) { _, g in
                for j in 0..<g.count { g[j] *= scale }
            }
        }
    }
    return Float(norm)
}

/// Clips a list of gradient buffers to a global L2 norm of at most `maxNorm`.
///
/// - Returns: the global norm before clipping.
@discardableResult
public func clipGradientNorm(_ gradients: [UnsafeMutableBufferPointer<Float>], maxNorm: Float) -> Float {
    precondition(maxNorm > 0, "clipGradientNorm: maxNorm must be positive")
    var sum = 0.0
    for g in gradients { for x in g { sum += Double(x) * Double(x) } }
    let norm = sum.squareRoot()
    guard norm.isFinite else { return Float(norm) }
    if norm > Double(maxNorm) {
        let scale = Float(Double(maxNorm) / (norm + 1e-6))
        for g in gradients { for j in 0..<g.count { g[j] *= scale } }
    }
    return Float(norm)
}
