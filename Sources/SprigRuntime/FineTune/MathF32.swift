// Float32 square root and logarithm without libm (fine-tuning and L2Normalize).
//
// A host debug build of sprig-edge does not link libm, and a Cortex-M has no
// libm either; these are exact or nearly so and give the same bits on every
// target, because they use only integer operations, `+`, `*` and `/`.

/// √x in Float32, correctly rounded (the same bits as IEEE-754 `sqrt`), from
/// integer arithmetic only.
///
/// `x = m · 2^u` with an integer significand m; u is made even (m doubled if
/// not), then `r = ⌊√(m · 2^24)⌋` by the digit-by-digit method, rounded to
/// nearest with the remainder, and scaled by `2^((u − 24)/2)` (exact).
/// Worked example: `sqrtF32(2)`: m = 2^23, u = −22 → M = 2^47, r = 11863283,
/// remainder 3.6e6 > r → 11863284 · 2^−23 = 1.4142135. −0 → −0; x < 0 or
/// NaN → NaN; +∞ → +∞.
public func sqrtF32(_ x: Float) -> Float {
    if x.isNaN || x < 0 { return Float.nan }
    if x == 0 || x == Float.infinity { return x }
    let bits = x.bitPattern
    let biased = Int((bits >> 23) & 0xFF)
    var m = UInt64(bits & 0x007F_FFFF)
    var u = biased - 150  // x = m · 2^u
    if biased == 0 {
        u = -149
        while m < 0x0080_0000 {
            m <<= 1
            u -= 1
        }
    } else {
        m |= 0x0080_0000
    }
    if u & 1 != 0 {
        m <<= 1
        u -= 1
    }
    // r = ⌊√M⌋, rest = M − r², M = m · 2^24 < 2^49.
    var rest = m << 24
    var r: UInt64 = 0
    var one: UInt64 = 1 << 48
    while one > rest { one >>= 2 }
    while one != 0 {
        if rest >= r + one {
            rest -= r + one
            r = (r >> 1) + one
        } else {
            r >>= 1
        }
        one >>= 2
    }
    var k = (u - 24) / 2
    if r >= 1 << 24 {
        // 25 bits: halve, rounding up on a set low bit (no exact tie is possible).
        r = (r >> 1) + (r & 1)
        k += 1
    } else if rest > r {
        r += 1  // √M ≥ r + ½ ⟺ M − r² > r
    }
    return Float(r) * powerOfTwo(k)
}

/// 2^k for −126 ≤ k ≤ 127, from its bit pattern.
@inline(__always)
func powerOfTwo(_ k: Int) -> Float {
    Float(bitPattern: UInt32(truncatingIfNeeded: k + 127) << 23)
}

/// Natural logarithm in Float32 without libm, bit-identical on every target.
///
/// `x = 2^e · m` with `m ∈ [√½, √2)`; `ln m = 2 atanh(s)`, `s = (m−1)/(m+1)`,
/// `|s| ≤ 0.1716`, summed to s¹⁵ (error < 1e-7 relative); then `+ e · ln 2`.
/// Worked example: `logF32(2)`: e = 1, m = 1, s = 0 → 0 + ln 2 = 0.6931472.
/// `logF32(0)` is −∞; negative or NaN is NaN; +∞ is +∞. Subnormals are scaled first.
public func logF32(_ x: Float) -> Float {
    if x.isNaN || x < 0 { return Float.nan }
    if x == 0 { return -Float.infinity }
    if x == Float.infinity { return x }
    var v = x
    var e: Int32 = 0
    if v < Float.leastNormalMagnitude {
        v *= 16_777_216  // 2^24
        e = -24
    }
    let bits = v.bitPattern
    e += Int32(bitPattern: (bits >> 23) & 0xFF) - 127
    var m = Float(bitPattern: (bits & 0x007F_FFFF) | 0x3F80_0000)  // [1, 2)
    if m > 1.414_213_5 {
        m *= 0.5
        e += 1
    }
    let s = (m - 1) / (m + 1)
    let s2 = s * s
    // atanh(s)/s = 1 + s²/3 + s⁴/5 + … + s¹⁴/15 (Horner).
    var p: Float = 1.0 / 15
    p = p * s2 + 1.0 / 13
    p = p * s2 + 1.0 / 11
    p = p * s2 + 1.0 / 9
    p = p * s2 + 1.0 / 7
    p = p * s2 + 1.0 / 5
    p = p * s2 + 1.0 / 3
    p = p * s2 + 1
    let lnm = 2 * s * p
    // e · ln 2 in two parts (Cephes): 0.693359375 has 9 significant bits, so e · it is exact.
    let fe = Float(e)
    return fe * 0.693_359_375 + (lnm + fe * -2.121_944_4e-4)
}

