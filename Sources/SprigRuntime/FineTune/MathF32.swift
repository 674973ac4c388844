// Float32 square root and logarithm without libm (fine-tuning and L2Normalize).
//
// A host debug build of sprig-edge does not link libm, and a Cortex-M has no
// libm either; these are exact or nearly so and give the same bits on every
// target, because they use only integer operations, `+`, `*` and `/`.

/// √x in Float32, correctly rounded (the same bits as IEEE-754 `sqrt`), without libm.
///
/// On 64-bit targets (x86-64, AArch64: hardware Float64) by ``sqrtF32Refined(_:)``,
/// elsewhere (Cortex-M, RISC-V 32, where Float64 is emulated) by ``sqrtF32Digits(_:)``.
/// Both are correctly rounded, so the bits are the same on every target; the
/// tests hold each to `Float.squareRoot()`. Adam calls this once per parameter
/// per step, hence the fast path.
/// −0 → −0; x < 0 or NaN → NaN; +∞ → +∞.
@inline(__always)
public func sqrtF32(_ x: Float) -> Float {
    #if arch(x86_64) || arch(arm64)
    return sqrtF32Refined(x)
    #else
    return sqrtF32Digits(x)
    #endif
}

/// √x in Float32, correctly rounded, from Float64 multiplications and one exact check.
///
/// 1. An estimate y ≈ 1/√x from the bit pattern (relative error < 3.5%), then four
///    Newton steps `y ← y (1.5 − 0.5 x y²)` (error squared each time: below 1e-15).
/// 2. `r = Float(x · y)`, which is at most one ulp from the correctly rounded root.
/// 3. The exact check: the rounding boundaries of r are the midpoints
///    `m = (r + r.nextDown) / 2` and `M = (r + r.nextUp) / 2`; they have 25
///    significant bits, so m² and M² (≤ 50 bits) are exact in Float64, as is x.
///    x < m² → r.nextDown; x > M² → r.nextUp. (x = m² cannot happen: the square
///    of an odd 25-bit significand has more than 24 bits.)
///
/// Worked example: `sqrtF32Refined(2)`: y → 0.70710678118654746, x · y =
/// 1.414213562373095 → r = 1.4142135 (bits 0x3FB504F3); m² = 1.99999976… < 2 <
/// M² = 2.00000010…, so r stands (the same bits as `sqrtF32Digits(2)`).
/// −0 → −0; x < 0 or NaN → NaN; +∞ → +∞.
public func sqrtF32Refined(_ x: Float) -> Float {
    if x.isNaN || x < 0 { return Float.nan }
    if x == 0 || x == Float.infinity { return x }
    let d = Double(x)  // exact; normal in Float64 even for subnormal x
    // 1. 1/√d: the classic bit-pattern estimate, then Newton (no division).
    var y = Double(bitPattern: 0x5FE6_EB50_C7B5_37A9 &- (d.bitPattern >> 1))
    let half = 0.5 * d
    y = y * (1.5 - half * y * y)
    y = y * (1.5 - half * y * y)
    y = y * (1.5 - half * y * y)
    y = y * (1.5 - half * y * y)
    // 2. The candidate.
    var r = Float(d * y)
    // 3. The exact check against the two rounding boundaries of r.
    let rd = Double(r)
    let below = 0.5 * (rd + Double(r.nextDown)), above = 0.5 * (rd + Double(r.nextUp))
    if d < below * below {
        r = r.nextDown
    } else if d > above * above {
        r = r.nextUp
    }
    return r
}

/// √x in Float32, correctly rounded (the same bits as IEEE-754 `sqrt`), from
/// integer arithmetic only: the portable oracle of ``sqrtF32(_:)``.
///
/// `x = m · 2^u` with an integer significand m; u is made even (m doubled if
/// not), then `r = ⌊√(m · 2^24)⌋` by the digit-by-digit method, rounded to
/// nearest with the remainder, and scaled by `2^((u − 24)/2)` (exact).
/// Worked example: `sqrtF32Digits(2)`: m = 2^23, u = −22 → M = 2^47, r = 11863283,
/// remainder 4817239 ≤ r → 11863283 · 2^−23 = 1.4142135 (bits 0x3FB504F3). −0 → −0; x < 0 or
/// NaN → NaN; +∞ → +∞.
public func sqrtF32Digits(_ x: Float) -> Float {
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

