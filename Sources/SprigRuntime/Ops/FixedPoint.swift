// Fixed-point primitives of the int8 (q8) scheme, bit-compatible with
// TFLite / gemmlowp ("classic" rounding: a doubling high multiply that rounds,
// then a rounding right shift).
//
// A real multiplier M > 0 is stored as a Q31 mantissa and a power of two:
//
//     M ≈ multiplier / 2^31 · 2^shift,   multiplier ∈ [2^30, 2^31),  shift ∈ -31...30
//
// and an int32 accumulator `acc` is scaled by it with
// `multiplyByQuantizedMultiplier(acc, multiplier, shift)`.
//
// The scalar functions are the specification. The SIMD8 overloads at the
// bottom (internal, used by the kernels' requantization) compute exactly the
// same values lane by lane; FixedPointTests checks that.

// MARK: - Scalar primitives (public)

/// Saturating rounding doubling high multiply (gemmlowp `SaturatingRoundingDoublingHighMul`,
/// ARM `SQRDMULH`): the high 32 bits of `2·a·b`, rounded.
///
/// Computes `(a·b + nudge) / 2^31` with C truncating division, where
/// `nudge = 2^30` if `a·b ≥ 0` and `1 − 2^30` otherwise, exactly as gemmlowp.
/// That formula equals `floor(a·b / 2^31 + 1/2)`: halves round toward +∞
/// (away from zero for positive products, toward zero for negative ones), and
/// it is how this function computes it (a 64-bit product, an add and an
/// arithmetic shift; no 64-bit division).
///
/// The one overflow, `a == b == Int32.min` (whose exact result is 2^31),
/// saturates to `Int32.max`. Every other input gives the exact rounded value.
///
/// Worked examples:
/// ```
/// saturatingRoundingDoublingHighMul(1 << 30, 1 << 30)   // 2^60 / 2^31 = 2^29 = 536_870_912
/// saturatingRoundingDoublingHighMul(3, 1 << 30)         // 3·2^30 / 2^31 = 1.5   → 2
/// saturatingRoundingDoublingHighMul(-3, 1 << 30)        // −1.5 → −1 (half rounds up)
/// saturatingRoundingDoublingHighMul(100, 1_073_741_824) // 100 · 0.5 = 50
/// saturatingRoundingDoublingHighMul(.min, .min)         // 2^31 does not fit → Int32.max
/// ```
@inline(__always)
public func saturatingRoundingDoublingHighMul(_ a: Int32, _ b: Int32) -> Int32 {
    if a == Int32.min && b == Int32.min { return Int32.max }
    // |a·b| ≤ 2^62, so the product and the nudge cannot overflow Int64.
    let product = Int64(a) &* Int64(b)
    return Int32(truncatingIfNeeded: (product &+ (1 << 30)) &>> 31)
}

/// Rounding arithmetic right shift (gemmlowp `RoundingDivideByPOT`):
/// `x / 2^exponent` rounded to nearest, halves away from zero.
///
/// gemmlowp formulation:
/// ```
/// mask      = 2^exponent − 1
/// remainder = x & mask
/// threshold = mask >> 1 + (x < 0 ? 1 : 0)
/// result    = (x >> exponent) + (remainder > threshold ? 1 : 0)
/// ```
/// Worked examples:
/// ```
/// roundingDivideByPOT(5, 1)    //  2.5   →  3
/// roundingDivideByPOT(-5, 1)   // −2.5   → −3
/// roundingDivideByPOT(-6, 2)   // −1.5   → −2
/// roundingDivideByPOT(-5, 2)   // −1.25  → −1
/// roundingDivideByPOT(7, 0)    //  7
/// roundingDivideByPOT(.min, 31) // −1
/// ```
/// - Parameter exponent: 0...31. Other values are not trapped on: the shift
///   count is taken modulo 32.
@inline(__always)
public func roundingDivideByPOT(_ x: Int32, _ exponent: Int32) -> Int32 {
    let mask = (1 as Int32) &<< exponent &- 1          // exponent 31: Int32.min − 1 wraps to Int32.max
    let remainder = x & mask
    let threshold = (mask &>> 1) &+ (x < 0 ? 1 : 0)
    return (x &>> exponent) &+ (remainder > threshold ? 1 : 0)
}

/// Scales an int32 accumulator by the real multiplier `multiplier / 2^31 · 2^shift`
/// (TFLite `MultiplyByQuantizedMultiplier`, classic double rounding).
///
/// ```
/// leftShift  = max(shift, 0);  rightShift = max(−shift, 0)
/// result     = roundingDivideByPOT(saturatingRoundingDoublingHighMul(x · 2^leftShift, multiplier), rightShift)
/// ```
/// `x · 2^leftShift` wraps on overflow, as TFLite's `x * (1 << left_shift)`
/// does on every real target.
///
/// Worked example: the real multiplier 0.3 is `quantizeMultiplier(0.3)` =
/// `(1_288_490_189, -1)` (0.6·2^31, shift −1). Then
/// ```
/// multiplyByQuantizedMultiplier(1000, 1_288_490_189, -1)
///   = roundingDivideByPOT(saturatingRoundingDoublingHighMul(1000, 1_288_490_189), 1)
///   = roundingDivideByPOT(600, 1)   // 1000 · 0.600000000093 = 600.00000009 → 600
///   = 300                           // 1000 · 0.3
/// ```
/// - Parameters:
///   - multiplier: Q31 mantissa, normally in [2^30, 2^31) or 0.
///   - shift: -31...30. Out-of-range values do not trap (shift counts wrap modulo 32).
@inline(__always)
public func multiplyByQuantizedMultiplier(_ x: Int32, _ multiplier: Int32, _ shift: Int32) -> Int32 {
    let leftShift: Int32 = shift > 0 ? shift : 0
    let rightShift: Int32 = shift > 0 ? 0 : 0 &- shift
    return roundingDivideByPOT(saturatingRoundingDoublingHighMul(x &<< leftShift, multiplier), rightShift)
}

/// Splits a real multiplier into a Q31 mantissa and a power-of-two shift
/// (TFLite `QuantizeMultiplier`): `real ≈ multiplier / 2^31 · 2^shift`.
///
/// With `real = q · 2^shift`, `q ∈ [0.5, 1)` (what `frexp` returns, here taken
/// from `real.significand / 2` and `real.exponent + 1`), the mantissa is
/// `round(q · 2^31)` with halves away from zero. When that rounds up to 2^31 the
/// mantissa is halved and the shift incremented, so `multiplier ∈ [2^30, 2^31)`.
///
/// Worked examples:
/// ```
/// quantizeMultiplier(0.5)   // (1 << 30, 0)   0.5  = 2^30/2^31 · 2^0
/// quantizeMultiplier(1.0)   // (1 << 30, 1)   1.0  = 0.5 · 2^1
/// quantizeMultiplier(0.25)  // (1 << 30, -1)
/// quantizeMultiplier(0.3)   // (1_288_490_189, -1)   0.6 · 2^31 = 1288490188.8 → …189
/// quantizeMultiplier(0.0)   // (0, 0)
/// ```
/// Edge cases: 0, NaN and ±∞ give `(0, 0)`; a real so small that `shift < -31`
/// gives `(0, 0)` (TFLite does the same); a real ≥ 2^30 saturates to
/// `(Int32.max, 30)`, the largest multiplier `multiplyByQuantizedMultiplier`
/// accepts. A negative real gives the negated mantissa of its magnitude.
/// Used by the compiler and the blob writer, never inside a kernel.
public func quantizeMultiplier(_ real: Double) -> (multiplier: Int32, shift: Int32) {
    guard real.isFinite, real != 0 else { return (0, 0) }
    let magnitude = real.magnitude
    var shift = Int(magnitude.exponent) + 1            // frexp exponent
    let q = magnitude.significand / 2                  // frexp fraction in [0.5, 1)
    // round(q·2^31), halves away from zero, without libm's `round`: q·2^31 ∈ [2^30, 2^31)
    // is positive and its fraction is exact in Double.
    let scaled = q * 2_147_483_648.0
    var mantissa = Int64(scaled)                                        // truncation
    if scaled - Double(mantissa) >= 0.5 { mantissa += 1 }               // ∈ [2^30, 2^31]
    if mantissa == 1 << 31 {
        mantissa /= 2
        shift += 1
    }
    if shift < -31 { return (0, 0) }
    var multiplier = Int32(truncatingIfNeeded: mantissa)
    if shift > 30 {
        multiplier = Int32.max
        shift = 30
    }
    return (real < 0 ? 0 &- multiplier : multiplier, Int32(truncatingIfNeeded: shift))
}

/// Clamps `x` to `[lower, upper]` and then to the int8 range, and narrows.
///
/// ```
/// clampToInt8(300, -128, 127)   // 127
/// clampToInt8(-5, 0, 127)       // 0 (a fused ReLU with output zero point 0)
/// clampToInt8(42, -128, 6)      // 6
/// ```
/// Never traps: bounds outside [-128, 127] are clipped to it.
@inline(__always)
public func clampToInt8(_ x: Int32, _ lower: Int32, _ upper: Int32) -> Int8 {
    var v = x < lower ? lower : x
    v = v > upper ? upper : v
    v = v < -128 ? -128 : v
    v = v > 127 ? 127 : v
    return Int8(truncatingIfNeeded: v)
}

// MARK: - SIMD8 versions (internal), lane-wise identical to the scalar ones

/// Lane-wise `saturatingRoundingDoublingHighMul`.
///
/// The 64-bit products are formed as two SIMD4<Int64> halves over the same
/// 256 bits (even lanes sign-extended in place, odd lanes shifted down), the
/// form LLVM lowers to two vpmuldq; bits 31...62 of each `product + 2^30` are
/// put back in their lanes with a shift and a blend (little-endian lane order,
/// as on every Sprig target).
@inline(__always)
func saturatingRoundingDoublingHighMul(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>) -> SIMD8<Int32> {
    let a64 = unsafeBitCast(a, to: SIMD4<Int64>.self), b64 = unsafeBitCast(b, to: SIMD4<Int64>.self)
    let even = ((a64 &<< 32) &>> 32) &* ((b64 &<< 32) &>> 32)      // lanes 0, 2, 4, 6
    let odd = (a64 &>> 32) &* (b64 &>> 32)                          // lanes 1, 3, 5, 7
    let evenRounded = unsafeBitCast(even &+ (1 << 30), to: SIMD4<UInt64>.self) &>> 31
    let oddRounded = unsafeBitCast(odd &+ (1 << 30), to: SIMD4<UInt64>.self) &>> 31
    let result = unsafeBitCast((evenRounded & 0xFFFF_FFFF) | (oddRounded &<< 32), to: SIMD8<Int32>.self)
    // Saturate the lanes where a == b == Int32.min. Written with integer ops
    // (t == 0 exactly there; `nonzero` is all ones where t != 0) because the
    // stdlib's `.==` on SIMD8<Int32> does not vectorize; LLVM turns this into
    // vpcmpeqd + vblendvps.
    let t = (a ^ Int32.min) | (b ^ Int32.min)
    let nonzero = (t | (0 &- t)) &>> 31
    return (result & nonzero) | (SIMD8(repeating: Int32.max) & ~nonzero)
}

/// `saturatingRoundingDoublingHighMul(a, b)` for a `b` with no lane equal to Int32.min,
/// which is then never saturated: a requantization multiplier, 0 or ≥ 2^30 (the
/// blob validation's rule, `expectMultiplier`). It saves the fix-up's five
/// instructions per 8 lanes, which the small convolutions and Add pay per output.
@inline(__always)
func roundingDoublingHighMul(_ a: SIMD8<Int32>, byMultiplier b: SIMD8<Int32>) -> SIMD8<Int32> {
    let a64 = unsafeBitCast(a, to: SIMD4<Int64>.self), b64 = unsafeBitCast(b, to: SIMD4<Int64>.self)
    let even = ((a64 &<< 32) &>> 32) &* ((b64 &<< 32) &>> 32)
    let odd = (a64 &>> 32) &* (b64 &>> 32)
    let evenRounded = unsafeBitCast(even &+ (1 << 30), to: SIMD4<UInt64>.self) &>> 31
    let oddRounded = unsafeBitCast(odd &+ (1 << 30), to: SIMD4<UInt64>.self) &>> 31
    return unsafeBitCast((evenRounded & 0xFFFF_FFFF) | (oddRounded &<< 32), to: SIMD8<Int32>.self)
}

/// Lane-wise `roundingDivideByPOT` with a per-lane exponent (0...31).
@inline(__always)
func roundingDivideByPOT(_ x: SIMD8<Int32>, _ exponent: SIMD8<Int32>) -> SIMD8<Int32> {
    let one = SIMD8<Int32>(repeating: 1)
    let mask = (one &<< exponent) &- one
    let remainder = x & mask
    // x >> 31 is −1 for negative x: threshold = mask/2 + (x < 0 ? 1 : 0).
    let threshold = (mask &>> 1) &- (x &>> 31)
    // threshold − remainder ∈ [−(2^31 − 1), 2^30] cannot wrap; its sign bit says remainder > threshold.
    return (x &>> exponent) &- ((threshold &- remainder) &>> 31)
}

/// Per-channel requantization parameters of 8 consecutive channels, split the
/// way `multiplyByQuantizedMultiplier` uses them.
struct Requant8 {
    var multiplier: SIMD8<Int32>
    var leftShift: SIMD8<Int32>
    var rightShift: SIMD8<Int32>

    /// Loads channels `channel ..< channel + 8`.
    @inline(__always)
    init(multipliers: UnsafePointer<Int32>, shifts: UnsafePointer<Int32>, channel: Int) {
        multiplier = loadLanes(multipliers + channel)
        let shift: SIMD8<Int32> = loadLanes(shifts + channel)
        let zero = SIMD8<Int32>(repeating: 0)
        leftShift = maxLanes(shift, zero)
        rightShift = maxLanes(zero &- shift, zero)
    }

    /// One multiplier and shift for all lanes (per-tensor quantization).
    @inline(__always)
    init(multiplier m: Int32, shift: Int32) {
        multiplier = SIMD8(repeating: m)
        leftShift = SIMD8(repeating: shift > 0 ? shift : 0)
        rightShift = SIMD8(repeating: shift > 0 ? 0 : 0 &- shift)
    }

    /// Lane-wise `multiplyByQuantizedMultiplier(x, multiplier, shift)`, for multipliers
    /// 0 or ≥ 2^30 (every validated blob's; see `roundingDoublingHighMul(_:byMultiplier:)`).
    @inline(__always)
    func apply(_ x: SIMD8<Int32>) -> SIMD8<Int32> {
        roundingDivideByPOT(roundingDoublingHighMul(x &<< leftShift, byMultiplier: multiplier), rightShift)
    }
}

/// Lane-wise `multiplyByQuantizedMultiplier` (tests compare it with the scalar one).
@inline(__always)
func multiplyByQuantizedMultiplier(_ x: SIMD8<Int32>, _ multiplier: SIMD8<Int32>,
                                   _ shift: SIMD8<Int32>) -> SIMD8<Int32> {
    let zero = SIMD8<Int32>(repeating: 0)
    let leftShift = maxLanes(shift, zero)
    let rightShift = maxLanes(zero &- shift, zero)
    return roundingDivideByPOT(saturatingRoundingDoublingHighMul(x &<< leftShift, multiplier), rightShift)
}

/// The output stage of every requantizing q8 kernel:
/// `out = clamp(x + zeroPoint, clampMin, clampMax)` narrowed to int8, where `x`
/// is the requantized accumulator.
///
/// It clamps first and adds the zero point after, `clamp(x, lower − zp, upper − zp) + zp`,
/// which is the same value but cannot overflow Int32 however large `x` is.
/// The bounds are first intersected with [-128, 127], as `clampToInt8` does.
struct OutputStageQ8 {
    var zeroPoint: Int32
    /// `max(clampMin, -128) − zeroPoint`.
    var lower: Int32
    /// `min(clampMax, 127) − zeroPoint`.
    var upper: Int32

    @inline(__always)
    init(zeroPoint: Int32, clampMin: Int32, clampMax: Int32) {
        let l: Int64 = clampMin < -128 ? -128 : (clampMin > 127 ? 127 : Int64(clampMin))
        let u: Int64 = clampMax > 127 ? 127 : (clampMax < -128 ? -128 : Int64(clampMax))
        self.zeroPoint = zeroPoint
        lower = Int32(clamping: l &- Int64(zeroPoint))
        upper = Int32(clamping: u &- Int64(zeroPoint))
    }

    @inline(__always)
    func callAsFunction(_ x: Int32) -> Int8 {
        var v = x < lower ? lower : x
        v = v > upper ? upper : v
        return Int8(truncatingIfNeeded: v &+ zeroPoint)
    }

    @inline(__always)
    func callAsFunction(_ x: SIMD8<Int32>) -> SIMD8<Int8> {
        let v = minLanes(maxLanes(x, SIMD8(repeating: lower)), SIMD8(repeating: upper))
        return narrowLanes(v &+ SIMD8(repeating: zeroPoint))
    }
}

// MARK: - 16 lanes, one rounding shift in 64 bits

/// `multiplyByQuantizedMultiplier` of 16 lanes, as `Requant8.apply` computes it, with
/// the two roundings (the doubling high multiply's and the rounding right shift's)
/// folded into one arithmetic right shift of the 64-bit product.
///
/// For `x' = x << leftShift` (wrapping Int32, as in `Requant8.apply`), `P = x'·M` exactly
/// in Int64 and `r` the right shift (0...31):
///
///     X      = floor((P + 2^30) / 2^31)                   (the doubling high multiply)
///     result = X                                          if r = 0
///              floor((X + 2^(r−1))     / 2^r)             if r ≥ 1, X ≥ 0
///              floor((X + 2^(r−1) − 1) / 2^r)             if r ≥ 1, X < 0
///
/// (the last two are gemmlowp's `(X >> r) + (X & mask > mask/2 + (X < 0))`: the
/// remainder X mod 2^r is ≥ 2^(r−1), or > 2^(r−1) for X < 0). Nested floors of
/// divisions by positive integers merge, `floor((floor(a / m) + c) / n) = floor((a + c·m) / (m·n))`,
/// so with `q = P + 2^30`
///
///     result = floor((q + K − [X < 0]·A) / 2^(31 + r)),   K = 2^(30 + r), A = 2^31  (r ≥ 1)
///                                                         K = A = 0                 (r = 0)
///
/// and `X < 0` exactly when `q < 0`. Every term stays inside Int64: |P| ≤ 2^62 and
/// K ≤ 2^61. The result equals `Requant8.apply`'s lane for every x when M ≠ Int32.min
/// and the shift is in −31...31 (then X fits Int32, so the truncation to 32 bits
/// there loses nothing, and r ≤ 31); `requantFitsOneShift` checks that.
struct Requant16 {
    var multiplier: SIMD16<Int32>
    var leftShift: SIMD16<Int32>
    /// K + 2^30 of the even lanes (0, 2, …) and of the odd ones, as 8 Int64 each.
    var roundEven: SIMD8<Int64>, roundOdd: SIMD8<Int64>
    /// A of the even and odd lanes.
    var negativeEven: SIMD8<Int64>, negativeOdd: SIMD8<Int64>
    /// 31 + r of the even and odd lanes.
    var shiftEven: SIMD8<Int64>, shiftOdd: SIMD8<Int64>

    /// Lane i takes `multiplier[i]` and `shift[i]` (−31...31, multiplier ≠ Int32.min).
    @inline(__always)
    init(multiplier m: SIMD16<Int32>, shift: SIMD16<Int32>) {
        multiplier = m
        let zero = SIMD16<Int32>(repeating: 0)
        leftShift = maxLanes16(shift, zero)
        let r = maxLanes16(zero &- shift, zero)
        // Per 64-bit lane pair: the even lane's r in the low half, the odd lane's in the high half.
        let r64 = unsafeBitCast(r, to: SIMD8<Int64>.self)
        let rEven = r64 & 0xFFFF_FFFF, rOdd = r64 &>> 32
        // [r ≥ 1] as all ones: (0 − r) >> 63 for 0 ≤ r ≤ 31.
        let positiveEven = (0 &- rEven) &>> 63, positiveOdd = (0 &- rOdd) &>> 63
        roundEven = ((SIMD8<Int64>(repeating: 1) &<< (rEven &+ 30)) & positiveEven) &+ (1 << 30)
        roundOdd = ((SIMD8<Int64>(repeating: 1) &<< (rOdd &+ 30)) & positiveOdd) &+ (1 << 30)
        negativeEven = SIMD8(repeating: 1 << 31) & positiveEven
        negativeOdd = SIMD8(repeating: 1 << 31) & positiveOdd
        shiftEven = rEven &+ 31
        shiftOdd = rOdd &+ 31
    }

    /// One multiplier and shift in every lane.
    @inline(__always)
    init(multiplier m: Int32, shift: Int32) {
        self.init(multiplier: SIMD16(repeating: m), shift: SIMD16(repeating: shift))
    }

    @_transparent
    func apply(_ x: SIMD16<Int32>) -> SIMD16<Int32> {
        apply(x, RoundsNegatives.self)
    }

    /// `apply`, or with `ClampsNegatives` without the correction of negative products: a lane
    /// with q < 0 then gets ⌊(q + K) / 2^(31+r)⌋ ≤ 0 (q + K < 2^(30+r)) where the exact value
    /// is ≤ 0 too, so an output stage with a lower bound ≥ 0 makes both that bound.
    @_transparent
    func apply<N: NegativeRounding>(_ x: SIMD16<Int32>, _: N.Type) -> SIMD16<Int32> {
        let x64 = unsafeBitCast(x &<< leftShift, to: SIMD8<Int64>.self)
        let m64 = unsafeBitCast(multiplier, to: SIMD8<Int64>.self)
        let even = ((x64 &<< 32) &>> 32) &* ((m64 &<< 32) &>> 32)      // vpmuldq
        let odd = (x64 &>> 32) &* (m64 &>> 32)
        if !N.corrects {
            let rEven = (even &+ roundEven) &>> shiftEven, rOdd = (odd &+ roundOdd) &>> shiftOdd
            return unsafeBitCast((rEven & 0xFFFF_FFFF) | (rOdd &<< 32), to: SIMD16<Int32>.self)
        }
        // q = P + 2^30 < 0 exactly when P < −2^30 (a compare); `round` holds K + 2^30.
        let low = SIMD8<Int64>(repeating: -(1 << 30))
        let rEven = (even &+ roundEven &- negativeEven.replacing(with: 0, where: low .<= even)) &>> shiftEven
        let rOdd = (odd &+ roundOdd &- negativeOdd.replacing(with: 0, where: low .<= odd)) &>> shiftOdd
        return unsafeBitCast((rEven & 0xFFFF_FFFF) | (rOdd &<< 32), to: SIMD16<Int32>.self)
    }
}

/// `Requant16` with one multiplier and shift for every lane (per-tensor): the shifts are by
/// one count (vpsllq/vpsraq by a register), the constants broadcast.
struct Requant16Uniform {
    var multiplier: Int32
    var leftShift: Int64
    /// K (without the 2^30, which `apply` adds).
    var round: Int64
    var negative: Int64
    var shift: Int64

    /// `shift` in −31...31 and `m` ≠ Int32.min (see `Requant16`).
    @inline(__always)
    init(multiplier m: Int32, shift s: Int32) {
        multiplier = m
        leftShift = s > 0 ? Int64(s) : 0
        let r: Int64 = s > 0 ? 0 : 0 &- Int64(s)
        round = r > 0 ? 1 &<< (r &+ 30) : 0
        negative = r > 0 ? 1 &<< 31 : 0
        shift = r &+ 31
    }

    @_transparent
    func apply(_ x: SIMD16<Int32>) -> SIMD16<Int32> {
        let x64 = unsafeBitCast(x &<< SIMD16(repeating: Int32(truncatingIfNeeded: leftShift)), to: SIMD8<Int64>.self)
        let m = SIMD8<Int64>(repeating: Int64(multiplier))
        let even = ((x64 &<< 32) &>> 32) &* m                  // vpmuldq
        let odd = (x64 &>> 32) &* m
        // q = P + 2^30 < 0 exactly when P < −2^30 (a compare); K + 2^30 is one constant.
        let k = SIMD8<Int64>(repeating: round &+ (1 << 30)), a = SIMD8<Int64>(repeating: negative)
        let s = SIMD8<Int64>(repeating: shift)
        let low = SIMD8<Int64>(repeating: -(1 << 30))
        let rEven = (even &+ k &- (a.replacing(with: 0, where: low .<= even))) &>> s
        let rOdd = (odd &+ k &- (a.replacing(with: 0, where: low .<= odd))) &>> s
        return unsafeBitCast((rEven & 0xFFFF_FFFF) | (rOdd &<< 32), to: SIMD16<Int32>.self)
    }
}

/// Whether every multiplier ≠ Int32.min and every shift is in −31...31 over `count`
/// channels: the domain where `Requant16` equals `Requant8` (validated blobs always are).
@inline(__always)
func requantFitsOneShift(_ multipliers: UnsafePointer<Int32>, _ shifts: UnsafePointer<Int32>, count: Int) -> Bool {
    var ok = true
    var i = 0
    while i < count {
        ok = ok && multipliers[i] != Int32.min && shifts[i] >= -31 && shifts[i] <= 31
        i &+= 1
    }
    return ok
}

/// Lane-wise maximum of 16 Int32 lanes (vpmaxsd).
@inline(__always)
func maxLanes16(_ a: SIMD16<Int32>, _ b: SIMD16<Int32>) -> SIMD16<Int32> {
    SIMD16(lowHalf: maxLanes(a.lowHalf, b.lowHalf), highHalf: maxLanes(a.highHalf, b.highHalf))
}

/// Lane-wise minimum of 16 Int32 lanes (vpminsd).
@inline(__always)
func minLanes16(_ a: SIMD16<Int32>, _ b: SIMD16<Int32>) -> SIMD16<Int32> {
    SIMD16(lowHalf: minLanes(a.lowHalf, b.lowHalf), highHalf: minLanes(a.highHalf, b.highHalf))
}

extension OutputStageQ8 {
    /// The output stage of 16 lanes.
    @_transparent
    func callAsFunction(_ x: SIMD16<Int32>) -> SIMD16<Int8> {
        // A lane loop of selects: LLVM makes it vpmaxsd, vpminsd, vpaddd, vpmovdb.
        var out = SIMD16<Int8>()
        for i in 0 ..< 16 {
            let low = x[i] < lower ? lower : x[i]
            out[i] = Int8(truncatingIfNeeded: (low > upper ? upper : low) &+ zeroPoint)
        }
        return out
    }
}

// MARK: - ReLU output stages

/// Whether a requantization corrects the rounding of negative products
/// (`PackedEpilogue.apply`, `Requant16.apply`), as a type, so that each tile's body is
/// compiled once each way and the tile branches once: a branch on the flag at each
/// requantization measured slower than always correcting.
protocol NegativeRounding {
    static var corrects: Bool { get }
}

/// The exact rounding of every lane.
enum RoundsNegatives: NegativeRounding {
    static var corrects: Bool { true }
}

/// No correction: for an output stage whose lower bound is ≥ 0 (`OutputStageQ8.clampsNegatives`).
enum ClampsNegatives: NegativeRounding {
    static var corrects: Bool { false }
}

extension OutputStageQ8 {
    /// Whether the lower bound is ≥ 0, so that every requantized value ≤ 0 comes out as the
    /// bound: then the rounding of negative products need not be exact (`ClampsNegatives`).
    var clampsNegatives: Bool { lower >= 0 }
}
