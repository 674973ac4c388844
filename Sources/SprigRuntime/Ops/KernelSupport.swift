// Small internal helpers shared by the kernels: unaligned SIMD loads and
// stores through typed pointers, and the clipping of a sliding window to the
// taps that fall inside the input.

/// Loads `V.scalarCount` consecutive scalars starting at `pointer` (no alignment needed).
@inline(__always)
func loadLanes<V: SIMD>(_ pointer: UnsafePointer<V.Scalar>) -> V {
    UnsafeRawPointer(pointer).loadUnaligned(as: V.self)
}

/// Stores the lanes of `vector` at `pointer ..< pointer + V.scalarCount` (no alignment needed).
@inline(__always)
func storeLanes<V: SIMD>(_ vector: V, _ pointer: UnsafeMutablePointer<V.Scalar>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: vector, as: V.self)
}

// A note on stdlib SIMD helpers. SwiftPM compiles a release module with
// multi-threaded WMO (one LLVM module per source file), and there the stdlib's
// generic SIMD conversions (`init(truncatingIfNeeded:)` between element types)
// and `pointwiseMin`/`pointwiseMax` stay out-of-line calls, one per vector, in
// the middle of the hot loops (2× slower q8 convolutions). The helpers below
// spell the same operations with concrete lane initializers, `replacing(with:where:)`
// and bit casts, which the SIL inliner always inlines and LLVM turns into
// vpmovsxbd / vpminsd / vpmaxsd / vpshufb.

/// Loads 16 int8 at `pointer` and sign-extends them to Int32 (one vpmovsxbd with
/// AVX-512, two without).
@inline(__always)
func loadWidened16(_ pointer: UnsafePointer<Int8>) -> SIMD16<Int32> {
    let v: SIMD16<Int8> = loadLanes(pointer)
    return SIMD16(Int32(v[0]), Int32(v[1]), Int32(v[2]), Int32(v[3]), Int32(v[4]), Int32(v[5]), Int32(v[6]), Int32(v[7]),
                  Int32(v[8]), Int32(v[9]), Int32(v[10]), Int32(v[11]), Int32(v[12]), Int32(v[13]), Int32(v[14]),
                  Int32(v[15]))
}

/// Loads 8 int8 at `pointer` and sign-extends them to Int32 (one vpmovsxbd).
@inline(__always)
func loadWidened8(_ pointer: UnsafePointer<Int8>) -> SIMD8<Int32> {
    let v: SIMD8<Int8> = loadLanes(pointer)
    return SIMD8(Int32(v[0]), Int32(v[1]), Int32(v[2]), Int32(v[3]),
                 Int32(v[4]), Int32(v[5]), Int32(v[6]), Int32(v[7]))
}

/// The low byte of every lane (lanes already within the int8 range).
@inline(__always)
func narrowLanes(_ v: SIMD8<Int32>) -> SIMD8<Int8> {
    SIMD8(Int8(truncatingIfNeeded: v[0]), Int8(truncatingIfNeeded: v[1]),
          Int8(truncatingIfNeeded: v[2]), Int8(truncatingIfNeeded: v[3]),
          Int8(truncatingIfNeeded: v[4]), Int8(truncatingIfNeeded: v[5]),
          Int8(truncatingIfNeeded: v[6]), Int8(truncatingIfNeeded: v[7]))
}

/// Lane-wise maximum of Int32 vectors (vpmaxsd).
@inline(__always)
func maxLanes(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>) -> SIMD8<Int32> {
    a.replacing(with: b, where: a .< b)
}

/// Lane-wise minimum of Int32 vectors (vpminsd).
@inline(__always)
func minLanes(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>) -> SIMD8<Int32> {
    a.replacing(with: b, where: b .< a)
}

/// The taps `first ..< end` of a window of `kernel` taps, starting at input
/// coordinate `origin` (= output · stride − pad), that lie inside `0 ..< extent`.
/// Empty (`first == end`) when the window lies wholly in the padding.
@inline(__always)
func validTaps(origin: Int, kernel: Int, extent: Int) -> (first: Int, end: Int) {
    let first = origin < 0 ? 0 &- origin : 0
    let last = extent &- origin
    var end = last < kernel ? last : kernel
    if end < first { end = first }
    return (first < kernel ? first : kernel, end < kernel ? end : kernel)
}

/// The output columns `first ..< end` whose whole window (all `kernel` taps)
/// lies inside `0 ..< extent`. Every other column needs clipping.
@inline(__always)
func interiorOutputs(stride: Int, pad: Int, kernel: Int, extent: Int, outputCount: Int) -> (first: Int, end: Int) {
    guard stride > 0 else { return (0, 0) }        // invalid, but no division by zero: no tiles
    // first: smallest o with o·stride − pad ≥ 0.
    var first = pad > 0 ? (pad &+ stride &- 1) / stride : 0
    if first > outputCount { first = outputCount }
    // end: one past the largest o with o·stride − pad + kernel ≤ extent.
    let room = extent &+ pad &- kernel
    var end = room < 0 ? 0 : room / stride &+ 1
    if end > outputCount { end = outputCount }
    if end < first { end = first }
    return (first, end)
}

/// Clamps every lane to `[clamp.lower, clamp.upper]` and stores it at `pointer`.
@inline(__always)
func storeClamped<V: SIMD>(_ vector: V, _ pointer: UnsafeMutablePointer<Float>, _ clamp: ClampF32) where V.Scalar == Float {
    storeLanes(clampLanes(vector, V(repeating: clamp.lower), V(repeating: clamp.upper)), pointer)
}

/// Lane-wise clamp of a float vector to `[lower, upper]`.
///
/// Written as a lane loop of compares and selects, which LLVM turns into
/// vmaxps/vminps: the stdlib's `pointwiseMin`/`pointwiseMax` on floats (and
/// `replace(with:where:)` in a generic context) do not vectorize; they spill
/// every lane to the stack.
@inline(__always)
func clampLanes<V: SIMD>(_ vector: V, _ lower: V, _ upper: V) -> V where V.Scalar: FloatingPoint {
    var v = vector
    for i in 0 ..< V.scalarCount {
        let x = v[i] < lower[i] ? lower[i] : v[i]
        v[i] = x > upper[i] ? upper[i] : x
    }
    return v
}

/// `x` clamped to `[clamp.lower, clamp.upper]`.
@inline(__always)
func clampScalarF32(_ x: Float, _ clamp: ClampF32) -> Float {
    let v = x < clamp.lower ? clamp.lower : x
    return v > clamp.upper ? clamp.upper : v
}

/// `v` rounded to the nearest integer, halves away from zero (C's `roundf`), for
/// `|v| ≤ 2^30`.
///
/// Written with a truncating conversion because `Float.rounded(_:)` becomes a
/// libm call (`roundf`) on cores without a rounding instruction (Cortex-M).
/// Exact: the integer part of a Float is itself a Float, so `v − Float(t)` is exact.
/// ```
/// roundHalfAwayFromZero(2.5)    //  3
/// roundHalfAwayFromZero(-2.5)   // −3
/// roundHalfAwayFromZero(-2.49)  // −2
/// ```
@inline(__always)
func roundHalfAwayFromZero(_ v: Float) -> Int32 {
    let t = Int32(v)
    let fraction = v - Float(t)
    return fraction >= 0.5 ? t &+ 1 : (fraction <= -0.5 ? t &- 1 : t)
}

/// Lane-wise maximum (a lane loop of selects that LLVM turns into vmaxps /
/// vpmaxsb; a `where`-filtered loop would become a chain of per-lane blends).
@inline(__always)
func maxLanes<V: SIMD>(_ a: V, _ b: V) -> V where V.Scalar: Comparable {
    var v = a
    for i in 0 ..< V.scalarCount {
        let x = b[i] > a[i] ? b[i] : a[i]
        v[i] = x
    }
    return v
}

// MARK: - int8 products in pairs (vpmaddwd)
//
// The q8 convolution tiles multiply two taps at once: the weight rows j and
// j + 1 are interleaved and sign-extended to Int16 ([w_j[0], w_j+1[0], w_j[1], …]),
// the input pair (x_j, x_j+1) is broadcast as one 32-bit lane, and
// `multiplyAddPairs` sums each pair of Int16 products into an Int32 lane. On
// x86-64 with AVX2 LLVM lowers that to one vpmaddwd per 8 channels (2 taps),
// where Int32 products need two vpmulld. Exact: the operands are int8 values, so
// no pair sum comes near the one vpmaddwd overflow (−32768·−32768 twice).
//
// LLVM recognizes the pattern only in the form `add(mul(sext even), mul(sext odd))`
// of two Int16 vectors it cannot see through. Two things destroy it, and
// `PairBarrier` stops both with one cheap lane operation each:
//   - instcombine follows the even/odd lanes back through the interleave and
//     the broadcast (to w_j, w_j+1 and x_j, x_j+1 separately): adding a zero it
//     cannot prove zero (vpaddw) hides where the lanes came from;
//   - reassociate turns `acc + (even + odd)` into `(acc + odd) + even`: an `or`
//     with such a zero (vpor) keeps the pair sum whole.
// The pairs are used on x86-64 only (`pairedTaps`); the result is the same
// exact sum either way.

/// Whether the int8 kernels take taps in pairs through `multiplyAddPairs`: on
/// x86-64 only, where the pairs lower to vpmaddwd. Elsewhere the kernels keep
/// one tap at a time in Int32 lanes (one multiply-accumulate per product): on
/// the Cortex-M4 the pairs cost 8% more instructions per reference-CNN
/// inference (8,614,572 against 7,965,018), and on aarch64 they lower to
/// smull/smlal plus de-interleaves, not measured to be faster.
@inline(__always)
var pairedTaps: Bool {
    #if arch(x86_64)
    return true
    #else
    return false
    #endif
}

/// Zeros that the optimizer cannot prove zero (see above), made from a
/// non-negative count: `n >> 63` is 0 for every `n ≥ 0`.
struct PairBarrier {
    let zero16: SIMD16<Int16>
    let zero32: SIMD8<Int32>

    /// - Parameter count: any value ≥ 0 unknown at compile time (a channel count).
    @inline(__always)
    init(count: Int) {
        zero16 = SIMD16(repeating: Int16(truncatingIfNeeded: count >> 63))
        zero32 = SIMD8(repeating: Int32(truncatingIfNeeded: count >> 63))
    }

    /// An input pair, `v + tapInputOffset` in every lane, its provenance hidden as
    /// `hide` does (one vpaddw): with VNNI the taps left after the quads take x + 128
    /// (KernelDotQ8.swift); otherwise this is `hide`.
    @inline(__always)
    func hideInput(_ v: SIMD16<Int16>) -> SIMD16<Int16> { v &+ (zero16 &+ Int16(tapInputOffset)) }
    @inline(__always)
    func hideInput(_ v: SIMD8<Int16>) -> SIMD8<Int16> { v &+ (zero16.lowHalf &+ Int16(tapInputOffset)) }

    /// `v`, with its provenance hidden from the optimizer (one vpaddw).
    @inline(__always)
    func hide(_ v: SIMD16<Int16>) -> SIMD16<Int16> { v &+ zero16 }

    /// `v`, kept whole against reassociation (one vpor).
    @inline(__always)
    func hide(_ v: SIMD8<Int32>) -> SIMD8<Int32> { v | zero32 }

    /// The xmm forms of the two above.
    @inline(__always)
    func hide(_ v: SIMD8<Int16>) -> SIMD8<Int16> { v &+ zero16.lowHalf }
    @inline(__always)
    func hide(_ v: SIMD4<Int32>) -> SIMD4<Int32> { v | zero32.lowHalf }
}

/// Rows `a` and `b` interleaved and sign-extended to Int16:
/// `[a0, b0, a1, b1, …, a7, b7]` (vpunpcklbw + vpmovsxbw).
@inline(__always)
func interleaveWidened(_ a: SIMD8<Int8>, _ b: SIMD8<Int8>) -> SIMD16<Int16> {
    SIMD16(Int16(a[0]), Int16(b[0]), Int16(a[1]), Int16(b[1]), Int16(a[2]), Int16(b[2]), Int16(a[3]), Int16(b[3]),
           Int16(a[4]), Int16(b[4]), Int16(a[5]), Int16(b[5]), Int16(a[6]), Int16(b[6]), Int16(a[7]), Int16(b[7]))
}

/// `interleaveWidened` for rows of 4: `[a0, b0, …, a3, b3]`.
@inline(__always)
func interleaveWidened(_ a: SIMD4<Int8>, _ b: SIMD4<Int8>) -> SIMD8<Int16> {
    SIMD8(Int16(a[0]), Int16(b[0]), Int16(a[1]), Int16(b[1]), Int16(a[2]), Int16(b[2]), Int16(a[3]), Int16(b[3]))
}

/// `broadcastPair` in 4 lanes of 32 bits: `[p0, p1, p0, p1, …]` (8 Int16).
@inline(__always)
func broadcastPair4(_ p: UnsafePointer<Int8>) -> SIMD8<Int16> {
    let pair = UnsafeRawPointer(p).loadUnaligned(as: UInt16.self)
    let b = unsafeBitCast(SIMD4<UInt16>(repeating: pair), to: SIMD8<Int8>.self)
    return SIMD8(Int16(b[0]), Int16(b[1]), Int16(b[2]), Int16(b[3]), Int16(b[4]), Int16(b[5]), Int16(b[6]), Int16(b[7]))
}

/// Loads 4 int8 at `pointer` and sign-extends them to Int32.
@inline(__always)
func loadWidened4(_ pointer: UnsafePointer<Int8>) -> SIMD4<Int32> {
    let v: SIMD4<Int8> = loadLanes(pointer)
    return SIMD4(Int32(v[0]), Int32(v[1]), Int32(v[2]), Int32(v[3]))
}

/// `(p[0], p[1])` sign-extended to Int16, in every 32-bit lane: `[p0, p1, p0, p1, …]`
/// (vpbroadcastw from memory + vpmovsxbw).
@inline(__always)
func broadcastPair(_ p: UnsafePointer<Int8>) -> SIMD16<Int16> {
    let pair = UnsafeRawPointer(p).loadUnaligned(as: UInt16.self)
    let b = unsafeBitCast(SIMD8<UInt16>(repeating: pair), to: SIMD16<Int8>.self)
    return SIMD16(Int16(b[0]), Int16(b[1]), Int16(b[2]), Int16(b[3]), Int16(b[4]), Int16(b[5]), Int16(b[6]), Int16(b[7]),
                  Int16(b[8]), Int16(b[9]), Int16(b[10]), Int16(b[11]), Int16(b[12]), Int16(b[13]), Int16(b[14]), Int16(b[15]))
}

/// `r[i] = a[2i]·b[2i] + a[2i+1]·b[2i+1]` in wrapping Int32 (vpmaddwd on AVX2).
///
/// Example: a = [1, 2, 3, 4, …], b = [5, 6, 7, 8, …] → r = [1·5 + 2·6, 3·7 + 4·8, …] = [17, 53, …].
@inline(__always)
func multiplyAddPairs(_ a: SIMD16<Int16>, _ b: SIMD16<Int16>) -> SIMD8<Int32> {
    let evenA = SIMD8<Int32>(Int32(a[0]), Int32(a[2]), Int32(a[4]), Int32(a[6]),
                             Int32(a[8]), Int32(a[10]), Int32(a[12]), Int32(a[14]))
    let oddA = SIMD8<Int32>(Int32(a[1]), Int32(a[3]), Int32(a[5]), Int32(a[7]),
                            Int32(a[9]), Int32(a[11]), Int32(a[13]), Int32(a[15]))
    let evenB = SIMD8<Int32>(Int32(b[0]), Int32(b[2]), Int32(b[4]), Int32(b[6]),
                             Int32(b[8]), Int32(b[10]), Int32(b[12]), Int32(b[14]))
    let oddB = SIMD8<Int32>(Int32(b[1]), Int32(b[3]), Int32(b[5]), Int32(b[7]),
                            Int32(b[9]), Int32(b[11]), Int32(b[13]), Int32(b[15]))
    return evenA &* evenB &+ oddA &* oddB
}

/// `multiplyAddPairs` in 4 lanes (xmm vpmaddwd).
@inline(__always)
func multiplyAddPairs(_ a: SIMD8<Int16>, _ b: SIMD8<Int16>) -> SIMD4<Int32> {
    let evenA = SIMD4<Int32>(Int32(a[0]), Int32(a[2]), Int32(a[4]), Int32(a[6]))
    let oddA = SIMD4<Int32>(Int32(a[1]), Int32(a[3]), Int32(a[5]), Int32(a[7]))
    let evenB = SIMD4<Int32>(Int32(b[0]), Int32(b[2]), Int32(b[4]), Int32(b[6]))
    let oddB = SIMD4<Int32>(Int32(b[1]), Int32(b[3]), Int32(b[5]), Int32(b[7]))
    return evenA &* evenB &+ oddA &* oddB
}

/// The blocks of `width` channels that cover `0 ..< count`: `0, width, 2·width, …`,
/// the last one moved back to `count − width` so that it ends at `count` (it
/// then overlaps its neighbour, whose channels it recomputes with the same
/// arithmetic, so with the same values). Returns the offset of block `index`
/// and whether there is one (`count ≥ width`, `index < ⌈count / width⌉`).
@inline(__always)
func channelBlock(_ index: Int, width: Int, count: Int) -> Int? {
    let start = index &* width
    guard count >= width, start < count else { return nil }
    return start &+ width <= count ? start : count &- width
}
