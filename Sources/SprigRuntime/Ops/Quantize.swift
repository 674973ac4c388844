// Quantize (Float32 → int8) and Dequantize (int8 → Float32), per tensor.
//
//   real = scale · (q − zeroPoint)

/// Quantizes Float32 values to int8: `q = clamp(round(x / scale) + zeroPoint, -128, 127)`,
/// rounding halves away from zero (TFLite's `TfLiteRound`).
///
/// Never traps: NaN maps to `zeroPoint` (clamped to int8), ±∞ and huge values
/// saturate to 127 / −128 (the quotient is clamped to ±2^30 before the integer
/// conversion, and the zero point is added in 64 bits; exact for any zero
/// point within ±2^29). No libm call: the rounding is done with a truncating
/// conversion (`roundHalfAwayFromZero`).
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
    var i = 0
    while i < count {
        output[i] = quantizeOneQ8(input[i], scale: scale, zeroPoint: zeroPoint)
        i &+= 1
    }
}

/// One value of `quantizeF32ToQ8`.
@inline(__always)
func quantizeOneQ8(_ x: Float, scale: Float, zeroPoint: Int32) -> Int8 {
    var v = x / scale
    if v.isNaN { v = 0 }
    let limit: Float = 1_073_741_824               // 2^30: beyond it the clamp result is already decided
    v = v < -limit ? -limit : (v > limit ? limit : v)
    let q = Int64(roundHalfAwayFromZero(v)) &+ Int64(zeroPoint)
    return Int8(truncatingIfNeeded: q < -128 ? -128 : (q > 127 ? 127 : q))
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
