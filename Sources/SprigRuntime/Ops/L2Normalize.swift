// L2Normalize, Float32 only (opcode 12).
//
//   input, output   [count]   (any shape; the whole tensor is one vector)
//
//   out[i] = in[i] / max(‖in‖₂, 1e-12)
//
// The fine-tuned classifier is a cosine classifier: features are normalised
// by this op, then a Dense layer whose rows are (scaled) class directions.

/// The floor of the norm: a vector shorter than this is divided by it, so a
/// zero vector maps to zeros instead of NaN.
public let l2NormalizeEpsilon: Float = 1e-12

/// Float32 L2 normalisation: `out[i] = in[i] / max(‖in‖₂, 1e-12)`.
///
/// The norm is computed as `m · √(Σ (in[i] / m)²)` with `m = max |in[i]|`, so
/// that neither the squares of large values overflow nor those of tiny values
/// underflow; the sum runs in index order (bit-identical on every target).
///
/// Worked example: `[3, 4]` → m = 4, Σ = 0.5625 + 1 = 1.5625, norm = 4 · 1.25 = 5
/// → `[0.6, 0.8]`. `[0, 0]` → `[0, 0]`. `[1e-13, 0]` → norm below the floor →
/// `[0.1, 0]`.
///
/// A NaN or ±∞ anywhere in the input makes every output NaN; nothing traps.
/// - Parameters:
///   - input: `[count]`.
///   - output: `[count]`; may alias `input` (each element is read before it is written).
/// - Complexity: O(count), two passes over the input; no allocation.
public func l2NormalizeF32(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int) {
    let divisor = l2NormalizeDivisor(input: input, count: count)
    // 3. Divide (not multiply by a reciprocal: the op is defined as a division).
    var i = 0
    while i < count {
        output[i] = input[i] / divisor
        i &+= 1
    }
}

/// `max(‖x‖₂, 1e-12)` as ``l2NormalizeF32(input:output:count:)`` computes it
/// (NaN for a NaN or ±∞ input).
func l2NormalizeDivisor(input: UnsafePointer<Float>, count: Int) -> Float {
    // 1. The largest magnitude (NaN never wins a comparison).
    var m: Float = 0
    var i = 0
    while i < count {
        let a = input[i] < 0 ? -input[i] : input[i]
        if a > m { m = a }
        i &+= 1
    }
    // 2. The norm, scaled by m.
    var norm: Float = 0
    if m > 0 {
        var sum: Float = 0
        i = 0
        while i < count {
            let r = input[i] / m
            sum += r * r
            i &+= 1
        }
        norm = m * sqrtF32(sum)
    }
    return norm.isNaN || norm > l2NormalizeEpsilon ? norm : l2NormalizeEpsilon
}

/// Backward of ``l2NormalizeF32(input:output:count:)``: with `u = x / n`,
/// `n = max(‖x‖, 1e-12)`, `dx += (du − u·(u·du)) / n` (below the floor the op
/// is linear: `dx += du / 1e-12`). Accumulates; the caller zeroes.
/// Example: x = [3, 4] (u = [0.6, 0.8]), du = [1, 0] → u·du = 0.6,
/// dx += ([1, 0] − 0.6·[0.6, 0.8]) / 5 = [0.128, −0.096].
/// - Complexity: O(count); no allocation.
public func l2NormalizeBackwardF32(input: UnsafePointer<Float>, outputGradient du: UnsafePointer<Float>,
                                   inputGradient dx: UnsafeMutablePointer<Float>, count: Int) {
    let n = l2NormalizeDivisor(input: input, count: count)
    let linear = !(n > l2NormalizeEpsilon)
    var dot: Float = 0
    if !linear {
        for i in 0..<count { dot += (input[i] / n) * du[i] }
    }
    for i in 0..<count {
        let u = input[i] / n
        dx[i] += (du[i] - (linear ? 0 : u * dot)) / n
    }
}

// MARK: - Validation (at load)

extension Model {
    /// L2Normalize op `o` with input `xi`: Float32 only, an output of the same
    /// element count. No params.
    func validateL2Normalize(_ o: Int, _ op: OpInfo, _ xi: TensorInfo) throws(SprigError) {
        try expectNoActivation(o, op)
        try expectCount(o, op, 1)
        try expectArena(o, 0, op.inputs.0)
        try expectDType(o, 0, xi, .f32)
        let out = tensor(op.output)
        try expectDType(o, -1, out, .f32)
        guard out.elementCount == xi.elementCount else {
            throw .shapeMismatch(op: o, slot: -1, expected: xi.elementCount, found: out.elementCount)
        }
        try expectZeroParams(o, op, from: 0)
    }
}
