// Softmax, Float32 and int8, and the exponential they share.
//
//   input, output   [count]
//
// f32: out[i] = e^(x[i] − max x) / Σ_j e^(x[j] − max x)
// q8:  integer only, through a 256-entry table of e^(−d·inputScale) in Q24
//      (built once by the compiler with `makeSoftmaxExpTable`). The output
//      scale is 1/256 and the output zero point −128.

// MARK: - Exponential

/// e^x in Float32 without libm, bit-identical on every IEEE-754 target.
///
/// Range reduction `x = k·ln2 + r` with `k = round(x·log2 e)` and
/// `|r| ≤ ln2/2`; `r` is computed in two steps (Cody–Waite) with
/// `ln2 = 0.693359375 − 2.12194440e-4`, whose first part has 9 significant
/// bits so that `k·0.693359375` and `x − k·0.693359375` are exact. Then
/// `e^r ≈ 1 + r + r²·P(r)` with the degree-5 minimax polynomial P of Cephes
/// `expf`, and `e^x = e^r · 2^k`, the power of two built from its bit pattern
/// (in two halves, so that k = 128 and subnormal results work).
///
/// Only `*` and `+` are used (no FMA, no `rounded`), so the result does not
/// depend on the CPU. Relative error < 2e-7 over [-87, 0] (the test checks
/// it against Foundation's `exp`); 0 below −103.98, +∞ above 88.7228, NaN
/// stays NaN.
///
/// Worked example: `expF32(-1)`: k = round(−1.4427) = −1, r = −1 + 0.6931472
/// = −0.3068528, e^r = 0.7357589, times 2^−1 = 0.36787945 (e^−1 = 0.36787944…).
public func expF32(_ x: Float) -> Float {
    if x.isNaN { return x }
    if x > 88.72283 { return Float.infinity }
    if x < -103.98 { return 0 }
    // k = round-to-nearest-even(x·log2 e) with the 1.5·2^23 trick (|x·log2 e| < 2^22).
    let shifter: Float = 12_582_912
    let t = x * 1.442_695_04 + shifter
    let k = t - shifter
    let kInt = Int32(bitPattern: t.bitPattern) &- 0x4B40_0000     // k as an integer, −150...128
    let r = (x - k * 0.693_359_375) - k * -2.121_944_4e-4
    var p: Float = 1.987_569_15e-4
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_6e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_1e-1
    let y = (p * (r * r) + r) + 1
    // 2^k = 2^k1 · 2^k2 with both halves in the normal exponent range.
    let k1 = kInt &>> 1
    let k2 = kInt &- k1
    let scale1 = Float(bitPattern: UInt32(truncatingIfNeeded: k1 &+ 127) &<< 23)
    let scale2 = Float(bitPattern: UInt32(truncatingIfNeeded: k2 &+ 127) &<< 23)
    return y * scale1 * scale2
}

// MARK: - Float32

/// Float32 softmax: subtract the maximum, exponentiate with `expF32`, normalize.
///
/// - Parameters:
///   - input: `[count]`.
///   - output: `[count]`; may be `input` itself (in place), must not partly overlap it.
/// - Complexity: O(count); no allocation.
public func softmaxF32(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int) {
    guard count > 0 else { return }
    var maximum = input[0]
    var i = 1
    while i < count {
        if input[i] > maximum { maximum = input[i] }
        i &+= 1
    }
    var sum: Float = 0
    i = 0
    while i < count {
        let e = expF32(input[i] - maximum)
        output[i] = e
        sum += e
        i &+= 1
    }
    let reciprocal = 1 / sum          // sum ≥ 1: the maximum contributes e^0
    i = 0
    while i < count {
        output[i] *= reciprocal
        i &+= 1
    }
}

// MARK: - int8

/// int8 softmax, integer only. Output scale 1/256, output zero point −128.
///
/// ```
/// m    = max_i in[i]
/// e_i  = expTable[m − in[i]]                        (m − in[i] ∈ 0...255)
/// s    = Σ_i e_i                                    (Int64)
/// out_i = clamp((e_i·256 + s/2) / s − 128, −128, 127)
/// ```
/// `expTable` (from `makeSoftmaxExpTable`) holds `round(2^24·e^(−d·inputScale))`;
/// the interpreter proves 256 entries in 0...2^24 with `expTable[0] ≥ 1`, so
/// `s > 0`. (If `s ≤ 0` anyway, the output is all −128 rather than a trap.)
///
/// Worked example, inputScale ln 2 (table 2^24, 2^23, 2^22, …), input [5, 4, 4]:
/// e = [2^24, 2^23, 2^23], s = 2^25, out = [(2^32 + 2^24)/2^25 − 128, …] = [0, −64, −64]
/// (probabilities 0.5, 0.25, 0.25).
/// - Parameters:
///   - input: `[count]`.
///   - output: `[count]`; may be `input` itself (in place).
///   - expTable: 256 entries.
/// - Complexity: O(count); no allocation.
public func softmaxQ8(input: UnsafePointer<Int8>, output: UnsafeMutablePointer<Int8>, count: Int,
                      expTable: UnsafePointer<Int32>) {
    guard count > 0 else { return }
    var maximum = input[0]
    var i = 1
    while i < count {
        if input[i] > maximum { maximum = input[i] }
        i &+= 1
    }
    let top = Int(maximum)
    var sum: Int64 = 0
    i = 0
    while i < count {
        sum &+= Int64(expTable[top &- Int(input[i])])
        i &+= 1
    }
    guard sum > 0 else {
        i = 0
        while i < count { output[i] = -128; i &+= 1 }
        return
    }
    let half = sum / 2
    i = 0
    while i < count {
        let e = Int64(expTable[top &- Int(input[i])])
        let q = (e &* 256 &+ half) / sum &- 128
        output[i] = Int8(truncatingIfNeeded: q < -128 ? -128 : (q > 127 ? 127 : q))
        i &+= 1
    }
}

/// Fills the 256-entry table of `softmaxQ8`: `table[d] = round(2^24 · e^(−d·inputScale))`,
/// computed with `expF32` and rounded half away from zero, so it is the same
/// on every machine. Used by the compiler and the blob writer.
///
/// For `inputScale > 0` and finite, every entry is in 0...2^24 and
/// `table[0] == 2^24`. Never traps: a NaN product gives 0.
///
/// Worked example, inputScale 0.1: table[0] = 16777216, table[1] =
/// round(16777216·e^−0.1) = round(15180652.8) = 15180653, table[10] =
/// round(16777216·e^−1) = round(6171992.8) = 6171993.
public func makeSoftmaxExpTable(inputScale: Float, into table: UnsafeMutablePointer<Int32>) {
    var d = 0
    while d < 256 {
        let scaled = expF32(-Float(d) * inputScale) * 16_777_216
        var value: Float = scaled.isNaN ? 0 : scaled
        value = value < 0 ? 0 : (value > 16_777_216 ? 16_777_216 : value)
        table[d] = roundHalfAwayFromZero(value)
        d &+= 1
    }
}

// MARK: - Validation (at load)

extension Model {
    /// Softmax op `o` with input `xi`: an output of the same dtype and element
    /// count. In int8, a second input, the constant 256-entry Int32 table of
    /// `makeSoftmaxExpTable` (entry 0 in 1 … 2^24, the others in 0 … 2^24),
    /// and an output scale of 1/256 with zero point −128. No params.
    /// Returns the bytes of the table it scanned.
    func validateSoftmax(_ o: Int, _ op: OpInfo, _ xi: TensorInfo) throws(SprigError) -> Int {
        try expectNoActivation(o, op)
        let x = op.inputs.0
        var scanned = 0
        try expectArena(o, 0, x)
        let out = tensor(op.output)
        try expectDType(o, -1, out, xi.dtype)
        guard out.elementCount == xi.elementCount else {
            throw .shapeMismatch(op: o, slot: -1, expected: xi.elementCount, found: out.elementCount)
        }
        if xi.dtype == .f32 {
            try expectCount(o, op, 1)
        } else {
            try expectCount(o, op, 2)
            try expectPerTensor(o, 0, x)
            try expectPerTensor(o, -1, op.output)
            let q = quant(out, 0)
            guard q.scale == 1.0 / 256.0, q.zeroPoint == -128 else { throw .badQuantization(op: o, slot: -1, tensor: op.output) }
            let table = op.inputs.1
            guard table >= 0 else { throw .invalidField(field: .opInput, index: o, value: 1) }
            let ti = tensor(table)
            try expectConstant(o, 1, table)
            try expectDType(o, 1, ti, .i32)
            guard ti.elementCount == 256 else { throw .shapeMismatch(op: o, slot: 1, expected: 256, found: ti.elementCount) }
            let values = constantBytes(ti)
            scanned = values.count
            for i in 0..<256 {
                let v = Int32(bitPattern: readU32(values, 4 * i))
                guard v >= (i == 0 ? 1 : 0) && v <= (1 << 24) else {
                    throw .invalidField(field: .opInput, index: o, value: Int(v))
                }
            }
        }
        try expectZeroParams(o, op, from: 0)
        return scanned
    }
}
