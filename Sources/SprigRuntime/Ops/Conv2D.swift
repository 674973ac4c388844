// Conv2D, Float32 and int8.
//
//   input   [H][W][Cin]              window.inputHeight/Width/Channels
//   weights [KH][KW][Cin][Cout]      HWIO
//   bias    [Cout]                   Float32, or Int32 in scale s_in·s_w (q8); nil = 0
//   output  [OH][OW][Cout]
//
//   out[oy][ox][co] = bias[co] + Σ_{ky,kx,ci valid} in[oy·sh − pt + ky][ox·sw − pl + kx][ci] · w[ky][kx][ci][co]
//
// Taps outside the input are padding and contribute nothing (for q8 they are
// skipped, not treated as the zero point).
//
// Loop structure. For a fixed ky, the valid taps (kx, ci) of one output pixel
// are contiguous in the input (a run of one input row) and so are the weight
// rows w[ky][kx][ci][·]. So for each valid ky the kernel runs a flat loop over
// j of broadcast(in[j]) × weights row j: a small GEMM whose K is (valid kx)·Cin.
// Two paths:
//   1. the tile path: 4 output pixels whose windows have the same valid taps
//      × one block of 16 output channels (8 when Cout < 16, 4 when Cout < 8), with the
//      accumulators kept in registers. Horizontal tiles take 4 consecutive
//      interior columns of any row (their rows may be clipped); vertical tiles
//      take 4 consecutive interior rows of any other column (its columns may be
//      clipped). Channel blocks are the outer loop, so one block's weights
//      (KH·KW·Cin·16 values) stay in L1. When 16 (or 8) does not divide Cout,
//      the last block is moved back to end at Cout (`channelBlock`): it
//      overlaps its neighbour, whose channels it recomputes with the same
//      arithmetic in the same order, so it stores the same values. Any
//      Cout ≥ 4 therefore runs on tiles only. On x86-64 the q8 tiles multiply
//      two taps at once (vpmaddwd pairs, see KernelSupport.swift). In f32 on
//      64-bit targets, when 16 does not divide Cout, each block's weights are
//      first packed into rows of 16 lanes on the stack (`conv2dPackedTilesF32`):
//      aligned loads for every Cout, and one zero-padded block of 16 below 16
//      channels, its vertical tiles stored through a staging buffer (horizontal
//      ones store 16 lanes straight into the output where they fit: the lanes past
//      Cout land on pixels written after them). With AVX-512, Float32 horizontal
//      tiles of 16 lanes take 8 pixels where they fit (`EightPixels`).
//   2. the pixel path: one output pixel with its own clipping, channel blocks
//      of 64 (f32) or 32 (q8), then 16/8 (f32: the last one moved back to end at
//      Cout, so a tail only below 8 channels) and a scalar tail. It handles the
//      pixels no tile covered (corners, leftovers), and every channel when
//      Cout < 4.

// MARK: - Float32

/// Float32 2-D convolution with a fused clamp, weights HWIO.
///
/// - Parameters:
///   - input: `[inputHeight][inputWidth][inputChannels]`.
///   - weights: `[kernelHeight][kernelWidth][inputChannels][outputChannels]`.
///   - bias: `[outputChannels]`, or nil for zero.
///   - output: `[outputHeight][outputWidth][outputChannels]`; must not alias `input`.
///   - window: geometry, already validated by the interpreter (any kernel size,
///     stride ≥ 1, any padding).
///   - clamp: fused activation.
/// - Complexity: O(OH·OW·KH·KW·Cin·Cout); no allocation.
#if (arch(x86_64) && SPRIG_ISA_VNNI) || (arch(arm64) && SPRIG_ISA_DOTPROD)
import SprigISA
#endif

public func conv2dF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                      output: UnsafeMutablePointer<Float>, window: Window2D, clamp: ClampF32) {
    let w = window
    let cout = w.outputChannels
    // Horizontal tiles: 4 consecutive interior columns of one row.
    let columns = interiorOutputs(stride: w.strideWidth, pad: w.padLeft, kernel: w.kernelWidth,
                                  extent: w.inputWidth, outputCount: w.outputWidth)
    let tiledEnd = columns.first &+ (columns.end &- columns.first) / 4 &* 4
    // Vertical tiles: 4 consecutive interior rows of one of the other columns.
    let rows = interiorOutputs(stride: w.strideHeight, pad: w.padTop, kernel: w.kernelHeight,
                               extent: w.inputHeight, outputCount: w.outputHeight)
    let rowsTiledEnd = rows.first &+ (rows.end &- rows.first) / 4 &* 4
    // Channel blocks of 16, 8 (8 ≤ cout < 16) or 4 (4 ≤ cout < 8), the last one
    // moved back to end at cout; with cout < 4 the pixel path does every channel.
    let blockWidth = tileBlockWidth(outputChannels: cout)
    let tiledChannels = blockWidth > 0 ? cout : 0
    let geometry = TileGeometry(columns: columns, columnsTiledEnd: tiledEnd, rows: rows, rowsTiledEnd: rowsTiledEnd)

    // 1. Tiles of 4 pixels with the same clipping × one channel block: from packed
    // weights when Cout is not a multiple of 16 (and there are tiles), else straight
    // from the weights.
    let anyTiles = columns.first < tiledEnd || rows.first < rowsTiledEnd
    if blockWidth == 0 || cout % 16 == 0 || !anyTiles
        || !conv2dPackedTilesF32(input: input, weights: weights, bias: bias, output: output, window: w,
                                 geometry: geometry, clamp: clamp) {
        var block = 0
        while blockWidth > 0, let c = channelBlock(block, width: blockWidth, count: cout) {
            // (`staging` is not used: these blocks store every lane.)
            switch blockWidth {
            case 16:
                conv2dBlockF32(SIMD16<Float>.self, input: input, weights: weights + c, weightStride: cout,
                               initial: bias.map { loadLanes($0 + c) } ?? SIMD16(), active: 16,
                               staging: output, output: output + c, window: w, geometry: geometry, clamp: clamp)
            case 8:
                conv2dBlockF32(SIMD8<Float>.self, input: input, weights: weights + c, weightStride: cout,
                               initial: bias.map { loadLanes($0 + c) } ?? SIMD8(), active: 8,
                               staging: output, output: output + c, window: w, geometry: geometry, clamp: clamp)
            default:
                conv2dBlockF32(SIMD4<Float>.self, input: input, weights: weights + c, weightStride: cout,
                               initial: bias.map { loadLanes($0 + c) } ?? SIMD4(), active: 4,
                               staging: output, output: output + c, window: w, geometry: geometry, clamp: clamp)
            }
            block &+= 1
        }
    }

    // 2. Pixel path: everything the tiles did not cover.
    var oy = 0
    while oy < w.outputHeight {
        let rowTiled = oy >= rows.first && oy < rowsTiledEnd
        var ox = 0
        while ox < w.outputWidth {
            let tiled = rowTiled || (ox >= columns.first && ox < tiledEnd)
            let firstChannel = tiled ? tiledChannels : 0
            if firstChannel < cout {
                conv2dPixelF32(input: input, weights: weights, bias: bias, output: output, window: w,
                               oy: oy, ox: ox, firstChannel: firstChannel, clamp: clamp)
            }
            ox &+= 1
        }
        oy &+= 1
    }
}

/// The channel block of the tiles: 16 lanes, 8 when `outputChannels < 16`, 4
/// when `< 8`, and 0 (no tiles) when `< 4`.
@inline(__always)
func tileBlockWidth(outputChannels cout: Int) -> Int {
    cout >= 16 ? 16 : (cout >= 8 ? 8 : (cout >= 4 ? 4 : 0))
}

/// Which outputs the tiles take: horizontal tiles the interior columns
/// `columns.first ..< columnsTiledEnd` of every row, vertical tiles the interior
/// rows `rows.first ..< rowsTiledEnd` of every other column (multiples of 4).
struct TileGeometry {
    var columns: (first: Int, end: Int)
    var columnsTiledEnd: Int
    var rows: (first: Int, end: Int)
    var rowsTiledEnd: Int
}

/// Every tile of `conv2dF32` for one block of `active` channels (`active` ≤
/// `V.scalarCount`; below it, the lanes past `active` are computed and not stored).
/// `weights` points at the block's first channel in rows of `weightStride` values per
/// (ky, kx, ci) tap (Cout for the weights as they are, 16 when packed); `output` at the
/// block's first channel of pixel 0. `staging`: room for 4 × 16 floats, used when
/// `active` < `V.scalarCount`.
@inline(__always)
private func conv2dBlockF32<V: SIMD>(_: V.Type, input: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                                     weightStride: Int, initial: V, active: Int,
                                     staging: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>,
                                     window w: Window2D, geometry g: TileGeometry,
                                     clamp: ClampF32) where V.Scalar == Float {
    let cin = w.inputChannels
    let cout = w.outputChannels
    let inputRowStride = w.inputWidth &* cin
    let flatCount = w.kernelWidth &* cin
    let weightsKyStride = flatCount &* weightStride
    let lower = V(repeating: clamp.lower)
    let upper = V(repeating: clamp.upper)
    // Below `V.scalarCount` channels (one padded block of 16) a vertical tile stores into
    // `staging` (4 pixels × 16 lanes), and `copyLanes` moves the first `active` of each
    // pixel out. A horizontal tile stores its 16 lanes straight into the output where they
    // fit: the lanes past `active` land in the next pixels, which are written after it (the
    // horizontal tiles go in row order; the vertical tiles and the pixel path come later),
    // and each pixel's store comes after the one before.
    let whole = active >= V.scalarCount
    let outputEnd = output + w.outputHeight &* w.outputWidth &* cout
    // 1a. Horizontal tiles, every row (rows clipped as needed).
    var oy = 0
    while oy < w.outputHeight && g.columns.first < g.columnsTiledEnd {
        let rowOrigin = oy &* w.strideHeight &- w.padTop
        let taps = validTaps(origin: rowOrigin, kernel: w.kernelHeight, extent: w.inputHeight)
        var ox = g.columns.first
        while ox < g.columnsTiledEnd {
            let out = output + (oy &* w.outputWidth &+ ox) &* cout
            let tileInput = input + ((rowOrigin &+ taps.first) &* inputRowStride &+ (ox &* w.strideWidth &- w.padLeft) &* cin)
            let tileWeights = weights + taps.first &* weightsKyStride, tapRows = taps.end &- taps.first
            #if arch(x86_64) && SPRIG_ISA_AVX512_VNNI
            // 8 pixels at a time where they fit (AVX-512's 32 registers hold 8 accumulators).
            if V.scalarCount == 16 && ox &+ 8 <= g.columnsTiledEnd && (whole || out + (7 &* cout &+ 16) <= outputEnd) {
                conv2dTileF32(EightPixels.self, input: tileInput, inputPixelStep: w.strideWidth &* cin,
                              inputRowStride: inputRowStride, tapRows: tapRows, flatCount: flatCount,
                              weights: tileWeights, weightsKyStride: weightsKyStride, weightStride: weightStride,
                              initial: initial, output: out, outputPixelStep: cout, lower: lower, upper: upper)
                ox &+= 8
                continue
            }
            #endif
            let direct = whole || out + (3 &* cout &+ 16) <= outputEnd
            conv2dTileF32(FourPixels.self, input: tileInput, inputPixelStep: w.strideWidth &* cin,
                          inputRowStride: inputRowStride, tapRows: tapRows, flatCount: flatCount,
                          weights: tileWeights, weightsKyStride: weightsKyStride, weightStride: weightStride,
                          initial: initial, output: direct ? out : staging, outputPixelStep: direct ? cout : 16,
                          lower: lower, upper: upper)
            if !direct { copyLanes(from: staging, to: out, pixelStep: cout, active: active) }
            ox &+= 4
        }
        oy &+= 1
    }
    // 1b. Vertical tiles down every other column (columns clipped as needed).
    var ox = 0
    while ox < w.outputWidth && g.rows.first < g.rowsTiledEnd {
        if ox >= g.columns.first && ox < g.columnsTiledEnd { ox = g.columnsTiledEnd; continue }
        let columnOrigin = ox &* w.strideWidth &- w.padLeft
        let taps = validTaps(origin: columnOrigin, kernel: w.kernelWidth, extent: w.inputWidth)
        oy = g.rows.first
        while oy < g.rowsTiledEnd {
            let out = output + (oy &* w.outputWidth &+ ox) &* cout
            conv2dTileF32(FourPixels.self, input: input + ((oy &* w.strideHeight &- w.padTop) &* inputRowStride
                                          &+ (columnOrigin &+ taps.first) &* cin),
                          inputPixelStep: w.strideHeight &* inputRowStride, inputRowStride: inputRowStride,
                          tapRows: w.kernelHeight, flatCount: (taps.end &- taps.first) &* cin,
                          weights: weights + taps.first &* cin &* weightStride, weightsKyStride: weightsKyStride,
                          weightStride: weightStride, initial: initial,
                          output: whole ? out : staging, outputPixelStep: whole ? w.outputWidth &* cout : 16,
                          lower: lower, upper: upper)
            if !whole { copyLanes(from: staging, to: out, pixelStep: w.outputWidth &* cout, active: active) }
            oy &+= 4
        }
        ox &+= 1
    }
}

#if arch(x86_64) || arch(arm64)
/// The tiles of `conv2dF32` (Cout ≥ 4, not a multiple of 16) from weights packed per
/// block of 16 channels into rows of 16 lanes on the stack, the block's bias after them:
/// whole, aligned vector loads for every Cout, and one 16-lane block below 16 channels
/// (zero weights past Cout, lanes not stored). Each lane's arithmetic is the unpacked
/// tiles' (the bias, then one fused multiply-add per tap in the same order), so the
/// outputs are the same bits. Returns false, having written nothing, when a block's
/// pack does not fit the largest scratch.
private func conv2dPackedTilesF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                                  bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                                  window w: Window2D, geometry: TileGeometry, clamp: ClampF32) -> Bool {
    let taps = w.kernelHeight &* w.kernelWidth &* w.inputChannels
    let rows = taps &+ 5                // the taps, the bias, then 4 rows of staging
    // (Closure literals, not a `let` closure: a debug build allocated the latter's context.)
    if rows <= 128 {
        withScratchF32(InlineArray<128, SIMD16<Float>>.self) {
            packedBlocksF32(input: input, weights: weights, bias: bias, output: output, window: w,
                            geometry: geometry, clamp: clamp, scratch: $0)
        }
    } else if rows <= 384 {
        withScratchF32(InlineArray<384, SIMD16<Float>>.self) {
            packedBlocksF32(input: input, weights: weights, bias: bias, output: output, window: w,
                            geometry: geometry, clamp: clamp, scratch: $0)
        }
    } else if rows <= 768 {
        withScratchF32(InlineArray<768, SIMD16<Float>>.self) {
            packedBlocksF32(input: input, weights: weights, bias: bias, output: output, window: w,
                            geometry: geometry, clamp: clamp, scratch: $0)
        }
    } else {
        return false
    }
    return true
}

/// The blocks of `conv2dPackedTilesF32`, each packed into `scratch` (its taps' rows of 16
/// lanes, the bias, 4 rows of staging) and tiled.
private func packedBlocksF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                             bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                             window w: Window2D, geometry: TileGeometry, clamp: ClampF32,
                             scratch: UnsafeMutablePointer<SIMD16<Float>>) {
    let cout = w.outputChannels
    let taps = w.kernelHeight &* w.kernelWidth &* w.inputChannels
    let packed = UnsafeMutableRawPointer(scratch).assumingMemoryBound(to: Float.self)
    var block = 0
    while let c = cout < 16 ? (block == 0 ? 0 : nil) : channelBlock(block, width: 16, count: cout) {
        let active = cout < 16 ? cout : 16
        var t = 0
        while t < taps {
            packLanes(weights + (t &* cout &+ c), active: active, into: packed + t &* 16)
            t &+= 1
        }
        if let bias {
            packLanes(bias + c, active: active, into: packed + taps &* 16)
        } else {
            storeLanes(SIMD16<Float>(), packed + taps &* 16)
        }
        let initial: SIMD16<Float> = loadLanes(packed + taps &* 16)
        conv2dBlockF32(SIMD16<Float>.self, input: input, weights: packed, weightStride: 16, initial: initial,
                       active: active, staging: packed + (taps &+ 1) &* 16, output: output + c, window: w,
                       geometry: geometry, clamp: clamp)
        block &+= 1
    }
}

/// `source[0 ..< active]` (`active` ≤ 16) into the 16 lanes at `destination`, zero past `active`.
@inline(__always)
private func packLanes(_ source: UnsafePointer<Float>, active: Int, into destination: UnsafeMutablePointer<Float>) {
    if active == 16 {
        storeLanes(loadLanes(source) as SIMD16<Float>, destination)
    } else {
        var l = 0
        while l < 16 { destination[l] = l < active ? source[l] : 0; l &+= 1 }
    }
}

/// Runs `body` on a stack scratch of `count` 64-byte vectors.
@inline(__always)
private func withScratchF32<let count: Int>(_: InlineArray<count, SIMD16<Float>>.Type,
                                            _ body: (UnsafeMutablePointer<SIMD16<Float>>) -> Void) {
    var scratch = InlineArray<count, SIMD16<Float>>(repeating: SIMD16())
    withUnsafeMutablePointer(to: &scratch) { pointer in
        body(UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: SIMD16<Float>.self))
    }
}
#else
/// No packed tiles on 32-bit targets (their stacks are small): the tiles read the weights as they are.
@inline(__always)
private func conv2dPackedTilesF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                                  bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                                  window w: Window2D, geometry: TileGeometry, clamp: ClampF32) -> Bool {
    false
}
#endif

/// 4 (or, with `EightPixels`, 8) output pixels × `V.scalarCount` channels of `conv2dF32` whose
/// windows have the same valid taps: `tapRows` kernel rows of `flatCount` (kx, ci) taps
/// each, a tap's weights `weightStride` values after the one before. Pixel p reads
/// `input + p·inputPixelStep` (at its first valid tap) and writes
/// `output + p·outputPixelStep`. Each weight vector is loaded once for all the tile's
/// pixels; every pixel's multiply-adds are in the same order either way, so the same bits.
@inline(__always)
private func conv2dTileF32<V: SIMD, P: TilePixels>(_: P.Type, input: UnsafePointer<Float>, inputPixelStep: Int,
                                                   inputRowStride: Int, tapRows: Int, flatCount: Int,
                                                   weights: UnsafePointer<Float>, weightsKyStride: Int,
                                                   weightStride: Int, initial: V,
                                                   output: UnsafeMutablePointer<Float>, outputPixelStep: Int,
                                                   lower: V, upper: V) where V.Scalar == Float {
    let eight = P.eight
    var a0 = initial, a1 = initial, a2 = initial, a3 = initial
    var a4 = initial, a5 = initial, a6 = initial, a7 = initial
    var r = 0
    while r < tapRows {
        let p0 = input + r &* inputRowStride
        let p1 = p0 + inputPixelStep, p2 = p1 + inputPixelStep, p3 = p2 + inputPixelStep
        let p4 = p3 + inputPixelStep, p5 = p4 + inputPixelStep, p6 = p5 + inputPixelStep
        let p7 = p6 + inputPixelStep
        var wp = weights + r &* weightsKyStride
        var j = 0
        while j < flatCount {
            let wv: V = loadLanes(wp)
            a0 = a0.addingProduct(p0[j], wv)
            a1 = a1.addingProduct(p1[j], wv)
            a2 = a2.addingProduct(p2[j], wv)
            a3 = a3.addingProduct(p3[j], wv)
            if eight {
                a4 = a4.addingProduct(p4[j], wv)
                a5 = a5.addingProduct(p5[j], wv)
                a6 = a6.addingProduct(p6[j], wv)
                a7 = a7.addingProduct(p7[j], wv)
            }
            wp += weightStride
            j &+= 1
        }
        r &+= 1
    }
    storeLanes(clampLanes(a0, lower, upper), output)
    storeLanes(clampLanes(a1, lower, upper), output + outputPixelStep)
    storeLanes(clampLanes(a2, lower, upper), output + 2 &* outputPixelStep)
    storeLanes(clampLanes(a3, lower, upper), output + 3 &* outputPixelStep)
    if eight {
        storeLanes(clampLanes(a4, lower, upper), output + 4 &* outputPixelStep)
        storeLanes(clampLanes(a5, lower, upper), output + 5 &* outputPixelStep)
        storeLanes(clampLanes(a6, lower, upper), output + 6 &* outputPixelStep)
        storeLanes(clampLanes(a7, lower, upper), output + 7 &* outputPixelStep)
    }
}

/// The pixels of a Float32 conv tile, as a type: each gets its own copy of the tile.
private protocol TilePixels { static var eight: Bool { get } }
private enum FourPixels: TilePixels { static var eight: Bool { false } }
/// 8 pixels: with AVX-512 only, whose 32 registers hold 8 accumulators (AVX2's 16 and NEON's
/// 32 of 128 bits would spill them).
private enum EightPixels: TilePixels { static var eight: Bool { true } }

/// Copies lanes `0 ..< active` (4 ≤ `active` < 16) of the 4 pixels of 16 lanes at
/// `staging` to `output + p·pixelStep`: two overlapping moves of 8 (or 4) lanes each.
@inline(__always)
private func copyLanes(from staging: UnsafeMutablePointer<Float>, to output: UnsafeMutablePointer<Float>,
                       pixelStep: Int, active: Int) {
    var p = 0
    while p < 4 {
        let source = UnsafePointer(staging + p &* 16), destination = output + p &* pixelStep
        if active >= 8 {
            storeLanes(loadLanes(source) as SIMD8<Float>, destination)
            storeLanes(loadLanes(source + (active &- 8)) as SIMD8<Float>, destination + (active &- 8))
        } else {
            storeLanes(loadLanes(source) as SIMD4<Float>, destination)
            storeLanes(loadLanes(source + (active &- 4)) as SIMD4<Float>, destination + (active &- 4))
        }
        p &+= 1
    }
}

/// One output pixel of `conv2dF32`, channels `firstChannel ..< outputChannels`, with clipping.
private func conv2dPixelF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                            output: UnsafeMutablePointer<Float>, window w: Window2D,
                            oy: Int, ox: Int, firstChannel: Int, clamp: ClampF32) {
    let cin = w.inputChannels
    let cout = w.outputChannels
    let rowOrigin = oy &* w.strideHeight &- w.padTop
    let columnOrigin = ox &* w.strideWidth &- w.padLeft
    let rows = validTaps(origin: rowOrigin, kernel: w.kernelHeight, extent: w.inputHeight)
    let cols = validTaps(origin: columnOrigin, kernel: w.kernelWidth, extent: w.inputWidth)
    let flatCount = (cols.end &- cols.first) &* cin
    let inputRowStride = w.inputWidth &* cin
    let weightsKyStride = w.kernelWidth &* cin &* cout
    // Input and weights at (ky = 0, kx = cols.first); add ky strides per row.
    let inputStart = (columnOrigin &+ cols.first) &* cin
    let weightsStart = cols.first &* cin &* cout
    let out = output + (oy &* w.outputWidth &+ ox) &* cout

    var c = firstChannel
    // 64 channels: 8 independent FMA chains.
    while c &+ 64 <= cout {
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        if let bias {
            a0 = loadLanes(bias + c); a1 = loadLanes(bias + (c &+ 16))
            a2 = loadLanes(bias + (c &+ 32)); a3 = loadLanes(bias + (c &+ 48))
        }
        var ky = rows.first
        while ky < rows.end {
            let p = input + ((rowOrigin &+ ky) &* inputRowStride &+ inputStart)
            var wp = weights + (ky &* weightsKyStride &+ weightsStart &+ c)
            var j = 0
            while j < flatCount {
                let x = p[j]
                a0 = a0.addingProduct(x, loadLanes(wp) as SIMD16<Float>)
                a1 = a1.addingProduct(x, loadLanes(wp + 16) as SIMD16<Float>)
                a2 = a2.addingProduct(x, loadLanes(wp + 32) as SIMD16<Float>)
                a3 = a3.addingProduct(x, loadLanes(wp + 48) as SIMD16<Float>)
                wp += cout
                j &+= 1
            }
            ky &+= 1
        }
        storeClamped(a0, out + c, clamp)
        storeClamped(a1, out + (c &+ 16), clamp)
        storeClamped(a2, out + (c &+ 32), clamp)
        storeClamped(a3, out + (c &+ 48), clamp)
        c &+= 64
    }
    // Then blocks of 16, the last one moved back to end at Cout, so Cout ≥ 16 has no
    // scalar tail (the channels it computes again are stored again, with this block's
    // rounding).
    while c < cout && cout >= 16 {
        c = c &+ 16 <= cout ? c : cout &- 16
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>()      // even and odd j: two chains
        if let bias { a0 = loadLanes(bias + c) }
        var ky = rows.first
        while ky < rows.end {
            let p = input + ((rowOrigin &+ ky) &* inputRowStride &+ inputStart)
            let wp = weights + (ky &* weightsKyStride &+ weightsStart &+ c)
            var j = 0
            while j &+ 1 < flatCount {
                a0 = a0.addingProduct(p[j], loadLanes(wp + j &* cout) as SIMD16<Float>)
                a1 = a1.addingProduct(p[j &+ 1], loadLanes(wp + (j &+ 1) &* cout) as SIMD16<Float>)
                j &+= 2
            }
            if j < flatCount { a0 = a0.addingProduct(p[j], loadLanes(wp + j &* cout) as SIMD16<Float>) }
            ky &+= 1
        }
        storeClamped(a0 + a1, out + c, clamp)
        c &+= 16
    }
    // 8 ≤ Cout < 16: blocks of 8 the same way.
    while c < cout && cout >= 8 {
        c = c &+ 8 <= cout ? c : cout &- 8
        var a0 = SIMD8<Float>()
        if let bias { a0 = loadLanes(bias + c) }
        var ky = rows.first
        while ky < rows.end {
            let p = input + ((rowOrigin &+ ky) &* inputRowStride &+ inputStart)
            var wp = weights + (ky &* weightsKyStride &+ weightsStart &+ c)
            var j = 0
            while j < flatCount {
                a0 = a0.addingProduct(p[j], loadLanes(wp) as SIMD8<Float>)
                wp += cout
                j &+= 1
            }
            ky &+= 1
        }
        storeClamped(a0, out + c, clamp)
        c &+= 8
    }
    while c < cout {
        var a: Float = 0
        if let bias { a = bias[c] }
        var ky = rows.first
        while ky < rows.end {
            let p = input + ((rowOrigin &+ ky) &* inputRowStride &+ inputStart)
            var wp = weights + (ky &* weightsKyStride &+ weightsStart &+ c)
            var j = 0
            while j < flatCount {
                a += p[j] * wp.pointee
                wp += cout
                j &+= 1
            }
            ky &+= 1
        }
        out[c] = clampScalarF32(a, clamp)
        c &+= 1
    }
}

// MARK: - int8

/// int8 2-D convolution (TFLite scheme): symmetric per-output-channel weights,
/// asymmetric input, int32 bias, per-channel requantization and fused clamp.
///
/// ```
/// acc[co] = bias[co] + Σ_{valid taps} (in − inputZeroPoint) · w[ky][kx][ci][co]     (Int32, wrapping)
/// out[co] = clamp(multiplyByQuantizedMultiplier(acc, requant.multipliers[co], requant.shifts[co])
///                 + requant.outputZeroPoint, requant.clampMin, requant.clampMax)
/// ```
/// Padding taps are skipped (they do not contribute `0 − inputZeroPoint`).
/// The Int32 accumulation wraps on overflow, so the result is exact whenever
/// the true sum fits in Int32 (each product is at most 255·128 in magnitude:
/// KH·KW·Cin ≤ 2^16 with a bias within ±2^30 is always exact).
///
/// The tile path takes the zero point out of its inner loop
/// (`Σ (x − zp)·w = Σ x·w − zp·Σ w`, exact in wrapping Int32), so the result is
/// the same for every Int32 zero point.
/// - Parameters:
///   - input: `[inputHeight][inputWidth][inputChannels]`.
///   - inputZeroPoint: −128...127.
///   - weights: `[kernelHeight][kernelWidth][inputChannels][outputChannels]`, zero point 0.
///   - bias: `[outputChannels]` in scale s_in·s_w, or nil for zero.
///   - output: `[outputHeight][outputWidth][outputChannels]`; must not alias `input`.
///   - window: geometry, validated by the interpreter.
///   - requant: `[outputChannels]` multipliers and shifts (shift −31...30), output zero point, clamp.
/// - Complexity: O(OH·OW·KH·KW·Cin·Cout); no allocation.
public func conv2dQ8(input: UnsafePointer<Int8>, inputZeroPoint: Int32, weights: UnsafePointer<Int8>,
                     bias: UnsafePointer<Int32>?, output: UnsafeMutablePointer<Int8>,
                     window: Window2D, requant: RequantQ8) {
    #if (arch(x86_64) && SPRIG_ISA_VNNI) || (arch(arm64) && SPRIG_ISA_DOTPROD)
    // With 8-bit dot products, from weights packed once per call (Conv2DPackedQ8.swift)
    // when they fit.
    if conv2dPackedQ8(input: input, inputZeroPoint: inputZeroPoint, weights: weights, bias: bias, output: output,
                      window: window, requant: requant) { return }
    #endif
    let w = window
    let cout = w.outputChannels
    // Horizontal tiles: 4 consecutive interior columns of one row.
    let columns = interiorOutputs(stride: w.strideWidth, pad: w.padLeft, kernel: w.kernelWidth,
                                  extent: w.inputWidth, outputCount: w.outputWidth)
    let tiledEnd = columns.first &+ (columns.end &- columns.first) / 4 &* 4
    // Vertical tiles: 4 consecutive interior rows of one of the other columns.
    let rows = interiorOutputs(stride: w.strideHeight, pad: w.padTop, kernel: w.kernelHeight,
                               extent: w.inputHeight, outputCount: w.outputHeight)
    let rowsTiledEnd = rows.first &+ (rows.end &- rows.first) / 4 &* 4
    // Channel blocks of 16, 8 (8 ≤ cout < 16) or 4 (4 ≤ cout < 8), the last one
    // moved back to end at cout; with cout < 4 the pixel path does every channel.
    let blockWidth = tiledKernelsBuilt ? tileBlockWidth(outputChannels: cout) : 0
    let tiledChannels = blockWidth > 0 ? cout : 0
    let geometry = TileGeometry(columns: columns, columnsTiledEnd: tiledEnd, rows: rows, rowsTiledEnd: rowsTiledEnd)
    let stage = OutputStageQ8(zeroPoint: requant.outputZeroPoint, clampMin: requant.clampMin,
                              clampMax: requant.clampMax)

    // 1. Tiles of 4 pixels with the same clipping × one channel block.
    var block = 0
    while blockWidth > 0, let c = channelBlock(block, width: blockWidth, count: cout) {
        conv2dBlockQ8(input: input, inputZeroPoint: inputZeroPoint, weights: weights, bias: bias, output: output,
                      window: w, geometry: geometry, channel: c, requant: requant, stage: stage, lanes: blockWidth)
        block &+= 1
    }

    // 2. Pixel path: everything the tiles did not cover.
    var oy = 0
    while oy < w.outputHeight {
        let rowTiled = oy >= rows.first && oy < rowsTiledEnd
        var ox = 0
        while ox < w.outputWidth {
            let tiled = rowTiled || (ox >= columns.first && ox < tiledEnd)
            let firstChannel = tiled ? tiledChannels : 0
            if firstChannel < cout {
                conv2dPixelQ8(input: input, inputZeroPoint: inputZeroPoint, weights: weights, bias: bias,
                              output: output, window: w, oy: oy, ox: ox, firstChannel: firstChannel,
                              requant: requant, stage: stage)
            }
            ox &+= 1
        }
        oy &+= 1
    }
}

/// Every tile of `conv2dQ8` for the channels `channel ..< channel + lanes`
/// (`lanes` 16, 8 or 4).
///
/// The tiles take the zero point out of their inner loop:
/// Σ (x − zp)·w = Σ x·w − zp·Σ w, with Σ w over the tile's valid taps
/// (the same for its 4 pixels). Exact in wrapping Int32 arithmetic.
@inline(__always)
private func conv2dBlockQ8(input: UnsafePointer<Int8>, inputZeroPoint: Int32, weights: UnsafePointer<Int8>,
                           bias: UnsafePointer<Int32>?, output: UnsafeMutablePointer<Int8>,
                           window w: Window2D, geometry g: TileGeometry, channel c: Int,
                           requant: RequantQ8, stage: OutputStageQ8, lanes: Int) {
    let cin = w.inputChannels
    let cout = w.outputChannels
    let inputRowStride = w.inputWidth &* cin
    let flatCount = w.kernelWidth &* cin
    let weightsKyStride = flatCount &* cout
    // The zero point, plus 128 with quads of taps (the unsigned operand, KernelDotQ8.swift).
    let zeroPoint = SIMD16<Int32>(repeating: tileInputOffset(zeroPoint: inputZeroPoint))
    var biasVector = SIMD16<Int32>()
    if let bias {
        if lanes == 4 {
            biasVector.lowHalf.lowHalf = loadLanes(bias + c)
        } else {
            biasVector.lowHalf = loadLanes(bias + c)
            if lanes == 16 { biasVector.highHalf = loadLanes(bias + (c &+ 8)) }
        }
    }
    let low = lanes == 4 ? Requant8(fourChannelsOf: requant, channel: c)
        : Requant8(multipliers: requant.multipliers, shifts: requant.shifts, channel: c)
    let high = lanes == 16 ? Requant8(multipliers: requant.multipliers, shifts: requant.shifts, channel: c &+ 8) : low
    // 1a. Horizontal tiles, every row (rows clipped as needed).
    if g.columns.first < g.columnsTiledEnd {
        let fullSum = conv2dWeightSumQ8(weights + c, tapRows: (0, w.kernelHeight), flatCount: flatCount,
                                        kyStride: weightsKyStride, step: cout, lanes: lanes)
        var oy = 0
        while oy < w.outputHeight {
            let rowOrigin = oy &* w.strideHeight &- w.padTop
            let taps = validTaps(origin: rowOrigin, kernel: w.kernelHeight, extent: w.inputHeight)
            let full = taps.first == 0 && taps.end == w.kernelHeight
            let weightSum = full ? fullSum
                : conv2dWeightSumQ8(weights + c, tapRows: taps, flatCount: flatCount, kyStride: weightsKyStride,
                                    step: cout, lanes: lanes)
            let initial = biasVector &- zeroPoint &* weightSum
            var ox = g.columns.first
            while ox < g.columnsTiledEnd {
                conv2dTileQ8(input: input + ((rowOrigin &+ taps.first) &* inputRowStride
                                             &+ (ox &* w.strideWidth &- w.padLeft) &* cin),
                             inputPixelStep: w.strideWidth &* cin, inputRowStride: inputRowStride,
                             tapRows: taps.end &- taps.first, flatCount: flatCount,
                             weights: weights + (taps.first &* weightsKyStride &+ c), weightsKyStride: weightsKyStride,
                             outputChannels: cout, initial: initial,
                             output: output + ((oy &* w.outputWidth &+ ox) &* cout &+ c), outputPixelStep: cout,
                             low: low, high: high, stage: stage, lanes: lanes)
                ox &+= 4
            }
            oy &+= 1
        }
    }
    // 1b. Vertical tiles down every other column (columns clipped as needed).
    if g.rows.first < g.rowsTiledEnd {
        var ox = 0
        while ox < w.outputWidth {
            if ox >= g.columns.first && ox < g.columnsTiledEnd { ox = g.columnsTiledEnd; continue }
            let columnOrigin = ox &* w.strideWidth &- w.padLeft
            let taps = validTaps(origin: columnOrigin, kernel: w.kernelWidth, extent: w.inputWidth)
            let columnFlatCount = (taps.end &- taps.first) &* cin
            let columnWeights = weights + (taps.first &* cin &* cout &+ c)
            let weightSum = conv2dWeightSumQ8(columnWeights, tapRows: (0, w.kernelHeight), flatCount: columnFlatCount,
                                              kyStride: weightsKyStride, step: cout, lanes: lanes)
            let initial = biasVector &- zeroPoint &* weightSum
            var oy = g.rows.first
            while oy < g.rowsTiledEnd {
                conv2dTileQ8(input: input + ((oy &* w.strideHeight &- w.padTop) &* inputRowStride
                                             &+ (columnOrigin &+ taps.first) &* cin),
                             inputPixelStep: w.strideHeight &* inputRowStride, inputRowStride: inputRowStride,
                             tapRows: w.kernelHeight, flatCount: columnFlatCount,
                             weights: columnWeights, weightsKyStride: weightsKyStride,
                             outputChannels: cout, initial: initial,
                             output: output + ((oy &* w.outputWidth &+ ox) &* cout &+ c),
                             outputPixelStep: w.outputWidth &* cout,
                             low: low, high: high, stage: stage, lanes: lanes)
                oy &+= 4
            }
            ox &+= 1
        }
    }
}

/// `conv2dTile16Q8`, `conv2dTile8Q8` or `conv2dTile4Q8` for `lanes` 16, 8 or 4
/// (three functions, so that no inner loop has a branch on the width).
@inline(__always)
private func conv2dTileQ8(input: UnsafePointer<Int8>, inputPixelStep: Int, inputRowStride: Int,
                          tapRows: Int, flatCount: Int,
                          weights: UnsafePointer<Int8>, weightsKyStride: Int, outputChannels: Int,
                          initial: SIMD16<Int32>,
                          output: UnsafeMutablePointer<Int8>, outputPixelStep: Int,
                          low: Requant8, high: Requant8, stage: OutputStageQ8, lanes: Int) {
    switch lanes {
    case 16:
        conv2dTile16Q8(input: input, inputPixelStep: inputPixelStep, inputRowStride: inputRowStride,
                       tapRows: tapRows, flatCount: flatCount, weights: weights, weightsKyStride: weightsKyStride,
                       outputChannels: outputChannels, initial: initial, output: output,
                       outputPixelStep: outputPixelStep, low: low, high: high, stage: stage)
    case 8:
        conv2dTile8Q8(input: input, inputPixelStep: inputPixelStep, inputRowStride: inputRowStride,
                      tapRows: tapRows, flatCount: flatCount, weights: weights, weightsKyStride: weightsKyStride,
                      outputChannels: outputChannels, initial: initial, output: output,
                      outputPixelStep: outputPixelStep, low: low, stage: stage)
    default:
        conv2dTile4Q8(input: input, inputPixelStep: inputPixelStep, inputRowStride: inputRowStride,
                      tapRows: tapRows, flatCount: flatCount, weights: weights, weightsKyStride: weightsKyStride,
                      outputChannels: outputChannels, initial: initial, output: output,
                      outputPixelStep: outputPixelStep, low: low, stage: stage)
    }
}

/// 4 output pixels × 16 channels of `conv2dQ8` whose windows have the same
/// valid taps: `tapRows` kernel rows of `flatCount` (kx, ci) taps each.
/// Pixel p reads `input + p·inputPixelStep` (at its first valid tap) and
/// writes `output + p·outputPixelStep`; `initial` = bias − zp·Σ w.
///
/// With VNNI taps go four at a time through `dotBytes` (vpdpbusd, see
/// KernelDotQ8.swift; `initial` then holds bias − (zp + 128)·Σ w and every input
/// byte goes in as x + 128, `tapInputOffset`). On x86-64 the taps left (all of them
/// without VNNI) go two at a time through `multiplyAddPairs` (vpmaddwd, see
/// `pairedTaps` in KernelSupport.swift); an odd last tap of a kernel row, and
/// every tap elsewhere, takes Int32 products.
private func conv2dTile16Q8(input: UnsafePointer<Int8>, inputPixelStep: Int, inputRowStride: Int,
                            tapRows: Int, flatCount: Int,
                            weights: UnsafePointer<Int8>, weightsKyStride: Int, outputChannels cout: Int,
                            initial: SIMD16<Int32>,
                            output: UnsafeMutablePointer<Int8>, outputPixelStep: Int,
                            low: Requant8, high: Requant8, stage: OutputStageQ8) {
    // Eight ymm accumulators: pixels 0...3 × channels 0 ..< 8 (l) and 8 ..< 16 (h).
    var a0l = initial.lowHalf, a1l = a0l, a2l = a0l, a3l = a0l
    var a0h = initial.highHalf, a1h = a0h, a2h = a0h, a3h = a0h
    let barrier = PairBarrier(count: cout)
    var r = 0
    while r < tapRows {
        let p0 = input + r &* inputRowStride
        let p1 = p0 + inputPixelStep, p2 = p1 + inputPixelStep, p3 = p2 + inputPixelStep
        var wp = weights + r &* weightsKyStride
        var j = 0
        #if arch(x86_64) && SPRIG_ISA_VNNI
        // Taps j ..< j + 4 in one vpdpbusd per 8 channels (KernelDotQ8.swift).
        while j &+ 4 <= flatCount {
            let (wl, wh) = quadRows16(wp, step: cout)
            let x0 = inputQuad8(p0 + j), x1 = inputQuad8(p1 + j), x2 = inputQuad8(p2 + j), x3 = inputQuad8(p3 + j)
            a0l = dotBytes(a0l, unsigned: x0, signed: wl); a0h = dotBytes(a0h, unsigned: x0, signed: wh)
            a1l = dotBytes(a1l, unsigned: x1, signed: wl); a1h = dotBytes(a1h, unsigned: x1, signed: wh)
            a2l = dotBytes(a2l, unsigned: x2, signed: wl); a2h = dotBytes(a2h, unsigned: x2, signed: wh)
            a3l = dotBytes(a3l, unsigned: x3, signed: wl); a3h = dotBytes(a3h, unsigned: x3, signed: wh)
            wp += 4 &* cout
            j &+= 4
        }
        #endif
        // Taps j and j + 1 (x86-64, see pairedTaps).
        while pairedTaps && j &+ 1 < flatCount {
            let x0 = barrier.hideInput(broadcastPair(p0 + j)), x1 = barrier.hideInput(broadcastPair(p1 + j))
            let x2 = barrier.hideInput(broadcastPair(p2 + j)), x3 = barrier.hideInput(broadcastPair(p3 + j))
            let row0: SIMD16<Int8> = loadLanes(wp), row1: SIMD16<Int8> = loadLanes(wp + cout)
            let wl = barrier.hide(interleaveWidened(row0.lowHalf, row1.lowHalf))
            let wh = barrier.hide(interleaveWidened(row0.highHalf, row1.highHalf))
            a0l &+= barrier.hide(multiplyAddPairs(wl, x0)); a0h &+= barrier.hide(multiplyAddPairs(wh, x0))
            a1l &+= barrier.hide(multiplyAddPairs(wl, x1)); a1h &+= barrier.hide(multiplyAddPairs(wh, x1))
            a2l &+= barrier.hide(multiplyAddPairs(wl, x2)); a2h &+= barrier.hide(multiplyAddPairs(wh, x2))
            a3l &+= barrier.hide(multiplyAddPairs(wl, x3)); a3h &+= barrier.hide(multiplyAddPairs(wh, x3))
            wp += 2 &* cout
            j &+= 2
        }
        // One tap at a time: an odd last tap, or every tap without pairs.
        while j < flatCount {
            let x0 = SIMD8<Int32>(repeating: Int32(p0[j]) &+ tapInputOffset)
            let x1 = SIMD8<Int32>(repeating: Int32(p1[j]) &+ tapInputOffset)
            let x2 = SIMD8<Int32>(repeating: Int32(p2[j]) &+ tapInputOffset)
            let x3 = SIMD8<Int32>(repeating: Int32(p3[j]) &+ tapInputOffset)
            let wl = loadWidened8(wp), wh = loadWidened8(wp + 8)
            a0l &+= wl &* x0; a0h &+= wh &* x0
            a1l &+= wl &* x1; a1h &+= wh &* x1
            a2l &+= wl &* x2; a2h &+= wh &* x2
            a3l &+= wl &* x3; a3h &+= wh &* x3
            wp += cout
            j &+= 1
        }
        r &+= 1
    }
    let o1 = output + outputPixelStep, o2 = o1 + outputPixelStep, o3 = o2 + outputPixelStep
    storeLanes(stage(low.apply(a0l)), output)
    storeLanes(stage(high.apply(a0h)), output + 8)
    storeLanes(stage(low.apply(a1l)), o1)
    storeLanes(stage(high.apply(a1h)), o1 + 8)
    storeLanes(stage(low.apply(a2l)), o2)
    storeLanes(stage(high.apply(a2h)), o2 + 8)
    storeLanes(stage(low.apply(a3l)), o3)
    storeLanes(stage(high.apply(a3h)), o3 + 8)
}

/// `conv2dTile16Q8` for 8 channels (lanes 0 ..< 8 of `initial`).
private func conv2dTile8Q8(input: UnsafePointer<Int8>, inputPixelStep: Int, inputRowStride: Int,
                           tapRows: Int, flatCount: Int,
                           weights: UnsafePointer<Int8>, weightsKyStride: Int, outputChannels cout: Int,
                           initial: SIMD16<Int32>,
                           output: UnsafeMutablePointer<Int8>, outputPixelStep: Int,
                           low: Requant8, stage: OutputStageQ8) {
    var a0 = initial.lowHalf, a1 = a0, a2 = a0, a3 = a0
    let barrier = PairBarrier(count: cout)
    var r = 0
    while r < tapRows {
        let p0 = input + r &* inputRowStride
        let p1 = p0 + inputPixelStep, p2 = p1 + inputPixelStep, p3 = p2 + inputPixelStep
        var wp = weights + r &* weightsKyStride
        var j = 0
        #if arch(x86_64) && SPRIG_ISA_VNNI
        while j &+ 4 <= flatCount {
            let w = quadRows8(wp, step: cout)
            a0 = dotBytes(a0, unsigned: inputQuad8(p0 + j), signed: w)
            a1 = dotBytes(a1, unsigned: inputQuad8(p1 + j), signed: w)
            a2 = dotBytes(a2, unsigned: inputQuad8(p2 + j), signed: w)
            a3 = dotBytes(a3, unsigned: inputQuad8(p3 + j), signed: w)
            wp += 4 &* cout
            j &+= 4
        }
        #endif
        while pairedTaps && j &+ 1 < flatCount {
            let row0: SIMD8<Int8> = loadLanes(wp), row1: SIMD8<Int8> = loadLanes(wp + cout)
            let w = barrier.hide(interleaveWidened(row0, row1))
            a0 &+= barrier.hide(multiplyAddPairs(w, barrier.hideInput(broadcastPair(p0 + j))))
            a1 &+= barrier.hide(multiplyAddPairs(w, barrier.hideInput(broadcastPair(p1 + j))))
            a2 &+= barrier.hide(multiplyAddPairs(w, barrier.hideInput(broadcastPair(p2 + j))))
            a3 &+= barrier.hide(multiplyAddPairs(w, barrier.hideInput(broadcastPair(p3 + j))))
            wp += 2 &* cout
            j &+= 2
        }
        while j < flatCount {
            let w = loadWidened8(wp)
            a0 &+= w &* SIMD8<Int32>(repeating: Int32(p0[j]) &+ tapInputOffset)
            a1 &+= w &* SIMD8<Int32>(repeating: Int32(p1[j]) &+ tapInputOffset)
            a2 &+= w &* SIMD8<Int32>(repeating: Int32(p2[j]) &+ tapInputOffset)
            a3 &+= w &* SIMD8<Int32>(repeating: Int32(p3[j]) &+ tapInputOffset)
            wp += cout
            j &+= 1
        }
        r &+= 1
    }
    storeLanes(stage(low.apply(a0)), output)
    storeLanes(stage(low.apply(a1)), output + outputPixelStep)
    storeLanes(stage(low.apply(a2)), output + 2 &* outputPixelStep)
    storeLanes(stage(low.apply(a3)), output + 3 &* outputPixelStep)
}

/// `conv2dTile16Q8` for 4 channels (lanes 0 ..< 4 of `initial`; `low` holds
/// the 4 channels' requantization twice, see `Requant8(fourChannelsOf:channel:)`).
private func conv2dTile4Q8(input: UnsafePointer<Int8>, inputPixelStep: Int, inputRowStride: Int,
                           tapRows: Int, flatCount: Int,
                           weights: UnsafePointer<Int8>, weightsKyStride: Int, outputChannels cout: Int,
                           initial: SIMD16<Int32>,
                           output: UnsafeMutablePointer<Int8>, outputPixelStep: Int,
                           low: Requant8, stage: OutputStageQ8) {
    var a0 = initial.lowHalf.lowHalf, a1 = a0, a2 = a0, a3 = a0
    let barrier = PairBarrier(count: cout)
    var r = 0
    while r < tapRows {
        let p0 = input + r &* inputRowStride
        let p1 = p0 + inputPixelStep, p2 = p1 + inputPixelStep, p3 = p2 + inputPixelStep
        var wp = weights + r &* weightsKyStride
        var j = 0
        #if arch(x86_64) && SPRIG_ISA_VNNI
        while j &+ 4 <= flatCount {
            let w = quadRows4(wp, step: cout)
            a0 = dotBytes(a0, unsigned: inputQuad4(p0 + j), signed: w)
            a1 = dotBytes(a1, unsigned: inputQuad4(p1 + j), signed: w)
            a2 = dotBytes(a2, unsigned: inputQuad4(p2 + j), signed: w)
            a3 = dotBytes(a3, unsigned: inputQuad4(p3 + j), signed: w)
            wp += 4 &* cout
            j &+= 4
        }
        #endif
        while pairedTaps && j &+ 1 < flatCount {
            let row0: SIMD4<Int8> = loadLanes(wp), row1: SIMD4<Int8> = loadLanes(wp + cout)
            let w = barrier.hide(interleaveWidened(row0, row1))
            a0 &+= barrier.hide(multiplyAddPairs(w, barrier.hideInput(broadcastPair4(p0 + j))))
            a1 &+= barrier.hide(multiplyAddPairs(w, barrier.hideInput(broadcastPair4(p1 + j))))
            a2 &+= barrier.hide(multiplyAddPairs(w, barrier.hideInput(broadcastPair4(p2 + j))))
            a3 &+= barrier.hide(multiplyAddPairs(w, barrier.hideInput(broadcastPair4(p3 + j))))
            wp += 2 &* cout
            j &+= 2
        }
        while j < flatCount {
            let w = loadWidened4(wp)
            a0 &+= w &* SIMD4<Int32>(repeating: Int32(p0[j]) &+ tapInputOffset)
            a1 &+= w &* SIMD4<Int32>(repeating: Int32(p1[j]) &+ tapInputOffset)
            a2 &+= w &* SIMD4<Int32>(repeating: Int32(p2[j]) &+ tapInputOffset)
            a3 &+= w &* SIMD4<Int32>(repeating: Int32(p3[j]) &+ tapInputOffset)
            wp += cout
            j &+= 1
        }
        r &+= 1
    }
    storeLanes(stage(low.apply(SIMD8(lowHalf: a0, highHalf: a0))).lowHalf, output)
    storeLanes(stage(low.apply(SIMD8(lowHalf: a1, highHalf: a1))).lowHalf, output + outputPixelStep)
    storeLanes(stage(low.apply(SIMD8(lowHalf: a2, highHalf: a2))).lowHalf, output + 2 &* outputPixelStep)
    storeLanes(stage(low.apply(SIMD8(lowHalf: a3, highHalf: a3))).lowHalf, output + 3 &* outputPixelStep)
}

extension Requant8 {
    /// Channels `channel ..< channel + 4` of `requant`, in lanes 0 ..< 4 and again
    /// in lanes 4 ..< 8 (reads only those 4 channels).
    @inline(__always)
    init(fourChannelsOf requant: RequantQ8, channel c: Int) {
        let m: SIMD4<Int32> = loadLanes(requant.multipliers + c)
        let shift4: SIMD4<Int32> = loadLanes(requant.shifts + c)
        let shift = SIMD8(lowHalf: shift4, highHalf: shift4)
        let zero = SIMD8<Int32>(repeating: 0)
        multiplier = SIMD8(lowHalf: m, highHalf: m)
        leftShift = maxLanes(shift, zero)
        rightShift = maxLanes(zero &- shift, zero)
    }
}

/// One output pixel of `conv2dQ8`, channels `firstChannel ..< outputChannels`, with clipping.
private func conv2dPixelQ8(input: UnsafePointer<Int8>, inputZeroPoint zeroPoint: Int32, weights: UnsafePointer<Int8>,
                           bias: UnsafePointer<Int32>?, output: UnsafeMutablePointer<Int8>, window w: Window2D,
                           oy: Int, ox: Int, firstChannel: Int, requant: RequantQ8, stage: OutputStageQ8) {
    let cin = w.inputChannels
    let cout = w.outputChannels
    let rowOrigin = oy &* w.strideHeight &- w.padTop
    let columnOrigin = ox &* w.strideWidth &- w.padLeft
    let rows = validTaps(origin: rowOrigin, kernel: w.kernelHeight, extent: w.inputHeight)
    let cols = validTaps(origin: columnOrigin, kernel: w.kernelWidth, extent: w.inputWidth)
    let flatCount = (cols.end &- cols.first) &* cin
    let inputRowStride = w.inputWidth &* cin
    let weightsKyStride = w.kernelWidth &* cin &* cout
    let inputStart = (columnOrigin &+ cols.first) &* cin
    let weightsStart = cols.first &* cin &* cout
    let out = output + (oy &* w.outputWidth &+ ox) &* cout

    var c = firstChannel
    // 32 channels: 4 independent ymm accumulation chains.
    while tiledKernelsBuilt && c &+ 32 <= cout {
        var a0 = SIMD8<Int32>(), a1 = SIMD8<Int32>(), a2 = SIMD8<Int32>(), a3 = SIMD8<Int32>()
        if let bias {
            a0 = loadLanes(bias + c); a1 = loadLanes(bias + (c &+ 8))
            a2 = loadLanes(bias + (c &+ 16)); a3 = loadLanes(bias + (c &+ 24))
        }
        #if arch(x86_64) && SPRIG_ISA_VNNI
        // Quads of taps (KernelDotQ8.swift): Σ (x + 128)·w in a, Σ w in s, and
        // a − (zp + 128)·s after; the last 1–3 taps of a row go one at a time below.
        var s0 = SIMD8<Int32>(), s1 = SIMD8<Int32>(), s2 = SIMD8<Int32>(), s3 = SIMD8<Int32>()
        let ones = SIMD8<Int32>(repeating: 0x0101_0101)
        #endif
        var ky = rows.first
        while ky < rows.end {
            let p = input + ((rowOrigin &+ ky) &* inputRowStride &+ inputStart)
            var wp = weights + (ky &* weightsKyStride &+ weightsStart &+ c)
            var j = 0
            #if arch(x86_64) && SPRIG_ISA_VNNI
            while j &+ 4 <= flatCount {
                let x = inputQuad8(p + j)
                let (w0, w1) = quadRows16(wp, step: cout), (w2, w3) = quadRows16(wp + 16, step: cout)
                a0 = dotBytes(a0, unsigned: x, signed: w0); s0 = dotBytes(s0, unsigned: ones, signed: w0)
                a1 = dotBytes(a1, unsigned: x, signed: w1); s1 = dotBytes(s1, unsigned: ones, signed: w1)
                a2 = dotBytes(a2, unsigned: x, signed: w2); s2 = dotBytes(s2, unsigned: ones, signed: w2)
                a3 = dotBytes(a3, unsigned: x, signed: w3); s3 = dotBytes(s3, unsigned: ones, signed: w3)
                wp += 4 &* cout
                j &+= 4
            }
            #endif
            while j < flatCount {
                let x = SIMD8<Int32>(repeating: Int32(p[j]) &- zeroPoint)
                a0 &+= x &* loadWidened8(wp)
                a1 &+= x &* loadWidened8(wp + 8)
                a2 &+= x &* loadWidened8(wp + 16)
                a3 &+= x &* loadWidened8(wp + 24)
                wp += cout
                j &+= 1
            }
            ky &+= 1
        }
        #if arch(x86_64) && SPRIG_ISA_VNNI
        let offset = SIMD8<Int32>(repeating: zeroPoint &+ 128)
        a0 &-= offset &* s0; a1 &-= offset &* s1; a2 &-= offset &* s2; a3 &-= offset &* s3
        #endif
        storeLanes(stage(Requant8(multipliers: requant.multipliers, shifts: requant.shifts, channel: c).apply(a0)),
                   out + c)
        storeLanes(stage(Requant8(multipliers: requant.multipliers, shifts: requant.shifts, channel: c &+ 8).apply(a1)),
                   out + (c &+ 8))
        storeLanes(stage(Requant8(multipliers: requant.multipliers, shifts: requant.shifts, channel: c &+ 16).apply(a2)),
                   out + (c &+ 16))
        storeLanes(stage(Requant8(multipliers: requant.multipliers, shifts: requant.shifts, channel: c &+ 24).apply(a3)),
                   out + (c &+ 24))
        c &+= 32
    }
    // Blocks of 8, the last one moved back to end at cout: it recomputes channels of
    // the block before, exactly (integers), so it stores the same values there. One
    // channel at a time only below 8 channels.
    while c < cout && cout >= 8 {
        c = min(c, cout &- 8)
        var a0 = SIMD8<Int32>()
        if let bias { a0 = loadLanes(bias + c) }
        #if arch(x86_64) && SPRIG_ISA_VNNI
        var s0 = SIMD8<Int32>()
        let ones = SIMD8<Int32>(repeating: 0x0101_0101)
        #endif
        var ky = rows.first
        while ky < rows.end {
            let p = input + ((rowOrigin &+ ky) &* inputRowStride &+ inputStart)
            var wp = weights + (ky &* weightsKyStride &+ weightsStart &+ c)
            var j = 0
            #if arch(x86_64) && SPRIG_ISA_VNNI
            while j &+ 4 <= flatCount {
                let w = quadRows8(wp, step: cout)
                a0 = dotBytes(a0, unsigned: inputQuad8(p + j), signed: w)
                s0 = dotBytes(s0, unsigned: ones, signed: w)
                wp += 4 &* cout
                j &+= 4
            }
            #endif
            while j < flatCount {
                a0 &+= SIMD8<Int32>(repeating: Int32(p[j]) &- zeroPoint) &* loadWidened8(wp)
                wp += cout
                j &+= 1
            }
            ky &+= 1
        }
        #if arch(x86_64) && SPRIG_ISA_VNNI
        a0 &-= SIMD8<Int32>(repeating: zeroPoint &+ 128) &* s0
        #endif
        let r = Requant8(multipliers: requant.multipliers, shifts: requant.shifts, channel: c)
        storeLanes(stage(r.apply(a0)), out + c)
        c &+= 8
    }
    while c < cout {
        var a: Int32 = 0
        if let bias { a = bias[c] }
        var ky = rows.first
        while ky < rows.end {
            let p = input + ((rowOrigin &+ ky) &* inputRowStride &+ inputStart)
            var wp = weights + (ky &* weightsKyStride &+ weightsStart &+ c)
            var j = 0
            while j < flatCount {
                a &+= (Int32(p[j]) &- zeroPoint) &* Int32(wp.pointee)
                wp += cout
                j &+= 1
            }
            ky &+= 1
        }
        out[c] = stage(multiplyByQuantizedMultiplier(a, requant.multipliers[c], requant.shifts[c]))
        c &+= 1
    }
}

/// Σ over the kernel rows `rows` and the flat taps `0 ..< flatCount` of the
/// weights of `lanes` (16, 8 or 4) consecutive output channels starting at
/// `weights` (Int32, wrapping; the lanes past `lanes` are zero).
@inline(__always)
private func conv2dWeightSumQ8(_ weights: UnsafePointer<Int8>, tapRows rows: (first: Int, end: Int), flatCount: Int,
                               kyStride: Int, step: Int, lanes: Int) -> SIMD16<Int32> {
    var low = SIMD8<Int32>(), high = SIMD8<Int32>(), quad = SIMD4<Int32>()
    var ky = rows.first
    while ky < rows.end {
        var wp = weights + ky &* kyStride
        var j = 0
        // One loop per width, so that none branches on it.
        switch lanes {
        case 16:
            while j < flatCount { low &+= loadWidened8(wp); high &+= loadWidened8(wp + 8); wp += step; j &+= 1 }
        case 8:
            while j < flatCount { low &+= loadWidened8(wp); wp += step; j &+= 1 }
        default:
            while j < flatCount { quad &+= loadWidened4(wp); wp += step; j &+= 1 }
        }
        ky &+= 1
    }
    if lanes == 4 { low.lowHalf = quad }
    return SIMD16(lowHalf: low, highHalf: high)
}

// MARK: - Float32 backward (fine-tuning)

/// Backward of ``conv2dF32(input:weights:bias:output:window:clamp:)`` for `dz`,
/// the gradient of the pre-activation output. Accumulates; the caller zeroes.
///
/// ```
/// dx[iy][ix][ci]    += Σ_{oy,ox,ky,kx valid} w[ky][kx][ci][co] · dz[oy][ox][co]   (summed over co)
/// dW[ky][kx][ci][co] += Σ_{oy,ox valid} x[iy][ix][ci] · dz[oy][ox][co]
/// db[co]             += Σ_{oy,ox} dz[oy][ox][co]
/// ```
/// with `iy = oy·sh − pt + ky`, `ix = ox·sw − pl + kx`; padding taps get nothing.
/// The naive loop order (pixels, taps, channels); the innermost loop runs
/// over the contiguous output channels.
///
/// - Parameters:
///   - inputGradient, weightGradient, biasGradient: nil to skip that gradient.
/// - Complexity: O(OH·OW·KH·KW·Cin·Cout) per gradient asked for; no allocation.
public func conv2dBackwardF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                              outputGradient dz: UnsafePointer<Float>, inputGradient: UnsafeMutablePointer<Float>?,
                              weightGradient: UnsafeMutablePointer<Float>?, biasGradient: UnsafeMutablePointer<Float>?,
                              window w: Window2D) {
    let cin = w.inputChannels, cout = w.outputChannels
    for oy in 0..<w.outputHeight {
        let rowOrigin = oy &* w.strideHeight &- w.padTop
        let rows = validTaps(origin: rowOrigin, kernel: w.kernelHeight, extent: w.inputHeight)
        for ox in 0..<w.outputWidth {
            let g = dz + (oy &* w.outputWidth &+ ox) &* cout
            if let db = biasGradient {
                for co in 0..<cout { db[co] += g[co] }
            }
            if weightGradient == nil && inputGradient == nil { continue }
            let columnOrigin = ox &* w.strideWidth &- w.padLeft
            let columns = validTaps(origin: columnOrigin, kernel: w.kernelWidth, extent: w.inputWidth)
            var ky = rows.first
            while ky < rows.end {
                var kx = columns.first
                while kx < columns.end {
                    let pixel = ((rowOrigin &+ ky) &* w.inputWidth &+ columnOrigin &+ kx) &* cin
                    let tap = (ky &* w.kernelWidth &+ kx) &* cin
                    for ci in 0..<cin {
                        let k = (tap &+ ci) &* cout
                        if let dw = weightGradient {
                            let x = input[pixel &+ ci]
                            let row = dw + k
                            for co in 0..<cout { row[co] += x * g[co] }
                        }
                        if let dx = inputGradient {
                            let row = weights + k
                            var s: Float = 0
                            for co in 0..<cout { s += row[co] * g[co] }
                            dx[pixel &+ ci] += s
                        }
                    }
                    kx &+= 1
                }
                ky &+= 1
            }
        }
    }
}

// MARK: - Params

/// The window of a Conv2D or DepthwiseConv2D op with input `x`, output `y`, weights `w`.
func convolutionWindow(_ op: OpInfo, _ x: TensorInfo, _ y: TensorInfo, _ w: TensorInfo) -> Window2D {
    Window2D(inputHeight: x.dims.0, inputWidth: x.dims.1, inputChannels: x.dims.2,
             outputHeight: y.dims.0, outputWidth: y.dims.1, outputChannels: y.dims.2,
             kernelHeight: w.dims.0, kernelWidth: w.dims.1,
             strideHeight: Int(op.params.0), strideWidth: Int(op.params.1),
             padTop: Int(op.params.2), padLeft: Int(op.params.3))
}

// MARK: - Validation (at load)

extension Model {
    /// Conv2D op `o` with input `xi` `[H][W][Cin]`: weights `[KH][KW][Cin][Cout]`,
    /// params 0 … 5 the window (``Window2D``: strides, then pads top, left,
    /// bottom, right) that gives the output `[OH][OW][Cout]`, then the bias and
    /// the int8 quantization (per output channel along axis 3).
    /// Returns the bytes of the requantization tables it scanned.
    func validateConv2D(_ o: Int, _ op: OpInfo, _ xi: TensorInfo) throws(SprigError) -> Int {
        let (wi, out) = try validateWeightedInputs(o, op, xi)
        guard wi.rank == 4 else { throw .shapeMismatch(op: o, slot: 1, expected: 4, found: wi.rank) }
        guard xi.rank == 3 else { throw .shapeMismatch(op: o, slot: 0, expected: 3, found: xi.rank) }
        guard out.rank == 3 else { throw .shapeMismatch(op: o, slot: -1, expected: 3, found: out.rank) }
        guard wi.dims.2 == xi.dims.2 else { throw .shapeMismatch(op: o, slot: 1, expected: xi.dims.2, found: wi.dims.2) }
        let outChannels = wi.dims.3
        try validateWindow(o, op, input: xi, kernelH: wi.dims.0, kernelW: wi.dims.1, firstParam: 0,
                           outChannels: outChannels)
        let scanned = try validateWeightedTail(o, op, xi, weights: wi, outChannels: outChannels, quantAxis: 3)
        try expectZeroParams(o, op, from: 6)
        return scanned
    }
}
