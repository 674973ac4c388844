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
// Channel blocks (C ≥ 8 in Float32, C ≥ 9 in int8, any stride; `blocksPay`): each block of 16
// channels holds its 9 weight vectors, bias and requantization while it sweeps every
// output pixel, where the per-pixel kernels load them again for each pixel. Below 16
// channels one padded block: lanes past C hold zero weights and are never stored; its
// 16-lane loads and stores run into the next pixel (a store there only writes pixels
// computed after it) and go lane by lane where they would leave the tensors.
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
/// interior (there faster than one padded channel block: at C = 12, 28×28, 5.7 against
/// 6.6 µs in Float32 and 6.7 against 10.1 in int8). From 16 channels on, channel blocks with
/// held weights are faster (the 64-lane patterns of 9 taps do not fit the registers, so each
/// multiply then loads its weights); in rows too short for a block of 64, the pixel-by-pixel
/// remainder loses.
@inline(__always)
func runsPay(_ w: Window2D) -> Bool {
    guard w.kernelHeight == 3 && w.kernelWidth == 3 && w.strideWidth == 1 && w.inputChannels == w.outputChannels,
          w.outputChannels >= 1 && w.outputChannels < 16 else { return false }
    let interior = interiorColumns(w)
    return w.outputChannels < 8 || (interior.end &- interior.first) &* w.outputChannels >= 64
}

/// Whether channel blocks with held weights take the op: 3×3 (any stride), C ≥ `fewest`; from
/// 8 (Float32) or 9 (int8) channels to 15, one block of 16 lanes with the lanes past C idle.
/// Measured on the mobilenets (docs/results.md, 2026-12-07, "Padded channel blocks"): rows as
/// runs stay faster where `runsPay`; at C = 14, stride 2, the padded block took 2.0 µs
/// against 3.7 for the per-channel kernel (f32) and 2.8 against 4.1 (int8); at C = 8 the int8
/// per-channel kernel's blocks of 8 lanes were faster (0.65 against 0.84 µs).
@inline(__always)
func blocksPay(_ w: Window2D, fewest: Int) -> Bool {
    w.kernelHeight == 3 && w.kernelWidth == 3 && w.outputChannels >= fewest && w.inputChannels == w.outputChannels
}

/// Block lengths, as types: each gets its own copy of the block loop.
private protocol RunBlock { static var quarters: Int { get } }
private enum Block64: RunBlock { static var quarters: Int { 4 } }
private enum Block32: RunBlock { static var quarters: Int { 2 } }
private enum Block16: RunBlock { static var quarters: Int { 1 } }

// MARK: - Runs, one loop for both number formats

/// The arithmetic of one run call, Float32 (`RunF32`) or int8 (`RunQ8`): how 16 lanes are
/// loaded, multiplied and stored. A struct of values, as `BlockLanes` says why.
private protocol RunLanes {
    associatedtype Element
    associatedtype Acc: SIMD
    var tensors: CallTensors<Element> { get }
    /// The 16 elements at `p` as the blocks multiply them (int8: the zero point is in `start`).
    func load(_ p: UnsafePointer<Element>) -> Acc
    /// Lanes 0 ..< C of the pixel at `p` as a clipped pixel multiplies them (int8: less the
    /// zero point): 16 elements inside the input, else lane by lane.
    func pixelInput(_ p: UnsafePointer<Element>) -> Acc
    /// acc + x·w.
    func add(_ acc: Acc, _ x: Acc, _ w: Acc) -> Acc
    /// A block's accumulators in a row whose valid kernel rows are `rows` (int8: the bias
    /// less zp·Σ w of those rows).
    func start(_ rows: (first: Int, end: Int)) -> Quad<Acc>
    /// A clipped pixel's accumulator: lanes 0 ..< 16 of the bias.
    var pixelStart: Acc { get }
    /// Quarter `q` of a block, finished (clamped, or requantized), stored at `out`.
    func store(_ acc: Acc, quarter q: Int, _ out: UnsafeMutablePointer<Element>)
    /// Lanes 0 ..< C of a pixel, finished, stored at `out`: 16 elements inside the output (the
    /// ones past the pixel belong to pixels written after it), else lane by lane.
    func storePixel(_ acc: Acc, _ out: UnsafeMutablePointer<Element>)
}

/// The input and output of a run or channel-block call, with their ends (where 16-lane loads
/// and stores past a pixel must stop).
private struct CallTensors<Element> {
    let input: UnsafePointer<Element>
    let inputEnd: UnsafePointer<Element>
    let output: UnsafeMutablePointer<Element>
    let outputEnd: UnsafeMutablePointer<Element>
    let window: Window2D

    @inline(__always)
    init(input: UnsafePointer<Element>, output: UnsafeMutablePointer<Element>, window w: Window2D) {
        self.input = input
        self.output = output
        window = w
        inputEnd = input + w.inputHeight &* w.inputWidth &* w.inputChannels
        outputEnd = output + w.outputHeight &* w.outputWidth &* w.outputChannels
    }
}

/// Every output pixel of a run call, row by row: the clipped columns one by one, the
/// interior in blocks of 64, 32 and 16 lanes (`runBlocks`), then the pixels they left.
@inline(__always)
private func runRows<L: RunLanes>(_ lanes: L, _ pattern: UnsafePointer<Quad<L.Acc>>) {
    let w = lanes.tensors.window, c = w.outputChannels
    let interior = interiorColumns(w)
    var oy = 0
    while oy < w.outputHeight {
        let rows = validTaps(origin: oy &* w.strideHeight &- w.padTop, kernel: 3, extent: w.inputHeight)
        var ox = 0
        while ox < interior.first { runPixel(lanes, pattern, oy, ox, rows); ox &+= 1 }
        let start = lanes.start(rows)
        let runEnd = interior.end &* c
        var at = interior.first &* c
        var done = at
        runBlocks(Block64.self, lanes, pattern, start, oy, rows, &at, &done, runEnd)
        runBlocks(Block32.self, lanes, pattern, start, oy, rows, &at, &done, runEnd)
        if c <= 16 { runBlocks(Block16.self, lanes, pattern, start, oy, rows, &at, &done, runEnd) }
        // The pixels the blocks did not finish, then the clipped columns on the right.
        ox = done / c
        while ox < w.outputWidth { runPixel(lanes, pattern, oy, ox, rows); ox &+= 1 }
        oy &+= 1
    }
}

/// Blocks of `B.quarters`·16 lanes from element `at` of row `oy` while they end by `runEnd`,
/// each `C·⌊lanes/C⌋` on from the last; `done` is where the last block ended.
@inline(__always)
private func runBlocks<B: RunBlock, L: RunLanes>(_: B.Type, _ lanes: L, _ pattern: UnsafePointer<Quad<L.Acc>>,
                                                 _ start: Quad<L.Acc>, _ oy: Int, _ rows: (first: Int, end: Int),
                                                 _ at: inout Int, _ done: inout Int, _ runEnd: Int) {
    let w = lanes.tensors.window, c = w.outputChannels
    let width = 16 &* B.quarters
    let period = c &* (width / c)
    let rowOrigin = oy &* w.strideHeight &- w.padTop
    let out = lanes.tensors.output + oy &* w.outputWidth &* c
    while at &+ width <= runEnd {
        var a = start
        var ky = rows.first
        while ky < rows.end {
            // Lane 0's input for kx = 0: element at − pl·C of input row oy·sh − pt + ky.
            let x = lanes.tensors.input + ((rowOrigin &+ ky) &* w.inputWidth &* c &+ at &- w.padLeft &* c)
            var kx = 0
            while kx < 3 {
                let t = pattern[ky &* 3 &+ kx], xk = x + kx &* c
                a.q0 = lanes.add(a.q0, lanes.load(xk), t.q0)
                if B.quarters > 1 { a.q1 = lanes.add(a.q1, lanes.load(xk + 16), t.q1) }
                if B.quarters > 2 {
                    a.q2 = lanes.add(a.q2, lanes.load(xk + 32), t.q2)
                    a.q3 = lanes.add(a.q3, lanes.load(xk + 48), t.q3)
                }
                kx &+= 1
            }
            ky &+= 1
        }
        let o = out + at
        lanes.store(a.q0, quarter: 0, o)
        if B.quarters > 1 { lanes.store(a.q1, quarter: 1, o + 16) }
        if B.quarters > 2 {
            lanes.store(a.q2, quarter: 2, o + 32)
            lanes.store(a.q3, quarter: 3, o + 48)
        }
        done = at &+ width
        at &+= period
    }
}

/// One output pixel of a run call, its taps clipped to the input: lanes 0 ..< C of the
/// patterns' first quarter (C < 16); lanes past C are computed from whatever follows and
/// never stored.
@inline(__always)
private func runPixel<L: RunLanes>(_ lanes: L, _ pattern: UnsafePointer<Quad<L.Acc>>,
                                   _ oy: Int, _ ox: Int, _ rows: (first: Int, end: Int)) {
    let w = lanes.tensors.window, c = w.outputChannels
    let cols = validTaps(origin: ox &- w.padLeft, kernel: 3, extent: w.inputWidth)
    var a = lanes.pixelStart
    var ky = rows.first
    while ky < rows.end {
        let iy = oy &* w.strideHeight &- w.padTop &+ ky
        var kx = cols.first
        while kx < cols.end {
            let x = lanes.tensors.input + (iy &* w.inputWidth &+ ox &- w.padLeft &+ kx) &* c
            a = lanes.add(a, lanes.pixelInput(x), pattern[ky &* 3 &+ kx].q0)
            kx &+= 1
        }
        ky &+= 1
    }
    lanes.storePixel(a, lanes.tensors.output + (oy &* w.outputWidth &+ ox) &* c)
}

// MARK: - int8 runs (x86-64)

/// `depthwiseConv2dQ8` in rows as runs (`runsPay`), the rounding of negative products fixed.
private func depthwiseRunsQ8<N: NegativeRounding>(_: N.Type, input: UnsafePointer<Int8>, inputZeroPoint: Int32,
                                                  weights: UnsafePointer<Int8>, bias: UnsafePointer<Int32>?,
                                                  output: UnsafeMutablePointer<Int8>, window w: Window2D,
                                                  requant: RequantQ8, stage: OutputStageQ8) {
    let c = w.outputChannels
    var patterns = RunPatterns<SIMD16<Int32>>(channels: c, weight: { Int32(weights[$0]) }, bias: { bias?[$0] ?? 0 })
    // The requantization patterns, and per kernel row the sum of its three weights (for zp·Σ w).
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
    let lanes = RunQ8<N>(tensors: CallTensors(input: input, output: output, window: w),
                         zeroPoint: SIMD16(repeating: inputZeroPoint), stage: stage, bias: patterns.bias,
                         rowSums: rowSums,
                         requant: (Requant16(multiplier: multiplier.q0, shift: shift.q0),
                                   Requant16(multiplier: multiplier.q1, shift: shift.q1),
                                   Requant16(multiplier: multiplier.q2, shift: shift.q2),
                                   Requant16(multiplier: multiplier.q3, shift: shift.q3)))
    withUnsafeBytes(of: &patterns.taps) { p in
        runRows(lanes, p.baseAddress!.assumingMemoryBound(to: Quad<SIMD16<Int32>>.self))
    }
}

/// int8 runs: Int32 lanes, wrapping sums, `Requant16` per quarter.
private struct RunQ8<N: NegativeRounding>: RunLanes {
    let tensors: CallTensors<Int8>
    let zeroPoint: SIMD16<Int32>
    let stage: OutputStageQ8
    let bias: Quad<SIMD16<Int32>>
    let rowSums: (Quad<SIMD16<Int32>>, Quad<SIMD16<Int32>>, Quad<SIMD16<Int32>>)
    let requant: (Requant16, Requant16, Requant16, Requant16)

    @inline(__always)
    func load(_ p: UnsafePointer<Int8>) -> SIMD16<Int32> { loadWidened16(p) }

    @inline(__always)
    func pixelInput(_ p: UnsafePointer<Int8>) -> SIMD16<Int32> {
        if p + 16 <= tensors.inputEnd { return loadWidened16(p) &- zeroPoint }
        // Lanes past C: x − zp = 0.
        return widened(lanes16(p, tensors.window.outputChannels, else: Int8(truncatingIfNeeded: zeroPoint[0])))
            &- zeroPoint
    }

    @inline(__always)
    func add(_ acc: SIMD16<Int32>, _ x: SIMD16<Int32>, _ w: SIMD16<Int32>) -> SIMD16<Int32> { acc &+ x &* w }

    @inline(__always)
    func start(_ rows: (first: Int, end: Int)) -> Quad<SIMD16<Int32>> {
        var s = bias
        var ky = rows.first
        while ky < rows.end {
            let r = ky == 0 ? rowSums.0 : (ky == 1 ? rowSums.1 : rowSums.2)
            s.q0 &-= zeroPoint &* r.q0
            s.q1 &-= zeroPoint &* r.q1
            s.q2 &-= zeroPoint &* r.q2
            s.q3 &-= zeroPoint &* r.q3
            ky &+= 1
        }
        return s
    }

    var pixelStart: SIMD16<Int32> { bias.q0 }

    @inline(__always)
    func store(_ acc: SIMD16<Int32>, quarter q: Int, _ out: UnsafeMutablePointer<Int8>) {
        let r = q == 0 ? requant.0 : (q == 1 ? requant.1 : (q == 2 ? requant.2 : requant.3))
        storeLanes(stage(r.apply(acc, N.self)), out)
    }

    @inline(__always)
    func storePixel(_ acc: SIMD16<Int32>, _ out: UnsafeMutablePointer<Int8>) {
        let bytes = stage(requant.0.apply(acc, N.self))
        if out + 16 <= tensors.outputEnd {
            storeLanes(bytes, out)
        } else {
            for i in 0 ..< tensors.window.outputChannels { out[i] = bytes[i] }
        }
    }
}

// MARK: - Float32 runs

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

/// `depthwiseConv2dF32` in rows as runs (`runsPay`).
private func depthwiseRunsF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
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
    let lanes = RunF32<S>(tensors: CallTensors(input: input, output: output, window: w), clamp: clamp,
                          bias: patterns.bias)
    withUnsafeBytes(of: &patterns.taps) { p in
        runRows(lanes, p.baseAddress!.assumingMemoryBound(to: Quad<SIMD16<Float>>.self))
    }
}

/// Float32 runs: the taps added as `S` says, the clamp on the way out.
private struct RunF32<S: TapSum>: RunLanes {
    let tensors: CallTensors<Float>
    let clamp: ClampF32
    let bias: Quad<SIMD16<Float>>

    @inline(__always)
    func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> { loadLanes(p) }

    @inline(__always)
    func pixelInput(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        if p + 16 <= tensors.inputEnd { return loadLanes(p) }
        return lanes16(p, tensors.window.outputChannels, else: 0)
    }

    @inline(__always)
    func add(_ acc: SIMD16<Float>, _ x: SIMD16<Float>, _ w: SIMD16<Float>) -> SIMD16<Float> { S.add(acc, x, w) }

    @inline(__always)
    func start(_ rows: (first: Int, end: Int)) -> Quad<SIMD16<Float>> { bias }

    var pixelStart: SIMD16<Float> { bias.q0 }

    @inline(__always)
    func store(_ acc: SIMD16<Float>, quarter q: Int, _ out: UnsafeMutablePointer<Float>) { storeClamped(acc, out, clamp) }

    @inline(__always)
    func storePixel(_ acc: SIMD16<Float>, _ out: UnsafeMutablePointer<Float>) {
        if out + 16 <= tensors.outputEnd {
            storeClamped(acc, out, clamp)
        } else {
            for i in 0 ..< tensors.window.outputChannels { out[i] = clampScalarF32(acc[i], clamp) }
        }
    }
}

// MARK: - Channel blocks with the weights held (`blocksPay`)

/// The 9 weight vectors of a 3×3 channel block, `w(3·ky + kx)`; held in registers once inlined.
private struct HeldTaps<V: SIMD> {
    var w0, w1, w2, w3, w4, w5, w6, w7, w8: V

    @inline(__always)
    init(_ load: (Int) -> V) {
        w0 = load(0); w1 = load(1); w2 = load(2); w3 = load(3); w4 = load(4)
        w5 = load(5); w6 = load(6); w7 = load(7); w8 = load(8)
    }

    /// Kernel row `ky`'s three taps, chosen by branches (an index into the struct would put
    /// it in memory, and every multiply would then load its weights).
    @inline(__always)
    func row(_ ky: Int) -> (V, V, V) {
        if ky == 0 { return (w0, w1, w2) }
        if ky == 1 { return (w3, w4, w5) }
        return (w6, w7, w8)
    }
}

/// The tap of `row` in kernel column `kx`.
@inline(__always)
private func column<V>(_ row: (V, V, V), _ kx: Int) -> V {
    kx == 0 ? row.0 : (kx == 1 ? row.1 : row.2)
}

/// The output columns `first ..< end` of a 3×3 window (any stride) whose taps all lie in the input row.
@inline(__always)
private func blockInteriorColumns(_ w: Window2D) -> (first: Int, end: Int) {
    var first = 0
    while first < w.outputWidth && first &* w.strideWidth &- w.padLeft < 0 { first &+= 1 }
    var end = first
    while end < w.outputWidth && end &* w.strideWidth &- w.padLeft &+ 3 <= w.inputWidth { end &+= 1 }
    return (first, end)
}

/// The arithmetic of one channel block, Float32 (`BlockF32`) or int8 (`BlockQ8`). A struct of
/// values, so that its weights stay in registers (a closure's captures would be reloaded
/// after every store through the output pointer, which might alias them).
private protocol BlockLanes {
    associatedtype Element
    associatedtype Acc: SIMD
    /// The 16 elements at `p` as the interior multiplies them (int8: the zero point is in `start`).
    func load(_ p: UnsafePointer<Element>) -> Acc
    /// The 16 elements at `p` as a clipped column multiplies them (int8: less the zero point).
    func centered(_ p: UnsafePointer<Element>) -> Acc
    /// acc + x·w.
    func add(_ acc: Acc, _ x: Acc, _ w: Acc) -> Acc
    /// The interior's accumulator in a row whose valid kernel rows are `top`, `middle`,
    /// `bottom` (int8: the bias less zp·Σ w of those rows).
    func start(_ top: Bool, _ middle: Bool, _ bottom: Bool) -> Acc
    /// A clipped column's accumulator: the bias.
    var bias: Acc { get }
    /// The 16 outputs, finished (clamped, or requantized), stored at `out`.
    func store(_ acc: Acc, _ out: UnsafeMutablePointer<Element>)
    /// Whether the interior takes two outputs at once, sharing loads (int8: each load is a
    /// widening; Float32's fold into the multiply-adds).
    static var sharesLoads: Bool { get }
}

/// Every output pixel of one channel block, in row order; `input` and `output` start at
/// its first channel.
@inline(__always)
private func sweepBlock<L: BlockLanes>(_ lanes: L, _ taps: HeldTaps<L.Acc>, input: UnsafePointer<L.Element>,
                                       output: UnsafeMutablePointer<L.Element>, window w: Window2D) {
    let channels = w.outputChannels, rowElements = w.inputWidth &* channels
    let columns = blockInteriorColumns(w)
    var oy = 0
    while oy < w.outputHeight {
        let rowOrigin = oy &* w.strideHeight &- w.padTop
        let rows = validTaps(origin: rowOrigin, kernel: 3, extent: w.inputHeight)
        // Kernel row ky is valid when rows.first ≤ ky < rows.end (none may be: padding of 3 or more).
        let top = rows.first == 0 && rows.end >= 1, middle = rows.first <= 1 && rows.end >= 2
        let bottom = rows.first <= 2 && rows.end == 3
        var ox = 0
        while ox < w.outputWidth {
            if ox == columns.first && columns.end > columns.first {
                // The interior: every column tap valid, the rows as three flags, each row's
                // taps written out (no tap index in the loop).
                let start = lanes.start(top, middle, bottom)
                var x = input + (rowOrigin &* w.inputWidth &+ ox &* w.strideWidth &- w.padLeft) &* channels
                var o = output + (oy &* w.outputWidth &+ ox) &* channels
                // Two outputs at once at stride 1 where loads cost (`sharesLoads`): 4 loads per
                // kernel row where one at a time takes 6.
                while L.sharesLoads && w.strideWidth == 1 && ox &+ 2 <= columns.end {
                    var acc0 = start, acc1 = start
                    if top { (acc0, acc1) = kernelRow2(lanes, acc0, acc1, x, channels, taps.w0, taps.w1, taps.w2) }
                    if middle {
                        (acc0, acc1) = kernelRow2(lanes, acc0, acc1, x + rowElements, channels, taps.w3, taps.w4, taps.w5)
                    }
                    if bottom {
                        (acc0, acc1) = kernelRow2(lanes, acc0, acc1, x + 2 &* rowElements, channels, taps.w6, taps.w7, taps.w8)
                    }
                    lanes.store(acc0, o)
                    lanes.store(acc1, o + channels)
                    x += 2 &* channels
                    o += 2 &* channels
                    ox &+= 2
                }
                while ox < columns.end {
                    var acc = start
                    if top { acc = kernelRow(lanes, acc, x, channels, taps.w0, taps.w1, taps.w2) }
                    if middle { acc = kernelRow(lanes, acc, x + rowElements, channels, taps.w3, taps.w4, taps.w5) }
                    if bottom { acc = kernelRow(lanes, acc, x + 2 &* rowElements, channels, taps.w6, taps.w7, taps.w8) }
                    lanes.store(acc, o)
                    x += w.strideWidth &* channels
                    o += channels
                    ox &+= 1
                }
                continue
            }
            // A clipped column: its valid taps only.
            let columnOrigin = ox &* w.strideWidth &- w.padLeft
            let cols = validTaps(origin: columnOrigin, kernel: 3, extent: w.inputWidth)
            var acc = lanes.bias
            var ky = rows.first
            while ky < rows.end {
                let x = input + ((rowOrigin &+ ky) &* w.inputWidth &+ columnOrigin) &* channels, row = taps.row(ky)
                var kx = cols.first
                while kx < cols.end {
                    acc = lanes.add(acc, lanes.centered(x + kx &* channels), column(row, kx))
                    kx &+= 1
                }
                ky &+= 1
            }
            lanes.store(acc, output + (oy &* w.outputWidth &+ ox) &* channels)
            ox &+= 1
        }
        oy &+= 1
    }
}

/// `kernelRow` for the outputs whose windows start at `x` and `x + C`, sharing their loads.
@inline(__always)
private func kernelRow2<L: BlockLanes>(_ lanes: L, _ acc0: L.Acc, _ acc1: L.Acc, _ x: UnsafePointer<L.Element>,
                                       _ channels: Int, _ w0: L.Acc, _ w1: L.Acc, _ w2: L.Acc) -> (L.Acc, L.Acc) {
    let x0 = lanes.load(x), x1 = lanes.load(x + channels)
    let x2 = lanes.load(x + 2 &* channels), x3 = lanes.load(x + 3 &* channels)
    return (lanes.add(lanes.add(lanes.add(acc0, x0, w0), x1, w1), x2, w2),
            lanes.add(lanes.add(lanes.add(acc1, x1, w0), x2, w1), x3, w2))
}

/// `acc` plus one kernel row's three taps, in column order, at `x`, `x + C`, `x + 2C`.
@inline(__always)
private func kernelRow<L: BlockLanes>(_ lanes: L, _ acc: L.Acc, _ x: UnsafePointer<L.Element>, _ channels: Int,
                                      _ w0: L.Acc, _ w1: L.Acc, _ w2: L.Acc) -> L.Acc {
    let a = lanes.add(acc, lanes.load(x), w0)
    return lanes.add(lanes.add(a, lanes.load(x + channels), w1), lanes.load(x + 2 &* channels), w2)
}

/// `depthwiseConv2dF32` for C ≥ 8 and a 3×3 kernel: for each block of 16 channels (the
/// last moved back to end at C, its overlap recomputed alike; one padded block below 16
/// channels), its 9 weight vectors and bias are loaded once and held while the block sweeps
/// every output pixel, where the per-pixel kernel loads them again for each pixel. The same
/// fused multiply-adds in the same order (bias, then rows, then columns), so the same
/// results bit for bit.
private func depthwiseBlocksF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        output: UnsafeMutablePointer<Float>, window w: Window2D, clamp: ClampF32) {
    let tensors = CallTensors(input: input, output: output, window: w)
    if w.outputChannels < 16 {
        blockF32(PaddedBlock.self, channel: 0, weights: weights, bias: bias, tensors: tensors, clamp: clamp)
        return
    }
    var block = 0
    while let c = channelBlock(block, width: 16, count: w.outputChannels) {
        blockF32(WholeBlocks.self, channel: c, weights: weights, bias: bias, tensors: tensors, clamp: clamp)
        block &+= 1
    }
}

/// Channel block `c ..< c + 16` of `depthwiseBlocksF32` (padded: lanes past C hold weight and
/// bias 0 and are never stored).
private func blockF32<P: BlockPadding>(_: P.Type, channel c: Int, weights: UnsafePointer<Float>,
                                       bias: UnsafePointer<Float>?, tensors: CallTensors<Float>, clamp: ClampF32) {
    let w = tensors.window, channels = w.outputChannels
    sweepBlock(BlockF32<P>(clamp: clamp, bias: bias.map { P.lanes($0 + c, channels, else: 0) } ?? SIMD16(),
                           tensors: tensors),
               HeldTaps { P.lanes(weights + ($0 &* channels &+ c), channels, else: 0) },
               input: tensors.input + c, output: tensors.output + c, window: w)
}

/// Float32 channel blocks: fused multiply-adds, the clamp on the way out.
private struct BlockF32<P: BlockPadding>: BlockLanes {
    let clamp: ClampF32
    let bias: SIMD16<Float>
    let tensors: CallTensors<Float>

    @inline(__always)
    func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        if P.padded && p + 16 > tensors.inputEnd { return lanes16(p, tensors.window.outputChannels, else: 0) }
        return loadLanes(p)
    }
    @inline(__always)
    func centered(_ p: UnsafePointer<Float>) -> SIMD16<Float> { load(p) }
    @inline(__always)
    func add(_ acc: SIMD16<Float>, _ x: SIMD16<Float>, _ w: SIMD16<Float>) -> SIMD16<Float> { acc.addingProduct(x, w) }
    @inline(__always)
    func start(_ top: Bool, _ middle: Bool, _ bottom: Bool) -> SIMD16<Float> { bias }
    static var sharesLoads: Bool { false }
    @inline(__always)
    func store(_ acc: SIMD16<Float>, _ out: UnsafeMutablePointer<Float>) {
        if P.padded && out + 16 > tensors.outputEnd {
            for i in 0 ..< tensors.window.outputChannels { out[i] = clampScalarF32(acc[i], clamp) }
        } else {
            storeClamped(acc, out, clamp)
        }
    }
}

/// Whether a channel block has lanes past C (one block of 16 lanes for 8 ≤ C < 16): its
/// loads and stores then run past the pixel, and near the tensors' ends go lane by lane.
private protocol BlockPadding { static var padded: Bool { get } }
private enum WholeBlocks: BlockPadding { static var padded: Bool { false } }
private enum PaddedBlock: BlockPadding { static var padded: Bool { true } }

extension BlockPadding {
    /// A block's 16 lanes of weights, bias or requantization at `p`: straight loads in a whole
    /// block, lanes 0 ..< C and `fill` past them in a padded one.
    @inline(__always)
    static func lanes<T: SIMDScalar>(_ p: UnsafePointer<T>, _ channels: Int, else fill: T) -> SIMD16<T> {
        padded ? lanes16(p, channels, else: fill) : loadLanes(p)
    }
}

/// `n` values at `p` in lanes 0 ..< n of 16, `fill` in the others, reading nothing past
/// `p + n` (a pixel near a tensor's end, a padded block's weights, bias and requantization),
/// or 16 straight loads when n ≥ 16.
@inline(__always)
private func lanes16<T: SIMDScalar>(_ p: UnsafePointer<T>, _ n: Int, else fill: T) -> SIMD16<T> {
    if n >= 16 { return loadLanes(p) }
    var v = SIMD16<T>(repeating: fill)
    for i in 0 ..< n { v[i] = p[i] }
    return v
}

/// `depthwiseConv2dQ8` in channel blocks, as `depthwiseBlocksF32`: each block of 16
/// channels holds its weights (Int32 lanes), bias and requantization. In the interior
/// columns the input zero point comes off the bias once per set of valid rows,
/// Σ (x − zp)·w = Σ x·w − zp·Σ w modulo 2^32, as the portable loop's wrapping sums: the
/// same accumulators bit for bit.
private func depthwiseBlocksQ8<N: NegativeRounding>(_: N.Type, input: UnsafePointer<Int8>, inputZeroPoint: Int32,
                                                    weights: UnsafePointer<Int8>, bias: UnsafePointer<Int32>?,
                                                    output: UnsafeMutablePointer<Int8>, window w: Window2D,
                                                    requant: RequantQ8, stage: OutputStageQ8) {
    let tensors = CallTensors(input: input, output: output, window: w)
    if w.outputChannels < 16 {
        blockQ8(N.self, PaddedBlock.self, channel: 0, inputZeroPoint: inputZeroPoint, weights: weights, bias: bias,
                tensors: tensors, requant: requant, stage: stage)
        return
    }
    var block = 0
    while let c = channelBlock(block, width: 16, count: w.outputChannels) {
        blockQ8(N.self, WholeBlocks.self, channel: c, inputZeroPoint: inputZeroPoint, weights: weights, bias: bias,
                tensors: tensors, requant: requant, stage: stage)
        block &+= 1
    }
}

/// Channel block `c ..< c + 16` of `depthwiseBlocksQ8` (padded: lanes past C hold weight and
/// bias 0, multiplier 2^30 and shift 0, and are never stored).
private func blockQ8<N: NegativeRounding, P: BlockPadding>(_: N.Type, _: P.Type, channel c: Int, inputZeroPoint: Int32,
                                                          weights: UnsafePointer<Int8>, bias: UnsafePointer<Int32>?,
                                                          tensors: CallTensors<Int8>, requant: RequantQ8,
                                                          stage: OutputStageQ8) {
    let w = tensors.window, channels = w.outputChannels
    let taps = HeldTaps<SIMD16<Int32>> { widened(P.lanes(weights + ($0 &* channels &+ c), channels, else: 0)) }
    let lanes = BlockQ8<N, P>(stage: stage, zeroPoint: SIMD16(repeating: inputZeroPoint),
                              rowSums: (taps.w0 &+ taps.w1 &+ taps.w2, taps.w3 &+ taps.w4 &+ taps.w5,
                                        taps.w6 &+ taps.w7 &+ taps.w8),
                              bias: bias.map { P.lanes($0 + c, channels, else: 0) } ?? SIMD16(),
                              requant: Requant16(multiplier: P.lanes(requant.multipliers + c, channels, else: 1 << 30),
                                                 shift: P.lanes(requant.shifts + c, channels, else: 0)),
                              tensors: tensors)
    sweepBlock(lanes, taps, input: tensors.input + c, output: tensors.output + c, window: w)
}

/// 16 int8 lanes sign-extended to Int32.
@inline(__always)
private func widened(_ v: SIMD16<Int8>) -> SIMD16<Int32> {
    SIMD16(Int32(v[0]), Int32(v[1]), Int32(v[2]), Int32(v[3]), Int32(v[4]), Int32(v[5]), Int32(v[6]), Int32(v[7]),
           Int32(v[8]), Int32(v[9]), Int32(v[10]), Int32(v[11]), Int32(v[12]), Int32(v[13]), Int32(v[14]), Int32(v[15]))
}

/// int8 channel blocks: Int32 lanes, wrapping sums, `Requant16`.
private struct BlockQ8<N: NegativeRounding, P: BlockPadding>: BlockLanes {
    let stage: OutputStageQ8
    let zeroPoint: SIMD16<Int32>
    /// Each kernel row's Σ w, for zp·Σ w.
    let rowSums: (SIMD16<Int32>, SIMD16<Int32>, SIMD16<Int32>)
    let bias: SIMD16<Int32>
    let requant: Requant16
    let tensors: CallTensors<Int8>

    @inline(__always)
    func load(_ p: UnsafePointer<Int8>) -> SIMD16<Int32> {
        if P.padded && p + 16 > tensors.inputEnd { return widened(lanes16(p, tensors.window.outputChannels, else: 0)) }
        return loadWidened16(p)
    }
    @inline(__always)
    func centered(_ p: UnsafePointer<Int8>) -> SIMD16<Int32> { load(p) &- zeroPoint }
    static var sharesLoads: Bool { true }
    @inline(__always)
    func add(_ acc: SIMD16<Int32>, _ x: SIMD16<Int32>, _ w: SIMD16<Int32>) -> SIMD16<Int32> { acc &+ x &* w }
    @inline(__always)
    func start(_ top: Bool, _ middle: Bool, _ bottom: Bool) -> SIMD16<Int32> {
        var s = bias
        if top { s &-= zeroPoint &* rowSums.0 }
        if middle { s &-= zeroPoint &* rowSums.1 }
        if bottom { s &-= zeroPoint &* rowSums.2 }
        return s
    }
    @inline(__always)
    func store(_ acc: SIMD16<Int32>, _ out: UnsafeMutablePointer<Int8>) {
        let bytes = stage(requant.apply(acc, N.self))
        if P.padded && out + 16 > tensors.outputEnd {
            for i in 0 ..< tensors.window.outputChannels { out[i] = bytes[i] }
        } else {
            storeLanes(bytes, out)
        }
    }
}

// MARK: - Entry points

/// Runs a 3×3 int8 depthwise op on this file's paths (x86-64; rows as runs where `runsPay`,
/// else channel blocks from 9 channels on) and returns true, or returns false and leaves
/// the op to `depthwiseConv2dQ8`'s own loops.
func depthwise3x3Q8(input: UnsafePointer<Int8>, inputZeroPoint: Int32, weights: UnsafePointer<Int8>,
                    bias: UnsafePointer<Int32>?, output: UnsafeMutablePointer<Int8>, window w: Window2D,
                    requant: RequantQ8, stage: OutputStageQ8) -> Bool {
    // x86-64 only (`pairedTaps`: elsewhere unmeasured), an int8 zero point, `Requant16`'s domain.
    guard pairedTaps && inputZeroPoint >= -128 && inputZeroPoint <= 127
        && requantFitsOneShift(requant.multipliers, requant.shifts, count: w.outputChannels) else { return false }
    let runs = runsPay(w)
    guard runs || blocksPay(w, fewest: 9) else { return false }
    if stage.clampsNegatives {
        depthwise3x3Q8(ClampsNegatives.self, runs: runs, input: input, inputZeroPoint: inputZeroPoint, weights: weights,
                       bias: bias, output: output, window: w, requant: requant, stage: stage)
    } else {
        depthwise3x3Q8(RoundsNegatives.self, runs: runs, input: input, inputZeroPoint: inputZeroPoint, weights: weights,
                       bias: bias, output: output, window: w, requant: requant, stage: stage)
    }
    return true
}

/// `depthwise3x3Q8` with the requantization's rounding of negative products fixed.
private func depthwise3x3Q8<N: NegativeRounding>(_: N.Type, runs: Bool, input: UnsafePointer<Int8>, inputZeroPoint: Int32,
                                                 weights: UnsafePointer<Int8>, bias: UnsafePointer<Int32>?,
                                                 output: UnsafeMutablePointer<Int8>, window w: Window2D,
                                                 requant: RequantQ8, stage: OutputStageQ8) {
    if runs {
        depthwiseRunsQ8(N.self, input: input, inputZeroPoint: inputZeroPoint, weights: weights, bias: bias,
                        output: output, window: w, requant: requant, stage: stage)
    } else {
        depthwiseBlocksQ8(N.self, input: input, inputZeroPoint: inputZeroPoint, weights: weights, bias: bias,
                          output: output, window: w, requant: requant, stage: stage)
    }
}

/// Runs a 3×3 Float32 depthwise op on this file's paths (rows as runs where `runsPay`, else
/// channel blocks from 8 channels on) and returns true, or returns false.
func depthwise3x3F32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                     output: UnsafeMutablePointer<Float>, window w: Window2D, clamp: ClampF32) -> Bool {
    if runsPay(w) {
        depthwiseRunsF32(input: input, weights: weights, bias: bias, output: output, window: w, clamp: clamp)
        return true
    }
    if blocksPay(w, fewest: 8) {
        depthwiseBlocksF32(input: input, weights: weights, bias: bias, output: output, window: w, clamp: clamp)
        return true
    }
    return false
}
