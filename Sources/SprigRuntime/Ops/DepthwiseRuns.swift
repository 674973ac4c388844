// Depthwise 3×3 with stride 1 along the width and fewer than 16 channels, Float32 and
// int8: each output row as one run of elements.
//
// With stride 1 along the width, the C channels of consecutive output pixels form one
// run, out_row[ox·C + c], and tap (ky, kx) reads the run in_row[(ox + kx − pl)·C + c].
// A block of 32 lanes that starts on a pixel boundary gives lane j the channel j mod C,
// so each tap's weights, and the bias and requantization, are one 32-lane pattern,
// built once per call. Every lane of a block is an output (its last pixel may be
// partial: the next block starts P = C·⌊32/C⌋ lanes on, on a pixel boundary, and
// recomputes it with the same arithmetic). The per-channel blocks of
// `depthwiseConv2dQ8` and `depthwiseConv2dF32` fill 8 or 16 lanes with C < 16 channels,
// one pixel at a time (Float32 below 8 channels: a scalar loop); here a 7-channel layer
// fills 28 of 32.
//
// Blocks cover the interior columns (window inside the input) while 32 lanes fit, then
// 16; the clipped columns and the last pixels of a run go one pixel at a time with the
// same patterns (lanes ≥ C unused and never stored), with 16-lane loads and stores where
// they stay inside the tensors (a store past the pixel only writes pixels computed after
// it), else lane by lane.
//
// The results are those of the per-channel kernels bit for bit. int8: Int32 sums,
// wrapping, and `Requant16`, equal to `Requant8` in its domain. Float32: the taps in
// the same order (rows, then columns, after the bias), fused multiply-adds for C ≥ 8 as
// the vector blocks, and a multiply then an add for C < 8 as the scalar loop.

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

// MARK: - Float32

/// Whether `depthwiseRunsF32` takes this op: 3×3, stride 1 along the width, 1 ≤ C < 16.
@inline(__always)
func depthwiseRunsF32Apply(window w: Window2D) -> Bool {
    w.kernelHeight == 3 && w.kernelWidth == 3 && w.strideWidth == 1
        && w.outputChannels >= 1 && w.outputChannels < 16 && w.inputChannels == w.outputChannels
}

/// 32 Float32 lanes as two halves.
private struct FloatLanes32 {
    var low: SIMD16<Float>
    var high: SIMD16<Float>
}

private typealias FloatTapPatterns = (FloatLanes32, FloatLanes32, FloatLanes32, FloatLanes32, FloatLanes32,
                                      FloatLanes32, FloatLanes32, FloatLanes32, FloatLanes32)

/// How a tap is added: fused (C ≥ 8, as the vector blocks) or a multiply then an add (the scalar loop).
private protocol TapSum {
    static func add(_ acc: SIMD16<Float>, _ x: SIMD16<Float>, _ w: SIMD16<Float>) -> SIMD16<Float>
}

private enum FusedTaps: TapSum {
    @_transparent
    static func add(_ acc: SIMD16<Float>, _ x: SIMD16<Float>, _ w: SIMD16<Float>) -> SIMD16<Float> {
        acc.addingProduct(x, w)
    }
}

private enum SeparateTaps: TapSum {
    @_transparent
    static func add(_ acc: SIMD16<Float>, _ x: SIMD16<Float>, _ w: SIMD16<Float>) -> SIMD16<Float> {
        acc + x * w
    }
}

/// `depthwiseConv2dF32` for the ops `depthwiseRunsF32Apply` takes.
func depthwiseRunsF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                      output: UnsafeMutablePointer<Float>, window w: Window2D, clamp: ClampF32) {
    if w.outputChannels >= 8 {
        depthwiseRunsF32(FusedTaps.self, input: input, weights: weights, bias: bias, output: output, window: w, clamp: clamp)
    } else {
        depthwiseRunsF32(SeparateTaps.self, input: input, weights: weights, bias: bias, output: output, window: w,
                         clamp: clamp)
    }
}

private func depthwiseRunsF32<S: TapSum>(_: S.Type, input: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                                         bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                                         window w: Window2D, clamp: ClampF32) {
    let c = w.outputChannels
    let zero = FloatLanes32(low: SIMD16(), high: SIMD16())
    var taps: FloatTapPatterns = (zero, zero, zero, zero, zero, zero, zero, zero, zero)
    withUnsafeMutableBytes(of: &taps) { raw in
        let t = raw.baseAddress!.assumingMemoryBound(to: Float.self)
        for j in 0 ..< 32 {
            let ch = j % c
            for tap in 0 ..< 9 { t[tap &* 32 &+ j] = weights[tap &* c &+ ch] }
        }
    }
    var lowB = SIMD16<Float>(), highB = SIMD16<Float>()
    if let bias {
        for j in 0 ..< 16 { lowB[j] = bias[j % c]; highB[j] = bias[(j &+ 16) % c] }
    }
    let rowElements = w.inputWidth &* c
    let k = RunsF32(input: input, inputEnd: input + w.inputHeight &* rowElements, rowElements: rowElements,
                    channels: c, bias: lowB, clamp: clamp, window: w, output: output,
                    outputEnd: output + w.outputHeight &* w.outputWidth &* c)
    let period = c &* (32 / c), period16 = c &* (16 / c)
    let interiorFirst = min(w.padLeft, w.outputWidth)
    let interiorEnd = max(interiorFirst, min(w.outputWidth, w.inputWidth &+ w.padLeft &- 2))
    withUnsafeBytes(of: &taps) { raw in
        let pattern = raw.baseAddress!.assumingMemoryBound(to: FloatLanes32.self)
        var oy = 0
        while oy < w.outputHeight {
            let rowOrigin = oy &* w.strideHeight &- w.padTop
            let rows = validTaps(origin: rowOrigin, kernel: 3, extent: w.inputHeight)
            var ox = 0
            while ox < interiorFirst { runsPixelF32(S.self, k, pattern, oy, ox, rows); ox &+= 1 }
            let runEnd = interiorEnd &* c
            var start = interiorFirst &* c
            var done = start
            let out = output + oy &* w.outputWidth &* c
            while start &+ 32 <= runEnd {
                var low = lowB, high = highB
                var ky = rows.first
                while ky < rows.end {
                    let x = input + ((rowOrigin &+ ky) &* rowElements &+ start &- w.padLeft &* c)
                    let t0 = pattern[ky &* 3], t1 = pattern[ky &* 3 &+ 1], t2 = pattern[ky &* 3 &+ 2]
                    low = S.add(low, loadLanes(x), t0.low)
                    high = S.add(high, loadLanes(x + 16), t0.high)
                    low = S.add(low, loadLanes(x + c), t1.low)
                    high = S.add(high, loadLanes(x + (c &+ 16)), t1.high)
                    low = S.add(low, loadLanes(x + 2 &* c), t2.low)
                    high = S.add(high, loadLanes(x + (2 &* c &+ 16)), t2.high)
                    ky &+= 1
                }
                storeClamped(low, out + start, clamp)
                storeClamped(high, out + (start &+ 16), clamp)
                done = start &+ 32
                start &+= period
            }
            while start &+ 16 <= runEnd {
                var low = lowB
                var ky = rows.first
                while ky < rows.end {
                    let x = input + ((rowOrigin &+ ky) &* rowElements &+ start &- w.padLeft &* c)
                    low = S.add(low, loadLanes(x), pattern[ky &* 3].low)
                    low = S.add(low, loadLanes(x + c), pattern[ky &* 3 &+ 1].low)
                    low = S.add(low, loadLanes(x + 2 &* c), pattern[ky &* 3 &+ 2].low)
                    ky &+= 1
                }
                storeClamped(low, out + start, clamp)
                done = start &+ 16
                start &+= period16
            }
            ox = done / c
            while ox < w.outputWidth { runsPixelF32(S.self, k, pattern, oy, ox, rows); ox &+= 1 }
            oy &+= 1
        }
    }
}

/// What `runsPixelF32` reads, the same for every pixel of a call.
private struct RunsF32 {
    var input: UnsafePointer<Float>
    var inputEnd: UnsafePointer<Float>
    var rowElements: Int
    var channels: Int
    var bias: SIMD16<Float>
    var clamp: ClampF32
    var window: Window2D
    var output: UnsafeMutablePointer<Float>
    var outputEnd: UnsafeMutablePointer<Float>
}

/// One output pixel of `depthwiseRunsF32`, as `runsPixel` for int8.
@inline(__always)
private func runsPixelF32<S: TapSum>(_: S.Type, _ k: RunsF32, _ pattern: UnsafePointer<FloatLanes32>,
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
            var v: SIMD16<Float>
            if x + 16 <= k.inputEnd {
                v = loadLanes(x)
            } else {
                v = SIMD16()
                for i in 0 ..< c { v[i] = x[i] }
            }
            acc = S.add(acc, v, pattern[ky &* 3 &+ kx].low)
            kx &+= 1
        }
        ky &+= 1
    }
    let out = k.output + (oy &* w.outputWidth &+ ox) &* c
    if out + 16 <= k.outputEnd {
        storeClamped(acc, out, k.clamp)
    } else {
        for i in 0 ..< c { out[i] = clampScalarF32(acc[i], k.clamp) }
    }
}

// MARK: - Float32, C ≥ 16: channel blocks with the weights held

/// Whether `depthwiseBlocksF32` takes this op: 3×3, C ≥ 16.
@inline(__always)
func depthwiseBlocksF32Apply(window w: Window2D) -> Bool {
    w.kernelHeight == 3 && w.kernelWidth == 3 && w.outputChannels >= 16 && w.inputChannels == w.outputChannels
}

/// `depthwiseConv2dF32` for C ≥ 16 and a 3×3 kernel: for each block of 16 channels (the
/// last moved back to end at C, its overlap recomputed alike), its 9 weight vectors and
/// bias are loaded once and held while the block sweeps every output pixel, where the
/// per-pixel kernel loads them again for each pixel. The same fused multiply-adds in the
/// same order (bias, then rows, then columns), so the same results bit for bit.
func depthwiseBlocksF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        output: UnsafeMutablePointer<Float>, window w: Window2D, clamp: ClampF32) {
    let channels = w.outputChannels
    let pixelStep = w.strideWidth &* channels
    let rowElements = w.inputWidth &* channels
    // Output columns whose window lies inside the input row.
    var interiorFirst = 0
    while interiorFirst < w.outputWidth && interiorFirst &* w.strideWidth &- w.padLeft < 0 { interiorFirst &+= 1 }
    var interiorEnd = interiorFirst
    while interiorEnd < w.outputWidth && interiorEnd &* w.strideWidth &- w.padLeft &+ 3 <= w.inputWidth { interiorEnd &+= 1 }
    var block = 0
    while let c = channelBlock(block, width: 16, count: channels) {
        let w00: SIMD16<Float> = loadLanes(weights + c), w01: SIMD16<Float> = loadLanes(weights + (channels &+ c))
        let w02: SIMD16<Float> = loadLanes(weights + (2 &* channels &+ c))
        let w10: SIMD16<Float> = loadLanes(weights + (3 &* channels &+ c))
        let w11: SIMD16<Float> = loadLanes(weights + (4 &* channels &+ c))
        let w12: SIMD16<Float> = loadLanes(weights + (5 &* channels &+ c))
        let w20: SIMD16<Float> = loadLanes(weights + (6 &* channels &+ c))
        let w21: SIMD16<Float> = loadLanes(weights + (7 &* channels &+ c))
        let w22: SIMD16<Float> = loadLanes(weights + (8 &* channels &+ c))
        let b: SIMD16<Float> = bias.map { loadLanes($0 + c) } ?? SIMD16()
        var oy = 0
        while oy < w.outputHeight {
            let rowOrigin = oy &* w.strideHeight &- w.padTop
            let rows = validTaps(origin: rowOrigin, kernel: 3, extent: w.inputHeight)
            let out = output + (oy &* w.outputWidth &* channels &+ c)
            var ox = 0
            while ox < w.outputWidth {
                if ox == interiorFirst && interiorEnd > interiorFirst {
                    // Interior columns: every column tap valid, the rows as clipped.
                    var x0 = input + (rowOrigin &* rowElements &+ (ox &* w.strideWidth &- w.padLeft) &* channels &+ c)
                    var o = out + ox &* channels
                    let top = rows.first == 0, middle = rows.first <= 1 && rows.end >= 2, bottom = rows.end == 3
                    while ox < interiorEnd {
                        var acc = b
                        if top {
                            acc = acc.addingProduct(loadLanes(x0) as SIMD16<Float>, w00)
                            acc = acc.addingProduct(loadLanes(x0 + channels) as SIMD16<Float>, w01)
                            acc = acc.addingProduct(loadLanes(x0 + 2 &* channels) as SIMD16<Float>, w02)
                        }
                        if middle {
                            let x1 = x0 + rowElements
                            acc = acc.addingProduct(loadLanes(x1) as SIMD16<Float>, w10)
                            acc = acc.addingProduct(loadLanes(x1 + channels) as SIMD16<Float>, w11)
                            acc = acc.addingProduct(loadLanes(x1 + 2 &* channels) as SIMD16<Float>, w12)
                        }
                        if bottom {
                            let x2 = x0 + 2 &* rowElements
                            acc = acc.addingProduct(loadLanes(x2) as SIMD16<Float>, w20)
                            acc = acc.addingProduct(loadLanes(x2 + channels) as SIMD16<Float>, w21)
                            acc = acc.addingProduct(loadLanes(x2 + 2 &* channels) as SIMD16<Float>, w22)
                        }
                        storeClamped(acc, o, clamp)
                        x0 += pixelStep
                        o += channels
                        ox &+= 1
                    }
                    continue
                }
                // A clipped column: its valid taps only.
                let columnOrigin = ox &* w.strideWidth &- w.padLeft
                let cols = validTaps(origin: columnOrigin, kernel: 3, extent: w.inputWidth)
                var acc = b
                var ky = rows.first
                while ky < rows.end {
                    let x = input + ((rowOrigin &+ ky) &* rowElements &+ columnOrigin &* channels &+ c)
                    var kx = cols.first
                    while kx < cols.end {
                        let wk: SIMD16<Float>
                        switch ky &* 3 &+ kx {
                        case 0: wk = w00
                        case 1: wk = w01
                        case 2: wk = w02
                        case 3: wk = w10
                        case 4: wk = w11
                        case 5: wk = w12
                        case 6: wk = w20
                        case 7: wk = w21
                        default: wk = w22
                        }
                        acc = acc.addingProduct(loadLanes(x + kx &* channels) as SIMD16<Float>, wk)
                        kx &+= 1
                    }
                    ky &+= 1
                }
                storeClamped(acc, out + ox &* channels, clamp)
                ox &+= 1
            }
            oy &+= 1
        }
        block &+= 1
    }
}

// MARK: - int8, C ≥ 16: channel blocks with the weights held (x86-64)

/// Whether `depthwiseBlocksQ8` takes this op: x86-64, 3×3, C ≥ 16, an int8 input zero
/// point and the requantization in `Requant16`'s domain.
@inline(__always)
func depthwiseBlocksQ8Apply(window w: Window2D, inputZeroPoint: Int32, requant: RequantQ8) -> Bool {
    pairedTaps && w.kernelHeight == 3 && w.kernelWidth == 3 && w.outputChannels >= 16
        && w.inputChannels == w.outputChannels && inputZeroPoint >= -128 && inputZeroPoint <= 127
        && requantFitsOneShift(requant.multipliers, requant.shifts, count: w.outputChannels)
}

/// `depthwiseConv2dQ8` for the ops `depthwiseBlocksQ8Apply` takes. For each block of 16
/// channels (the last moved back to end at C), its 9 weight vectors (Int32 lanes), bias
/// and requantization are prepared once and held while the block sweeps every output
/// pixel. The input zero point comes off the bias once per set of valid rows:
/// Σ (x − zp)·w = Σ x·w − zp·Σ w, modulo 2^32 as the portable loop's wrapping sums, so
/// the same accumulators bit for bit.
func depthwiseBlocksQ8(input: UnsafePointer<Int8>, inputZeroPoint: Int32, weights: UnsafePointer<Int8>,
                       bias: UnsafePointer<Int32>?, output: UnsafeMutablePointer<Int8>, window w: Window2D,
                       requant: RequantQ8, stage: OutputStageQ8) {
    if stage.clampsNegatives {
        depthwiseBlocksQ8(ClampsNegatives.self, input: input, inputZeroPoint: inputZeroPoint, weights: weights,
                          bias: bias, output: output, window: w, requant: requant, stage: stage)
    } else {
        depthwiseBlocksQ8(RoundsNegatives.self, input: input, inputZeroPoint: inputZeroPoint, weights: weights,
                          bias: bias, output: output, window: w, requant: requant, stage: stage)
    }
}

private func depthwiseBlocksQ8<N: NegativeRounding>(_: N.Type, input: UnsafePointer<Int8>, inputZeroPoint: Int32,
                                                    weights: UnsafePointer<Int8>, bias: UnsafePointer<Int32>?,
                                                    output: UnsafeMutablePointer<Int8>, window w: Window2D,
                                                    requant: RequantQ8, stage: OutputStageQ8) {
    let channels = w.outputChannels
    let pixelStep = w.strideWidth &* channels
    let rowElements = w.inputWidth &* channels
    let zp = SIMD16<Int32>(repeating: inputZeroPoint)
    var interiorFirst = 0
    while interiorFirst < w.outputWidth && interiorFirst &* w.strideWidth &- w.padLeft < 0 { interiorFirst &+= 1 }
    var interiorEnd = interiorFirst
    while interiorEnd < w.outputWidth && interiorEnd &* w.strideWidth &- w.padLeft &+ 3 <= w.inputWidth { interiorEnd &+= 1 }
    var block = 0
    while let c = channelBlock(block, width: 16, count: channels) {
        let w00 = loadWidened16(weights + c), w01 = loadWidened16(weights + (channels &+ c))
        let w02 = loadWidened16(weights + (2 &* channels &+ c)), w10 = loadWidened16(weights + (3 &* channels &+ c))
        let w11 = loadWidened16(weights + (4 &* channels &+ c)), w12 = loadWidened16(weights + (5 &* channels &+ c))
        let w20 = loadWidened16(weights + (6 &* channels &+ c)), w21 = loadWidened16(weights + (7 &* channels &+ c))
        let w22 = loadWidened16(weights + (8 &* channels &+ c))
        let b: SIMD16<Int32> = bias.map { loadLanes($0 + c) } ?? SIMD16()
        let q = Requant16(multiplier: loadLanes(requant.multipliers + c), shift: loadLanes(requant.shifts + c))
        let topSum = w00 &+ w01 &+ w02, middleSum = w10 &+ w11 &+ w12, bottomSum = w20 &+ w21 &+ w22
        var oy = 0
        while oy < w.outputHeight {
            let rowOrigin = oy &* w.strideHeight &- w.padTop
            let rows = validTaps(origin: rowOrigin, kernel: 3, extent: w.inputHeight)
            let out = output + (oy &* w.outputWidth &* channels &+ c)
            let top = rows.first == 0, middle = rows.first <= 1 && rows.end >= 2, bottom = rows.end == 3
            var ox = 0
            while ox < w.outputWidth {
                if ox == interiorFirst && interiorEnd > interiorFirst {
                    // Interior columns: every column tap valid; zp·Σ w of the valid rows off the bias.
                    var rowSum = SIMD16<Int32>()
                    if top { rowSum &+= topSum }
                    if middle { rowSum &+= middleSum }
                    if bottom { rowSum &+= bottomSum }
                    let start = b &- zp &* rowSum
                    var x0 = input + (rowOrigin &* rowElements &+ (ox &* w.strideWidth &- w.padLeft) &* channels &+ c)
                    var o = out + ox &* channels
                    while ox < interiorEnd {
                        var acc = start
                        if top {
                            acc &+= loadWidened16(x0) &* w00
                            acc &+= loadWidened16(x0 + channels) &* w01
                            acc &+= loadWidened16(x0 + 2 &* channels) &* w02
                        }
                        if middle {
                            let x1 = x0 + rowElements
                            acc &+= loadWidened16(x1) &* w10
                            acc &+= loadWidened16(x1 + channels) &* w11
                            acc &+= loadWidened16(x1 + 2 &* channels) &* w12
                        }
                        if bottom {
                            let x2 = x0 + 2 &* rowElements
                            acc &+= loadWidened16(x2) &* w20
                            acc &+= loadWidened16(x2 + channels) &* w21
                            acc &+= loadWidened16(x2 + 2 &* channels) &* w22
                        }
                        storeLanes(stage(q.apply(acc, N.self)), o)
                        x0 += pixelStep
                        o += channels
                        ox &+= 1
                    }
                    continue
                }
                // A clipped column: its valid taps only.
                let columnOrigin = ox &* w.strideWidth &- w.padLeft
                let cols = validTaps(origin: columnOrigin, kernel: 3, extent: w.inputWidth)
                var acc = b
                var ky = rows.first
                while ky < rows.end {
                    let x = input + ((rowOrigin &+ ky) &* rowElements &+ columnOrigin &* channels &+ c)
                    var kx = cols.first
                    while kx < cols.end {
                        let wk: SIMD16<Int32>
                        switch ky &* 3 &+ kx {
                        case 0: wk = w00
                        case 1: wk = w01
                        case 2: wk = w02
                        case 3: wk = w10
                        case 4: wk = w11
                        case 5: wk = w12
                        case 6: wk = w20
                        case 7: wk = w21
                        default: wk = w22
                        }
                        acc &+= (loadWidened16(x + kx &* channels) &- zp) &* wk
                        kx &+= 1
                    }
                    ky &+= 1
                }
                storeLanes(stage(q.apply(acc, N.self)), out + ox &* channels)
                ox &+= 1
            }
            oy &+= 1
        }
        block &+= 1
    }
}
