// Depthwise 3×3, Float32 and int8, in two shapes of loop that keep their vectors full.
//
// Rows as runs (stride 1 along the width, C < 16; `runsPay`). The C channels of consecutive output
// pixels form one run, out_row[ox·C + c], and tap (ky, kx) reads the run
// in_row[(ox + kx − pl)·C + c]. A block of 64 lanes that starts on a pixel boundary gives
// lane j the channel j mod C, so each tap's weights, and the bias and requantization,
// are one 64-lane pattern, built once per call. Every lane of a block is an output (its
// last pixel may be partial: the next block starts P = C·⌊64/C⌋ lanes on, on a pixel
// boundary, and recomputes it with the same arithmetic). The per-channel kernels of
// `depthwiseConv2dQ8` and `depthwiseConv2dF32` fill blocks of 8 or 16 lanes with C
// channels, one pixel at a time (12 channels: 16 lanes, 75% used); here 60 of 64. Blocks
// of 64 lanes cover the interior columns (window inside the input) while they fit, then of
// 32 and 16; the clipped columns and the last pixels of a run go one pixel at a time
// with the same patterns (lanes ≥ C unused and never stored), with 16-lane loads and
// stores where they stay inside the tensors (a store past the pixel only writes pixels
// computed after it), else lane by lane.
//
// Channel blocks (C ≥ 16, any stride): each block of 16
// channels holds its 9 weight vectors, bias and requantization while it sweeps every
// output pixel, where the per-pixel kernels load them again for each pixel.
//
// The results are those of the per-channel kernels bit for bit. int8: Int32 sums,
// wrapping, so the input zero point may come off the bias once per set of valid rows
// (Σ (x − zp)·w = Σ x·w − zp·Σ w modulo 2^32), and `Requant16`, equal to `Requant8` in
// its domain. Float32: the taps in the same order (rows, then columns, after the bias),
// fused multiply-adds for C ≥ 8 as the vector blocks, and a multiply then an add for
// C < 8 as the scalar loop.

/// 16 lanes × 4: one 64-lane pattern, or 64 accumulators.
private struct Quad<V: SIMD> {
    var q0: V, q1: V, q2: V, q3: V
    static var zero: Quad { Quad(q0: V(), q1: V(), q2: V(), q3: V()) }
}

/// The 64-lane patterns of a run, lane j holding channel j mod C: each tap's weights and the bias.
private struct RunPatterns<V: SIMD> {
    /// Tap t = 3·ky + kx.
    var taps: (Quad<V>, Quad<V>, Quad<V>, Quad<V>, Quad<V>, Quad<V>, Quad<V>, Quad<V>, Quad<V>)
    var bias: Quad<V>

    /// `weight(i)`: element i of the `[3][3][C]` weights; `bias(c)`: channel c's bias.
    @inline(__always)
    init(channels c: Int, weight: (Int) -> V.Scalar, bias: (Int) -> V.Scalar) {
        taps = (.zero, .zero, .zero, .zero, .zero, .zero, .zero, .zero, .zero)
        self.bias = .zero
        withUnsafeMutableBytes(of: &taps) { raw in
            let t = raw.baseAddress!.assumingMemoryBound(to: V.Scalar.self)
            for j in 0 ..< 64 {
                for tap in 0 ..< 9 { t[tap &* 64 &+ j] = weight(tap &* c &+ j % c) }
            }
        }
        withUnsafeMutableBytes(of: &self.bias) { raw in
            let b = raw.baseAddress!.assumingMemoryBound(to: V.Scalar.self)
            for j in 0 ..< 64 { b[j] = bias(j % c) }
        }
    }
}

/// The interior columns of a row for a 3×3 window with stride 1: `first ..< end`.
@inline(__always)
private func interiorColumns(_ w: Window2D) -> (first: Int, end: Int) {
    let first = min(w.padLeft, w.outputWidth)
    return (first, max(first, min(w.outputWidth, w.inputWidth &+ w.padLeft &- 2)))
}

/// Whether rows as runs beat the per-channel kernels, as measured (docs/results.md,
/// 2026-12-07): 3×3, stride 1 along the width, and C < 8 (the per-channel kernels' lanes
/// are then mostly idle), or 8 ≤ C < 16 with at least one block of 64 lanes in a row's
/// interior. From 16 channels on, channel blocks with held weights are faster (the 64-lane
/// patterns of 9 taps do not fit the registers, so each multiply then loads its weights);
/// in rows too short for a block of 64, the pixel-by-pixel remainder loses.
@inline(__always)
func runsPay(_ w: Window2D) -> Bool {
    guard w.kernelHeight == 3 && w.kernelWidth == 3 && w.strideWidth == 1 && w.inputChannels == w.outputChannels,
          w.outputChannels >= 1 && w.outputChannels < 16 else { return false }
    let interior = interiorColumns(w)
    return w.outputChannels < 8 || (interior.end &- interior.first) &* w.outputChannels >= 64
}

/// Block lengths, as types: each gets its own copy of the block loop.
private protocol RunBlock { static var quarters: Int { get } }
private enum Block64: RunBlock { static var quarters: Int { 4 } }
private enum Block32: RunBlock { static var quarters: Int { 2 } }
private enum Block16: RunBlock { static var quarters: Int { 1 } }

// MARK: - int8 runs (x86-64)

/// Whether `depthwiseRunsQ8` takes this op: x86-64, `runsPay`, an int8 input zero point
/// and the requantization in `Requant16`'s domain.
@inline(__always)
func depthwiseRunsQ8Apply(window w: Window2D, inputZeroPoint: Int32, requant: RequantQ8) -> Bool {
    pairedTaps && runsPay(w) && inputZeroPoint >= -128 && inputZeroPoint <= 127
        && requantFitsOneShift(requant.multipliers, requant.shifts, count: w.outputChannels)
}

/// What the blocks and pixels of one int8 run call read, the same throughout.
private struct RunQ8 {
    var input: UnsafePointer<Int8>
    var inputEnd: UnsafePointer<Int8>
    var output: UnsafeMutablePointer<Int8>
    var outputEnd: UnsafeMutablePointer<Int8>
    var rowElements: Int
    var channels: Int
    var zeroPoint: SIMD16<Int32>
    var stage: OutputStageQ8
    var window: Window2D
}

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
    var patterns = RunPatterns<SIMD16<Int32>>(channels: c, weight: { Int32(weights[$0]) },
                                              bias: { bias?[$0] ?? 0 })
    // The requantization patterns, and per tap row the sum of its three weights (for zp·Σw).
    var multiplier = Quad<SIMD16<Int32>>.zero, shift = Quad<SIMD16<Int32>>.zero
    var rowSums = (Quad<SIMD16<Int32>>.zero, Quad<SIMD16<Int32>>.zero, Quad<SIMD16<Int32>>.zero)
    withUnsafeMutableBytes(of: &multiplier) { m in
        withUnsafeMutableBytes(of: &shift) { s in
            for j in 0 ..< 64 {
                m.storeBytes(of: requant.multipliers[j % c], toByteOffset: 4 &* j, as: Int32.self)
                s.storeBytes(of: requant.shifts[j % c], toByteOffset: 4 &* j, as: Int32.self)
            }
        }
    }
    withUnsafeBytes(of: &patterns.taps) { t in
        withUnsafeMutableBytes(of: &rowSums) { r in
            let taps = t.baseAddress!.assumingMemoryBound(to: Int32.self)
            let sums = r.baseAddress!.assumingMemoryBound(to: Int32.self)
            for ky in 0 ..< 3 {
                for j in 0 ..< 64 {
                    sums[ky &* 64 &+ j] = taps[(3 &* ky) &* 64 &+ j] &+ taps[(3 &* ky &+ 1) &* 64 &+ j]
                        &+ taps[(3 &* ky &+ 2) &* 64 &+ j]
                }
            }
        }
    }
    let requants = (Requant16(multiplier: multiplier.q0, shift: shift.q0), Requant16(multiplier: multiplier.q1, shift: shift.q1),
                    Requant16(multiplier: multiplier.q2, shift: shift.q2), Requant16(multiplier: multiplier.q3, shift: shift.q3))
    let rowElements = w.inputWidth &* c
    let k = RunQ8(input: input, inputEnd: input + w.inputHeight &* rowElements, output: output,
                  outputEnd: output + w.outputHeight &* w.outputWidth &* c, rowElements: rowElements, channels: c,
                  zeroPoint: SIMD16(repeating: inputZeroPoint), stage: stage, window: w)
    let interior = interiorColumns(w)
    let bias = patterns.bias
    withUnsafeBytes(of: &patterns.taps) { p in
        withUnsafeBytes(of: &rowSums) { r in
            let pattern = p.baseAddress!.assumingMemoryBound(to: Quad<SIMD16<Int32>>.self)  // tap 3·ky + kx
            let sums = r.baseAddress!.assumingMemoryBound(to: Quad<SIMD16<Int32>>.self)
            var oy = 0
            while oy < w.outputHeight {
                let rows = validTaps(origin: oy &* w.strideHeight &- w.padTop, kernel: 3, extent: w.inputHeight)
                var ox = 0
                while ox < interior.first { runPixelQ8(N.self, k, pattern, bias, requants.0, oy, ox, rows); ox &+= 1 }
                // The bias less zp·Σw over the valid rows, for the interior's blocks.
                var start = bias
                var ky = rows.first
                while ky < rows.end {
                    let s = sums[ky]
                    start.q0 &-= k.zeroPoint &* s.q0
                    start.q1 &-= k.zeroPoint &* s.q1
                    start.q2 &-= k.zeroPoint &* s.q2
                    start.q3 &-= k.zeroPoint &* s.q3
                    ky &+= 1
                }
                let runEnd = interior.end &* c
                var at = interior.first &* c
                var done = at
                runBlocksQ8(Block64.self, N.self, k, pattern, start, requants, oy, rows, &at, &done, runEnd)
                runBlocksQ8(Block32.self, N.self, k, pattern, start, requants, oy, rows, &at, &done, runEnd)
                if c <= 16 { runBlocksQ8(Block16.self, N.self, k, pattern, start, requants, oy, rows, &at, &done, runEnd) }
                // The pixels the blocks did not finish, then the clipped columns on the right.
                ox = done / c
                while ox < w.outputWidth { runPixelQ8(N.self, k, pattern, bias, requants.0, oy, ox, rows); ox &+= 1 }
                oy &+= 1
            }
        }
    }
}

/// Blocks of `B.quarters`·16 lanes from element `at` of row `oy` while they end by `runEnd`,
/// each `C·⌊lanes/C⌋` on from the last; `done` is where the last block ended.
@inline(__always)
private func runBlocksQ8<B: RunBlock, N: NegativeRounding>(_: B.Type, _: N.Type, _ k: RunQ8,
                                                           _ pattern: UnsafePointer<Quad<SIMD16<Int32>>>,
                                                           _ start: Quad<SIMD16<Int32>>,
                                                           _ q: (Requant16, Requant16, Requant16, Requant16),
                                                           _ oy: Int, _ rows: (first: Int, end: Int),
                                                           _ at: inout Int, _ done: inout Int, _ runEnd: Int) {
    let w = k.window, c = k.channels
    let lanes = 16 &* B.quarters
    let period = c &* (lanes / c)
    let rowOrigin = oy &* w.strideHeight &- w.padTop
    let out = k.output + oy &* w.outputWidth &* c
    while at &+ lanes <= runEnd {
        var a = start
        var ky = rows.first
        while ky < rows.end {
            // Lane 0's input for kx = 0: element at − pl·C of input row oy·sh − pt + ky.
            let x = k.input + ((rowOrigin &+ ky) &* k.rowElements &+ at &- w.padLeft &* c)
            var kx = 0
            while kx < 3 {
                let t = pattern[ky &* 3 &+ kx], xk = x + kx &* c
                a.q0 &+= loadWidened16(xk) &* t.q0
                if B.quarters > 1 { a.q1 &+= loadWidened16(xk + 16) &* t.q1 }
                if B.quarters > 2 {
                    a.q2 &+= loadWidened16(xk + 32) &* t.q2
                    a.q3 &+= loadWidened16(xk + 48) &* t.q3
                }
                kx &+= 1
            }
            ky &+= 1
        }
        let o = out + at
        storeLanes(k.stage(q.0.apply(a.q0, N.self)), o)
        if B.quarters > 1 { storeLanes(k.stage(q.1.apply(a.q1, N.self)), o + 16) }
        if B.quarters > 2 {
            storeLanes(k.stage(q.2.apply(a.q2, N.self)), o + 32)
            storeLanes(k.stage(q.3.apply(a.q3, N.self)), o + 48)
        }
        done = at &+ lanes
        at &+= period
    }
}

/// One output pixel of a run call, its taps clipped to the input: lanes 0 ..< C of the
/// patterns' first quarter (C < 16); lanes past C are computed from whatever follows and
/// never stored.
@inline(__always)
private func runPixelQ8<N: NegativeRounding>(_: N.Type, _ k: RunQ8, _ pattern: UnsafePointer<Quad<SIMD16<Int32>>>,
                                             _ bias: Quad<SIMD16<Int32>>, _ q: Requant16,
                                             _ oy: Int, _ ox: Int, _ rows: (first: Int, end: Int)) {
    let w = k.window, c = k.channels
    let cols = validTaps(origin: ox &- w.padLeft, kernel: 3, extent: w.inputWidth)
    var a = bias.q0
    var ky = rows.first
    while ky < rows.end {
        let iy = oy &* w.strideHeight &- w.padTop &+ ky
        var kx = cols.first
        while kx < cols.end {
            let x = k.input + (iy &* k.rowElements &+ (ox &- w.padLeft &+ kx) &* c)
            // 16 bytes where they lie inside the input, else the pixel's channels lane by lane.
            var v = SIMD16<Int32>()
            if x + 16 <= k.inputEnd {
                v = loadWidened16(x)
            } else {
                for i in 0 ..< c { v[i] = Int32(x[i]) }
            }
            a &+= (v &- k.zeroPoint) &* pattern[ky &* 3 &+ kx].q0
            kx &+= 1
        }
        ky &+= 1
    }
    // 16 bytes where they lie inside the output (the bytes past the pixel belong to pixels
    // written after it), else lane by lane.
    let bytes = k.stage(q.apply(a, N.self))
    let out = k.output + (oy &* w.outputWidth &+ ox) &* c
    if out + 16 <= k.outputEnd {
        storeLanes(bytes, out)
    } else {
        for i in 0 ..< c { out[i] = bytes[i] }
    }
}

// MARK: - Float32 runs

/// Whether `depthwiseRunsF32` takes this op: `runsPay`.
@inline(__always)
func depthwiseRunsF32Apply(window w: Window2D) -> Bool { runsPay(w) }

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

/// What the blocks and pixels of one Float32 run call read, the same throughout.
private struct RunF32 {
    var input: UnsafePointer<Float>
    var inputEnd: UnsafePointer<Float>
    var output: UnsafeMutablePointer<Float>
    var outputEnd: UnsafeMutablePointer<Float>
    var rowElements: Int
    var channels: Int
    var clamp: ClampF32
    var window: Window2D
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
    var patterns = RunPatterns<SIMD16<Float>>(channels: c, weight: { weights[$0] }, bias: { bias?[$0] ?? 0 })
    let rowElements = w.inputWidth &* c
    let k = RunF32(input: input, inputEnd: input + w.inputHeight &* rowElements, output: output,
                   outputEnd: output + w.outputHeight &* w.outputWidth &* c, rowElements: rowElements, channels: c,
                   clamp: clamp, window: w)
    let interior = interiorColumns(w)
    let bias = patterns.bias
    withUnsafeBytes(of: &patterns.taps) { p in
        let pattern = p.baseAddress!.assumingMemoryBound(to: Quad<SIMD16<Float>>.self)  // tap 3·ky + kx
        var oy = 0
        while oy < w.outputHeight {
            let rows = validTaps(origin: oy &* w.strideHeight &- w.padTop, kernel: 3, extent: w.inputHeight)
            var ox = 0
            while ox < interior.first { runPixelF32(S.self, k, pattern, bias, oy, ox, rows); ox &+= 1 }
            let runEnd = interior.end &* c
            var at = interior.first &* c
            var done = at
            runBlocksF32(Block64.self, S.self, k, pattern, bias, oy, rows, &at, &done, runEnd)
            runBlocksF32(Block32.self, S.self, k, pattern, bias, oy, rows, &at, &done, runEnd)
            if c <= 16 { runBlocksF32(Block16.self, S.self, k, pattern, bias, oy, rows, &at, &done, runEnd) }
            ox = done / c
            while ox < w.outputWidth { runPixelF32(S.self, k, pattern, bias, oy, ox, rows); ox &+= 1 }
            oy &+= 1
        }
    }
}

/// As `runBlocksQ8`, in Float32.
@inline(__always)
private func runBlocksF32<B: RunBlock, S: TapSum>(_: B.Type, _: S.Type, _ k: RunF32,
                                                  _ pattern: UnsafePointer<Quad<SIMD16<Float>>>, _ bias: Quad<SIMD16<Float>>,
                                                  _ oy: Int, _ rows: (first: Int, end: Int),
                                                  _ at: inout Int, _ done: inout Int, _ runEnd: Int) {
    let w = k.window, c = k.channels
    let lanes = 16 &* B.quarters
    let period = c &* (lanes / c)
    let rowOrigin = oy &* w.strideHeight &- w.padTop
    let out = k.output + oy &* w.outputWidth &* c
    while at &+ lanes <= runEnd {
        var a = bias
        var ky = rows.first
        while ky < rows.end {
            let x = k.input + ((rowOrigin &+ ky) &* k.rowElements &+ at &- w.padLeft &* c)
            var kx = 0
            while kx < 3 {
                let t = pattern[ky &* 3 &+ kx], xk = x + kx &* c
                a.q0 = S.add(a.q0, loadLanes(xk), t.q0)
                if B.quarters > 1 { a.q1 = S.add(a.q1, loadLanes(xk + 16), t.q1) }
                if B.quarters > 2 {
                    a.q2 = S.add(a.q2, loadLanes(xk + 32), t.q2)
                    a.q3 = S.add(a.q3, loadLanes(xk + 48), t.q3)
                }
                kx &+= 1
            }
            ky &+= 1
        }
        let o = out + at
        storeClamped(a.q0, o, k.clamp)
        if B.quarters > 1 { storeClamped(a.q1, o + 16, k.clamp) }
        if B.quarters > 2 {
            storeClamped(a.q2, o + 32, k.clamp)
            storeClamped(a.q3, o + 48, k.clamp)
        }
        done = at &+ lanes
        at &+= period
    }
}

/// As `runPixelQ8`, in Float32.
@inline(__always)
private func runPixelF32<S: TapSum>(_: S.Type, _ k: RunF32, _ pattern: UnsafePointer<Quad<SIMD16<Float>>>,
                                    _ bias: Quad<SIMD16<Float>>, _ oy: Int, _ ox: Int, _ rows: (first: Int, end: Int)) {
    let w = k.window, c = k.channels
    let cols = validTaps(origin: ox &- w.padLeft, kernel: 3, extent: w.inputWidth)
    var a = bias.q0
    var ky = rows.first
    while ky < rows.end {
        let iy = oy &* w.strideHeight &- w.padTop &+ ky
        var kx = cols.first
        while kx < cols.end {
            let x = k.input + (iy &* k.rowElements &+ (ox &- w.padLeft &+ kx) &* c)
            var v = SIMD16<Float>()
            if x + 16 <= k.inputEnd {
                v = loadLanes(x)
            } else {
                for i in 0 ..< c { v[i] = x[i] }
            }
            a = S.add(a, v, pattern[ky &* 3 &+ kx].q0)
            kx &+= 1
        }
        ky &+= 1
    }
    let out = k.output + (oy &* w.outputWidth &+ ox) &* c
    if out + 16 <= k.outputEnd {
        storeClamped(a, out, k.clamp)
    } else {
        for i in 0 ..< c { out[i] = clampScalarF32(a[i], k.clamp) }
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
