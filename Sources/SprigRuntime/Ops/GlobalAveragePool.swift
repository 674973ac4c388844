// GlobalAveragePool, Float32 and int8.
//
//   input   [H][W][C]
//   output  [C]
//
//   out[c] = (Σ_{y,x} in[y][x][c]) / (H·W)
//
// Height·width == 0 outputs 0.

// MARK: - Float32

/// Float32 global average pooling: the mean of each channel over all pixels.
///
/// - Parameters:
///   - input: `[height][width][channels]`.
///   - output: `[channels]`; must not alias `input`.
/// - Complexity: O(height·width·channels); no allocation.
public func globalAveragePoolF32(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                                 height: Int, width: Int, channels: Int) {
    let pixels = height &* width
    let reciprocal: Float = pixels > 0 ? 1 / Float(pixels) : 0
    var c = 0
    while c &+ 16 <= channels {
        var s = SIMD16<Float>()
        var p = 0
        while p < pixels {
            s += loadLanes(input + (p &* channels &+ c)) as SIMD16<Float>
            p &+= 1
        }
        storeLanes(s * reciprocal, output + c)
        c &+= 16
    }
    if c &+ 8 <= channels {
        var s = SIMD8<Float>()
        var p = 0
        while p < pixels {
            s += loadLanes(input + (p &* channels &+ c)) as SIMD8<Float>
            p &+= 1
        }
        storeLanes(s * reciprocal, output + c)
        c &+= 8
    }
    while c < channels {
        var s: Float = 0
        var p = 0
        while p < pixels {
            s += input[p &* channels &+ c]
            p &+= 1
        }
        output[c] = s * reciprocal
        c &+= 1
    }
}

// MARK: - int8

/// int8 global average pooling with TFLite's pooling rounding
/// (`sum > 0 ? (sum + n/2) / n : (sum − n/2) / n`, n = height·width); input
/// and output share one scale and zero point.
///
/// The per-channel sums are Int32 (exact for height·width ≤ 2^24); the
/// rounding division is done in Int64.
/// - Parameters:
///   - input: `[height][width][channels]`.
///   - output: `[channels]`; must not alias `input`.
/// - Complexity: O(height·width·channels); no allocation.
public func globalAveragePoolQ8(input: UnsafePointer<Int8>, output: UnsafeMutablePointer<Int8>,
                                height: Int, width: Int, channels: Int) {
    let pixels = height &* width
    guard pixels > 0 else {
        var c = 0
        while c < channels { output[c] = 0; c &+= 1 }
        return
    }
    let n = Int64(pixels)
    var c = 0
    // Up to 2^16 pixels, blocks of 16 or 32 channels (the last one moved back to end at
    // C, see channelBlock) divide in Float lanes (see `roundedAverageLanesQ8`) instead of
    // one Int64 division per channel. Up to 256 pixels the sums fit Int16
    // (−128·256 ... 127·256): 32 channels per vector.
    if pixels <= 1 << 16 && channels >= 16 {
        let count = Float(pixels), half = Int32(truncatingIfNeeded: pixels / 2)
        var block = 0
        if pixels <= 256 && channels >= 32 {
            while let c = channelBlock(block, width: 32, count: channels) {
                var low = SIMD16<Int16>(), high = SIMD16<Int16>()
                var p = 0
                while p < pixels {
                    let x = input + (p &* channels &+ c)
                    low &+= widened16(x)
                    high &+= widened16(x + 16)
                    p &+= 1
                }
                storeLanes(roundedAverageLanesQ8(widened32(low), half: half, count: count), output + c)
                storeLanes(roundedAverageLanesQ8(widened32(high), half: half, count: count), output + (c &+ 16))
                block &+= 1
            }
        } else {
            while let c = channelBlock(block, width: 16, count: channels) {
                var s = SIMD16<Int32>()
                var p = 0
                while p < pixels {
                    s &+= loadWidened16(input + (p &* channels &+ c))
                    p &+= 1
                }
                storeLanes(roundedAverageLanesQ8(s, half: half, count: count), output + c)
                block &+= 1
            }
        }
        return
    }
    while c &+ 16 <= channels {
        var s = SIMD16<Int32>()
        var p = 0
        while p < pixels {
            s &+= loadWidened16(input + (p &* channels &+ c))
            p &+= 1
        }
        for lane in 0 ..< 16 { output[c &+ lane] = roundedAverageQ8(Int64(s[lane]), n) }
        c &+= 16
    }
    while c < channels {
        var s: Int32 = 0
        var p = 0
        while p < pixels {
            s &+= Int32(input[p &* channels &+ c])
            p &+= 1
        }
        output[c] = roundedAverageQ8(Int64(s), n)
        c &+= 1
    }
}

/// 16 int8 at `p`, sign-extended to Int16 (vpmovsxbw).
@inline(__always)
private func widened16(_ p: UnsafePointer<Int8>) -> SIMD16<Int16> {
    let b: SIMD16<Int8> = loadLanes(p)
    return SIMD16(Int16(b[0]), Int16(b[1]), Int16(b[2]), Int16(b[3]), Int16(b[4]), Int16(b[5]), Int16(b[6]), Int16(b[7]),
                  Int16(b[8]), Int16(b[9]), Int16(b[10]), Int16(b[11]), Int16(b[12]), Int16(b[13]), Int16(b[14]), Int16(b[15]))
}

/// `v` sign-extended to Int32 (vpmovsxwd).
@inline(__always)
private func widened32(_ v: SIMD16<Int16>) -> SIMD16<Int32> {
    SIMD16(Int32(v[0]), Int32(v[1]), Int32(v[2]), Int32(v[3]), Int32(v[4]), Int32(v[5]), Int32(v[6]), Int32(v[7]),
           Int32(v[8]), Int32(v[9]), Int32(v[10]), Int32(v[11]), Int32(v[12]), Int32(v[13]), Int32(v[14]), Int32(v[15]))
}

/// Lane-wise `roundedAverageQ8(Int64(sum), Int64(n))` for `1 ≤ n ≤ 2^16` pixels of int8,
/// `half = n / 2` and `count = Float(n)`, in Float lanes (vdivps, vcvttps2dq).
///
/// Exact: every sum is within ±128·n ≤ 2^23, so `sum ± half` (|·| < 2^24) and `n`
/// are exact Floats, and the correctly rounded quotient q of `a = sum ± half` by n
/// truncates to the same integer as the exact a / n. The exact quotient has
/// |a / n| < 129, and when it is not an integer it lies at least 1/n ≥ 2^−16 from
/// every integer, while the rounding moves it by at most half an ulp of a Float
/// below 256, 2^−17: it cannot reach or cross an integer. An integral quotient is
/// exact. The sign of `sum` picks `+ half` or `− half` as TFLite does.
@inline(__always)
func roundedAverageLanesQ8(_ sum: SIMD16<Int32>, half: Int32, count: Float) -> SIMD16<Int8> {
    // sum + half for sum > 0, sum − half otherwise: s = −1 exactly when sum ≤ 0 (no wrap,
    // |sum| ≤ 2^23), and (half ^ s) − s is then −half.
    let h = SIMD16<Int32>(repeating: half)
    let s = (sum &- 1) &>> 31
    let a = sum &+ ((h ^ s) &- s)
    var f = SIMD16<Float>()
    for i in 0 ..< 16 { f[i] = Float(a[i]) }
    f /= SIMD16(repeating: count)
    // Truncation without a trapping conversion: |f| < 129, so `f + 1.5·2^23` rounds f to
    // the nearest integer (in its low bits) and `r` is that integer as a Float, exactly;
    // the nearest integer is one too far from zero when it passed f going outward.
    let shifter: Float = 12_582_912                 // 1.5·2^23
    let shifted = f + shifter
    let r = shifted - shifter
    let nearest = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- 0x4B40_0000
    let zero = SIMD16<Int32>(repeating: 0)
    let q = nearest &- zero.replacing(with: 1, where: (r .> f) .& (f .>= 0))
                    &+ zero.replacing(with: 1, where: (r .< f) .& (f .< 0))
    var out = SIMD16<Int8>()
    for i in 0 ..< 16 {
        let v = q[i] < -128 ? -128 : (q[i] > 127 ? 127 : q[i])
        out[i] = Int8(truncatingIfNeeded: v)
    }
    return out
}

// MARK: - Float32 backward (fine-tuning)

/// Backward of ``globalAveragePoolF32(input:output:height:width:channels:)``:
/// `dx[y][x][c] += dy[c] / (H·W)`. Accumulates; the caller zeroes.
/// Example: H·W = 4, dy = [2] → every pixel gets 0.5.
/// - Complexity: O(height·width·channels); no allocation.
public func globalAveragePoolBackwardF32(outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>,
                                         height: Int, width: Int, channels: Int) {
    let pixels = height &* width
    guard pixels > 0 else { return }
    let reciprocal = 1 / Float(pixels)
    for p in 0..<pixels {
        let row = dx + p &* channels
        for c in 0..<channels { row[c] += dy[c] * reciprocal }
    }
}

// MARK: - Validation (at load)

extension Model {
    /// GlobalAveragePool op `o` with input `xi` `[H][W][C]`: an output of `C`
    /// elements of the input's dtype; in int8 the input's quantization. No params.
    func validateGlobalAveragePool(_ o: Int, _ op: OpInfo, _ xi: TensorInfo) throws(SprigError) {
        try expectNoActivation(o, op)
        let x = op.inputs.0
        try expectCount(o, op, 1)
        try expectArena(o, 0, x)
        guard xi.rank == 3 else { throw .shapeMismatch(op: o, slot: 0, expected: 3, found: xi.rank) }
        let out = tensor(op.output)
        try expectDType(o, -1, out, xi.dtype)
        guard out.elementCount == xi.dims.2 else {
            throw .shapeMismatch(op: o, slot: -1, expected: xi.dims.2, found: out.elementCount)
        }
        if xi.dtype == .i8 { try expectSameQuant(o, x, op.output) }
        try expectZeroParams(o, op, from: 0)
    }
}
