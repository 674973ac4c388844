// Quantize (Float32 → int8) and Dequantize (int8 → Float32), per tensor.
//
//   real = scale · (q − zeroPoint)

/// Quantizes Float32 values to int8: `q = clamp(round(x / scale) + zeroPoint, -128, 127)`,
/// rounding halves away from zero (TFLite's `TfLiteRound`).
///
/// Never traps: NaN maps to `zeroPoint` (clamped to int8), ±∞ and huge values
/// saturate to 127 / −128. The quotient is clamped to ±2^22 before rounding
/// (beyond that the clamp to int8 has decided already, for any zero point in
/// ±2^21), and the zero point is added after the clamp, so nothing overflows.
/// No libm call and no float-to-integer conversion: the rounding is a
/// magic-number add (`roundQuotientsQ8`), so 8 values go through SIMD at once.
///
/// Worked example (scale 0.5, zeroPoint −10):
/// ```
/// 1.25 / 0.5 = 2.5 → 3 → 3 − 10 = −7
/// −1.25 → −2.5 → −3 → −13
/// 100.0 → 200 → 190 → 127
/// ```
/// - Parameters:
///   - input: `[count]`.
///   - output: `[count]`.
/// - Complexity: O(count); no allocation.
public func quantizeF32ToQ8(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Int8>, count: Int,
                            scale: Float, zeroPoint: Int32) {
    let stage = OutputStageQ8(zeroPoint: zeroPoint, clampMin: -128, clampMax: 127)
    let divisor = SIMD8<Float>(repeating: scale)
    var i = 0
    while i &+ 8 <= count {
        storeLanes(stage(roundQuotientsQ8((loadLanes(input + i) as SIMD8<Float>) / divisor)), output + i)
        i &+= 8
    }
    while i < count {
        output[i] = stage(roundQuotientQ8(input[i] / scale))
        i &+= 1
    }
}

/// `round(v)` with halves away from zero, after mapping NaN to 0 and clamping
/// to ±2^22 (the scalar twin of `roundQuotientsQ8`).
///
/// `v + 1.5·2^23` lands in [2^23, 2^24), where Float spacing is 1, so the add
/// rounds `v` to an integer (ties to even) that the bit pattern holds
/// directly. The tie (`v` minus that integer, exact) is ±0.5 only for halves;
/// those that went toward zero are moved away from it.
/// ```
/// roundQuotientQ8(2.5)    //  3 (ties-to-even gave 2, tie +0.5, v > 0: +1)
/// roundQuotientQ8(3.5)    //  4 (ties-to-even gave 4 already)
/// roundQuotientQ8(-2.5)   // −3
/// roundQuotientQ8(.nan)   //  0
/// ```
@inline(__always)
func roundQuotientQ8(_ v: Float) -> Int32 {
    let limit: Float = 4_194_304                    // 2^22
    var f = v.isNaN ? 0 : v
    f = f < -limit ? -limit : (f > limit ? limit : f)
    let shifter: Float = 12_582_912                 // 1.5·2^23
    let shifted = f + shifter
    let nearest = Int32(bitPattern: shifted.bitPattern) &- 0x4B40_0000
    let tie = f - (shifted - shifter)
    let up: Int32 = tie == 0.5 && f > 0 ? 1 : 0
    let down: Int32 = tie == -0.5 && f < 0 ? 1 : 0
    return nearest &+ up &- down
}

/// Lane-wise `roundQuotientQ8`, written with concrete SIMD8 compares and
/// selects (a lane loop of the scalar version does not vectorize).
@inline(__always)
func roundQuotientsQ8(_ v: SIMD8<Float>) -> SIMD8<Int32> {
    let limit: Float = 4_194_304
    var f = v
    f.replace(with: 0, where: f .!= f)
    f.replace(with: -limit, where: f .< -limit)
    f.replace(with: limit, where: f .> limit)
    let shifter: Float = 12_582_912
    let shifted = f + shifter
    let nearest = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let tie = f - (shifted - shifter)
    let zero = SIMD8<Int32>(repeating: 0)
    let up = zero.replacing(with: 1, where: (tie .== 0.5) .& (f .> 0))
    let down = zero.replacing(with: 1, where: (tie .== -0.5) .& (f .< 0))
    return nearest &+ up &- down
}

/// Dequantizes int8 values to Float32: `x = scale · (q − zeroPoint)`.
///
/// `q − zeroPoint` is formed as `Float(q) − Float(zeroPoint)`, exact for every
/// zero point in [-2^24, 2^24] (in particular the int8 range), and never traps.
///
/// Worked example (scale 0.5, zeroPoint −10): q = −7 → 0.5 · 3 = 1.5.
/// - Complexity: O(count); no allocation.
public func dequantizeQ8ToF32(input: UnsafePointer<Int8>, output: UnsafeMutablePointer<Float>, count: Int,
                              scale: Float, zeroPoint: Int32) {
    let zero = Float(zeroPoint)
    var i = 0
    while i < count {
        output[i] = scale * (Float(input[i]) - zero)
        i &+= 1
    }
}

// MARK: - Validation (at load)

extension Model {
    /// Quantize op `o` with input `xi`: Float32 in, int8 out with one
    /// quantization record, the same element count. No params.
    func validateQuantize(_ o: Int, _ op: OpInfo, _ xi: TensorInfo) throws(SprigError) {
        try validateConversion(o, op, xi, from: .f32, to: .i8, quantized: -1)
    }

    /// Dequantize op `o` with input `xi`: int8 in with one quantization
    /// record, Float32 out, the same element count. No params.
    func validateDequantize(_ o: Int, _ op: OpInfo, _ xi: TensorInfo) throws(SprigError) {
        try validateConversion(o, op, xi, from: .i8, to: .f32, quantized: 0)
    }

    /// Quantize and Dequantize: `quantized` is the slot of the int8 side (-1 the output, 0 the input).
    private func validateConversion(_ o: Int, _ op: OpInfo, _ xi: TensorInfo, from: DType, to: DType,
                                    quantized: Int) throws(SprigError) {
        try expectNoActivation(o, op)
        let x = op.inputs.0
        try expectCount(o, op, 1)
        try expectArena(o, 0, x)
        let out = tensor(op.output)
        try expectDType(o, 0, xi, from)
        try expectDType(o, -1, out, to)
        try expectPerTensor(o, quantized, quantized == -1 ? op.output : x)
        guard out.elementCount == xi.elementCount else {
            throw .shapeMismatch(op: o, slot: -1, expected: xi.elementCount, found: out.elementCount)
        }
        try expectZeroParams(o, op, from: 0)
    }
}
