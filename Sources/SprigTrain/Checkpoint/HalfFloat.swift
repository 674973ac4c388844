// Widening of the two 16-bit float formats a safetensors checkpoint may hold
// (F16 and BF16) to Float32. Both conversions are exact: every 16-bit value,
// subnormals, infinities and NaN payloads included, has one Float32 equal to it.
//
//   F16  (IEEE 754 binary16):  s eeeee mmmmmmmmmm          bias 15
//   BF16 (bfloat16):           s eeeeeeee mmmmmmm          bias 127, the top half of a Float32
//   F32  (IEEE 754 binary32):  s eeeeeeee mmmmmmmmmmmmmmmmmmmmmmm  bias 127

/// The Float32 bit pattern of an IEEE binary16 value (exact).
///
/// - Normal (`e` 1…30): exponent rebased by 127 − 15 = 112, mantissa moved up 13 bits.
///   `0x3C00` (1.0) → `0x3F80_0000`; `0x7BFF` (65504, the largest) → `0x477F_E000`.
/// - Subnormal (`e` 0, `m` ≠ 0): `m · 2^−24`, renormalised. `0x0001` → 2^−24 = `0x3380_0000`.
/// - Zero keeps its sign: `0x8000` → −0.0 = `0x8000_0000`.
/// - `e` 31: infinity (`0x7C00` → `0x7F80_0000`) or NaN with its payload moved up
///   13 bits, so a quiet NaN stays quiet (`0x7E00` → `0x7FC0_0000`).
@inlinable
public func float32Bits(fromFloat16Bits h: UInt16) -> UInt32 {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    var mantissa = UInt32(h & 0x03FF)
    switch exponent {
    case 0:
        guard mantissa != 0 else { return sign }
        // Shift the leading 1 up to bit 10 (the implicit bit); each shift halves the exponent.
        var e: UInt32 = 113   // 127 − 15 + 1: the exponent of 2^−14, the subnormals' scale
        while mantissa & 0x0400 == 0 {
            mantissa <<= 1
            e -= 1
        }
        return sign | e << 23 | (mantissa & 0x03FF) << 13
    case 0x1F:
        return sign | 0x7F80_0000 | mantissa << 13
    default:
        return sign | (exponent + 112) << 23 | mantissa << 13
    }
}

/// The Float32 bit pattern of a bfloat16 value: its 16 bits are the Float32's top half (exact).
/// `0x3F80` → 1.0; `0x7F7F` → 3.3895314e38 (the largest); `0x0001` → 2^−133 (subnormal).
@inlinable
public func float32Bits(fromBFloat16Bits b: UInt16) -> UInt32 { UInt32(b) << 16 }

extension SafetensorsTensor {
    /// The values of an F32, F16 or BF16 tensor as Float32, widened exactly
    /// (see `float32Bits(fromFloat16Bits:)`); F32 values are bit-exact.
    /// - Throws: `SafetensorsError.wrongDType` for any other dtype.
    public func widenedFloats() throws -> [Float] {
        switch dtype {
        case .f32:
            return try floats()
        case .f16, .bf16:
            let half = dtype == .f16
            var out = [Float](repeating: 0, count: elementCount)
            for i in 0..<elementCount {
                let bits = UInt16(bytes[2 * i]) | UInt16(bytes[2 * i + 1]) << 8
                out[i] = Float(bitPattern: half ? float32Bits(fromFloat16Bits: bits) : float32Bits(fromBFloat16Bits: bits))
            }
            return out
        default:
            throw SafetensorsError.wrongDType(path: "", tensor: "", found: dtype.rawValue, expected: "F32, F16 or BF16")
        }
    }
}
