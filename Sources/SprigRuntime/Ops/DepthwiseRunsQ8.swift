// int8 depthwise 3×3 with stride 1 along the width and fewer than 16 channels, on
// x86-64: each output row as one run of elements.
//
// With stride 1 along the width, the C channels of consecutive output pixels form one
// run, out_row[ox·C + c], and tap (ky, kx) reads the run in_row[(ox + kx − pl)·C + c].
// A block of 32 lanes that starts on a pixel boundary gives lane j the channel j mod C,
// so each tap's weights, and the bias and requantization, are one 32-lane pattern,
// built once per call. Every lane of a block is an output (its last pixel may be
// partial: the next block starts P = C·⌊32/C⌋ lanes on, on a pixel boundary, and
// recomputes it with the same arithmetic). The per-channel blocks of
// `depthwiseConv2dQ8` fill 8 or 16 lanes with C < 16 channels, one pixel at a time; here
// a 7-channel layer fills 28 of 32.
//
// Blocks cover the interior columns (window inside the input) while 32 lanes fit; the
// clipped columns and the last pixels of a run go one pixel at a time with the same
// patterns (lanes ≥ C unused and never stored), with 16-byte loads where they stay inside
// the input, else lane by lane. Sums are Int32, wrapping, as the portable loop's; the
// requantization is `Requant16`'s, equal to `Requant8`'s in its domain; so the output is
// the same bit for bit.

/// Whether `depthwiseRunsQ8` takes this op: x86-64, 3×3, stride 1 along the width,
/// 1 ≤ C < 16, an int8 input zero point and the requantization in `Requant16`'s domain.
@inline(__always)
func depthwiseRunsQ8Apply(window w: Window2D, inputZeroPoint: Int32, requant: RequantQ8) -> Bool {
    pairedTaps && w.kernelHeight == 3 && w.kernelWidth == 3 && w.strideWidth == 1
        && w.outputChannels >= 1 && w.outputChannels < 16 && w.inputChannels == w.outputChannels
        && inputZeroPoint >= -128 && inputZeroPoint <= 127
        && requantFitsOneShift(requant.multipliers, requant.shifts, count: w.outputChannels)
}

/// 32 lanes as two halves.
private struct Lanes32x32 {
    var low: SIMD16<Int32>
    var high: SIMD16<Int32>
}

/// The 9 taps' weight patterns (lane j: channel j mod C), contiguous.
private typealias TapPatterns = (Lanes32x32, Lanes32x32, Lanes32x32, Lanes32x32, Lanes32x32,
                                 Lanes32x32, Lanes32x32, Lanes32x32, Lanes32x32)

/// `depthwiseConv2dQ8` for the ops `depthwiseRunsQ8Apply` takes.
func depthwiseRunsQ8(input: UnsafePointer<Int8>, inputZeroPoint: Int32, weights: UnsafePointer<Int8>,
                     bias: UnsafePointer<Int32>?, output: UnsafeMutablePointer<Int8>,
                     window w: Window2D, requant: RequantQ8, stage: OutputStageQ8) {
    if stage.clampsNegatives {
        depthwiseRunsQ8(ClampsNegatives.self, input: input, inputZeroPoint: inputZeroPoint, weights: weights,
                        bias: bias, output: output, window: w, requant: requant, stage: stage)
    } else {
        depthwiseRunsQ8(RoundsNegatives.self, input: input, inputZeroPoint: inputZeroPoint, weights: weights,
                        bias: bias, output: output, window: w, requant: requant, stage: stage)
    }
}

private func depthwiseRunsQ8<N: NegativeRounding>(_: N.Type, input: UnsafePointer<Int8>, inputZeroPoint: Int32,
                                                  weights: UnsafePointer<Int8>, bias: UnsafePointer<Int32>?,
                                                  output: UnsafeMutablePointer<Int8>, window w: Window2D,
                                                  requant: RequantQ8, stage: OutputStageQ8) {
    let c = w.outputChannels
    // The patterns: lane j holds channel j mod C.
    var lowM = SIMD16<Int32>(), highM = SIMD16<Int32>(), lowS = SIMD16<Int32>(), highS = SIMD16<Int32>()
    var lowB = SIMD16<Int32>(), highB = SIMD16<Int32>()
    let zero = Lanes32x32(low: SIMD16(), high: SIMD16())
    var taps: TapPatterns = (zero, zero, zero, zero, zero, zero, zero, zero, zero)
    withUnsafeMutableBytes(of: &taps) { raw in
        let t = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
        for j in 0 ..< 32 {
            let ch = j % c
            for tap in 0 ..< 9 { t[tap &* 32 &+ j] = Int32(weights[tap &* c &+ ch]) }
        }
    }
    for j in 0 ..< 16 {
        let a = j % c, b = (j &+ 16) % c
        lowM[j] = requant.multipliers[a]; highM[j] = requant.multipliers[b]
        lowS[j] = requant.shifts[a]; highS[j] = requant.shifts[b]
        if let bias { lowB[j] = bias[a]; highB[j] = bias[b] }
    }
    let lowQ = Requant16(multiplier: lowM, shift: lowS), highQ = Requant16(multiplier: highM, shift: highS)
    let zp = SIMD16<Int32>(repeating: inputZeroPoint)
    let rowElements = w.inputWidth &* c
    let inputEnd = input + w.inputHeight &* rowElements
    let period = c &* (32 / c)
    // Interior columns: the window lies inside the input row.
    let interiorFirst = min(w.padLeft, w.outputWidth)
    let interiorEnd = max(interiorFirst, min(w.outputWidth, w.inputWidth &+ w.padLeft &- 2))

    let k = RunsQ8(input: input, inputEnd: inputEnd, rowElements: rowElements, channels: c, zeroPoint: zp,
                   bias: lowB, requant: lowQ, stage: stage, window: w, output: output,
                   outputEnd: output + w.outputHeight &* w.outputWidth &* c)
    withUnsafeBytes(of: &taps) { raw in
        let pattern = raw.baseAddress!.assumingMemoryBound(to: Lanes32x32.self)
        let period16 = c &* (16 / c)
        var oy = 0
        while oy < w.outputHeight {
            let rowOrigin = oy &* w.strideHeight &- w.padTop
            let rows = validTaps(origin: rowOrigin, kernel: 3, extent: w.inputHeight)
            var ox = 0
            while ox < interiorFirst { runsPixel(N.self, k, pattern, oy, ox, rows); ox &+= 1 }
            // Blocks of 32 lanes over the interior run [interiorFirst·C, interiorEnd·C), then of 16.
            let runEnd = interiorEnd &* c
            var start = interiorFirst &* c
            var done = start
            let out = output + oy &* w.outputWidth &* c
            while start &+ 32 <= runEnd {
                var low = lowB, high = highB
                var ky = rows.first
                while ky < rows.end {
                    // Lane 0's input for kx = 0: element start − pl·C of input row oy·sh − pt + ky.
                    let x = input + ((rowOrigin &+ ky) &* rowElements &+ start &- w.padLeft &* c)
                    let t0 = pattern[ky &* 3], t1 = pattern[ky &* 3 &+ 1], t2 = pattern[ky &* 3 &+ 2]
                    low &+= (loadWidened16(x) &- zp) &* t0.low
                    high &+= (loadWidened16(x + 16) &- zp) &* t0.high
                    low &+= (loadWidened16(x + c) &- zp) &* t1.low
                    high &+= (loadWidened16(x + (c &+ 16)) &- zp) &* t1.high
                    low &+= (loadWidened16(x + 2 &* c) &- zp) &* t2.low
                    high &+= (loadWidened16(x + (2 &* c &+ 16)) &- zp) &* t2.high
                    ky &+= 1
                }
                storeLanes(stage(lowQ.apply(low, N.self)), out + start)
                storeLanes(stage(highQ.apply(high, N.self)), out + (start &+ 16))
                done = start &+ 32
                start &+= period
            }
            while start &+ 16 <= runEnd {
                var low = lowB
                var ky = rows.first
                while ky < rows.end {
                    let x = input + ((rowOrigin &+ ky) &* rowElements &+ start &- w.padLeft &* c)
                    low &+= (loadWidened16(x) &- zp) &* pattern[ky &* 3].low
                    low &+= (loadWidened16(x + c) &- zp) &* pattern[ky &* 3 &+ 1].low
                    low &+= (loadWidened16(x + 2 &* c) &- zp) &* pattern[ky &* 3 &+ 2].low
                    ky &+= 1
                }
                storeLanes(stage(lowQ.apply(low, N.self)), out + start)
                done = start &+ 16
                start &+= period16
            }
            // The pixels the blocks did not finish, then the clipped columns on the right.
            ox = done / c
            while ox < w.outputWidth { runsPixel(N.self, k, pattern, oy, ox, rows); ox &+= 1 }
            oy &+= 1
        }
    }
}

/// What `runsPixel` reads, the same for every pixel of a call.
private struct RunsQ8 {
    var input: UnsafePointer<Int8>
    var inputEnd: UnsafePointer<Int8>
    var rowElements: Int
    var channels: Int
    var zeroPoint: SIMD16<Int32>
    /// Lanes 0 ..< 16 of the bias and requantization patterns (C < 16: lane c is channel c).
    var bias: SIMD16<Int32>
    var requant: Requant16
    var stage: OutputStageQ8
    var window: Window2D
    var output: UnsafeMutablePointer<Int8>
    var outputEnd: UnsafeMutablePointer<Int8>
}

/// One output pixel of `depthwiseRunsQ8`, its taps clipped to the input; lanes ≥ C are
/// computed from whatever follows and never stored. A 16-byte store where it stays
/// inside the output: the bytes past the pixel belong to pixels written after it.
@inline(__always)
private func runsPixel<N: NegativeRounding>(_: N.Type, _ k: RunsQ8, _ pattern: UnsafePointer<Lanes32x32>,
                                            _ oy: Int, _ ox: Int, _ rows: (first: Int, end: Int)) {
    let w = k.window, c = k.channels
    let cols = validTaps(origin: ox &- w.padLeft, kernel: 3, extent: w.inputWidth)
    var acc = k.bias
    var ky = rows.first
    while ky < rows.end {
        let iy = oy &* w.strideHeight &- w.padTop &+ ky
        var kx = cols.first
        while kx < cols.end {
            let x = k.input + (iy &* k.rowElements &+ (ox &- w.padLeft &+ kx) &* c)
            var v: SIMD16<Int32>
            if x + 16 <= k.inputEnd {
                v = loadWidened16(x)
            } else {
                v = SIMD16()
                for i in 0 ..< c { v[i] = Int32(x[i]) }
            }
            acc &+= (v &- k.zeroPoint) &* pattern[ky &* 3 &+ kx].low
            kx &+= 1
        }
        ky &+= 1
    }
    let bytes = k.stage(k.requant.apply(acc, N.self))
    let out = k.output + (oy &* w.outputWidth &+ ox) &* c
    if out + 16 <= k.outputEnd {
        storeLanes(bytes, out)
    } else {
        for i in 0 ..< c { out[i] = bytes[i] }
    }
}
