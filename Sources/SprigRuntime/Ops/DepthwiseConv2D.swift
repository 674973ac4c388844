// Depthwise Conv2D (channel multiplier 1), Float32 and int8.
//
//   input   [H][W][C]
//   weights [KH][KW][C]
//   bias    [C]              Float32, or Int32 in scale s_in·s_w (q8); nil = 0
//   output  [OH][OW][C]      window.inputChannels == window.outputChannels == C
//
//   out[oy][ox][c] = bias[c] + Σ_{ky,kx valid} in[oy·sh − pt + ky][ox·sw − pl + kx][c] · w[ky][kx][c]
//
// Padding taps contribute nothing. Each output pixel walks its valid taps with
// channel blocks of 16 lanes (8 when C < 16), the last block moved back to end
// at C so that every C ≥ 8 stays vectorized (overlapping channels are recomputed
// with the same arithmetic); a scalar loop only for C < 8. Input and weights
// are both contiguous along channels.
// The int8 kernel has an x86-64 path in Int16 lanes (MARK below), with the same
// results bit for bit. Most 3×3 kernels take DepthwiseRuns.swift instead (rows as runs
// of lanes for few channels, `runsPay`; channel blocks with held weights from 8 (Float32)
// or 9 (int8) channels on, `blocksPay`; int8 on x86-64, Float32 wherever the tiled kernels
// are built), again with the same
// results bit for bit.

// MARK: - Float32

/// Float32 depthwise 2-D convolution (channel multiplier 1) with a fused clamp.
///
/// - Parameters:
///   - input: `[inputHeight][inputWidth][C]`.
///   - weights: `[kernelHeight][kernelWidth][C]`.
///   - bias: `[C]`, or nil for zero.
///   - output: `[outputHeight][outputWidth][C]`; must not alias `input`.
///   - window: geometry; `inputChannels == outputChannels == C`.
/// - Complexity: O(OH·OW·KH·KW·C); no allocation.
public func depthwiseConv2dF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               output: UnsafeMutablePointer<Float>, window: Window2D, clamp: ClampF32) {
    let w = window
    let channels = w.outputChannels
    if tiledKernelsBuilt && depthwise3x3F32(input: input, weights: weights, bias: bias, output: output, window: w,
                                            clamp: clamp) {
        return
    }
    var oy = 0
    while oy < w.outputHeight {
        let rowOrigin = oy &* w.strideHeight &- w.padTop
        let rows = validTaps(origin: rowOrigin, kernel: w.kernelHeight, extent: w.inputHeight)
        var ox = 0
        while ox < w.outputWidth {
            let columnOrigin = ox &* w.strideWidth &- w.padLeft
            let cols = validTaps(origin: columnOrigin, kernel: w.kernelWidth, extent: w.inputWidth)
            let out = output + (oy &* w.outputWidth &+ ox) &* channels
            // Blocks of 16 (C ≥ 16) or 8 lanes, the last one moved back to end at C
            // (see channelBlock); a scalar loop only when C < 8.
            var block = 0
            while let c = channelBlock(block, width: 16, count: channels) {
                let acc = depthwisePixelF32(SIMD16<Float>.self, input: input, weights: weights, bias: bias,
                                            window: w, rowOrigin: rowOrigin, columnOrigin: columnOrigin,
                                            rows: rows, cols: cols, channel: c)
                storeClamped(acc, out + c, clamp)
                block &+= 1
            }
            while channels < 16, let c = channelBlock(block, width: 8, count: channels) {
                let acc = depthwisePixelF32(SIMD8<Float>.self, input: input, weights: weights, bias: bias,
                                            window: w, rowOrigin: rowOrigin, columnOrigin: columnOrigin,
                                            rows: rows, cols: cols, channel: c)
                storeClamped(acc, out + c, clamp)
                block &+= 1
            }
            var c = channels >= 8 ? channels : 0
            while c < channels {
                var acc: Float = 0
                if let bias { acc = bias[c] }
                var ky = rows.first
                while ky < rows.end {
                    var kx = cols.first
                    while kx < cols.end {
                        let x = input[((rowOrigin &+ ky) &* w.inputWidth &+ columnOrigin &+ kx) &* channels &+ c]
                        acc += x * weights[(ky &* w.kernelWidth &+ kx) &* channels &+ c]
                        kx &+= 1
                    }
                    ky &+= 1
                }
                out[c] = clampScalarF32(acc, clamp)
                c &+= 1
            }
            ox &+= 1
        }
        oy &+= 1
    }
}

/// The accumulator of channels `channel ..< channel + V.scalarCount` of one output pixel.
@inline(__always)
private func depthwisePixelF32<V: SIMD>(_: V.Type, input: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                                        bias: UnsafePointer<Float>?, window w: Window2D,
                                        rowOrigin: Int, columnOrigin: Int,
                                        rows: (first: Int, end: Int), cols: (first: Int, end: Int),
                                        channel c: Int) -> V where V.Scalar == Float {
    let channels = w.outputChannels
    var acc = V()
    if let bias { acc = loadLanes(bias + c) }
    var ky = rows.first
    while ky < rows.end {
        var x = input + (((rowOrigin &+ ky) &* w.inputWidth &+ columnOrigin &+ cols.first) &* channels &+ c)
        var k = weights + ((ky &* w.kernelWidth &+ cols.first) &* channels &+ c)
        var kx = cols.first
        while kx < cols.end {
            acc = acc.addingProduct(loadLanes(x) as V, loadLanes(k) as V)
            x += channels
            k += channels
            kx &+= 1
        }
        ky &+= 1
    }
    return acc
}

// MARK: - int8

/// int8 depthwise 2-D convolution (channel multiplier 1), TFLite scheme:
/// per-channel symmetric weights, asymmetric input, int32 bias, per-channel
/// requantization and fused clamp.
///
/// ```
/// acc[c] = bias[c] + Σ_{valid taps} (in − inputZeroPoint) · w[ky][kx][c]     (Int32, wrapping)
/// out[c] = clamp(multiplyByQuantizedMultiplier(acc, requant.multipliers[c], requant.shifts[c])
///                + requant.outputZeroPoint, requant.clampMin, requant.clampMax)
/// ```
/// Padding taps are skipped.
/// - Parameters:
///   - input: `[inputHeight][inputWidth][C]`.
///   - inputZeroPoint: −128...127.
///   - weights: `[kernelHeight][kernelWidth][C]`, zero point 0.
///   - bias: `[C]` in scale s_in·s_w, or nil for zero.
///   - output: `[outputHeight][outputWidth][C]`; must not alias `input`.
///   - window: geometry; `inputChannels == outputChannels == C`.
///   - requant: `[C]` multipliers and shifts, output zero point and clamp.
/// - Complexity: O(OH·OW·KH·KW·C); no allocation.
public func depthwiseConv2dQ8(input: UnsafePointer<Int8>, inputZeroPoint: Int32, weights: UnsafePointer<Int8>,
                              bias: UnsafePointer<Int32>?, output: UnsafeMutablePointer<Int8>,
                              window: Window2D, requant: RequantQ8) {
    let w = window
    let channels = w.outputChannels
    let stage = OutputStageQ8(zeroPoint: requant.outputZeroPoint, clampMin: requant.clampMin,
                              clampMax: requant.clampMax)
    if tiledKernelsBuilt && depthwise3x3Q8(input: input, inputZeroPoint: inputZeroPoint, weights: weights, bias: bias,
                                           output: output, window: w, requant: requant, stage: stage) {
        return
    }
    if pairedTaps && channels >= 8 && inputZeroPoint >= -128 && inputZeroPoint <= 127
        && requantFitsOneShift(requant.multipliers, requant.shifts, count: channels) {
        depthwiseConv2dQ8Int16(input: input, inputZeroPoint: inputZeroPoint, weights: weights, bias: bias,
                               output: output, window: w, requant: requant, stage: stage)
        return
    }
    let zeroPoint8 = SIMD8<Int32>(repeating: inputZeroPoint)
    // C < 8: bias and requantization of the one block of 8 lanes, C of them live
    // (the others: bias 0, multiplier 2^30, shift 0; never stored).
    var smallBias = SIMD8<Int32>()
    var smallRequant = Requant8(multiplier: 1 << 30, shift: 0)
    if tiledKernelsBuilt && channels < 8 {
        for i in 0..<channels {
            if let bias { smallBias[i] = bias[i] }
            let shift = requant.shifts[i]
            smallRequant.multiplier[i] = requant.multipliers[i]
            smallRequant.leftShift[i] = shift > 0 ? shift : 0
            smallRequant.rightShift[i] = shift > 0 ? 0 : 0 &- shift
        }
    }
    var oy = 0
    while oy < w.outputHeight {
        let rowOrigin = oy &* w.strideHeight &- w.padTop
        let rows = validTaps(origin: rowOrigin, kernel: w.kernelHeight, extent: w.inputHeight)
        var ox = 0
        while ox < w.outputWidth {
            let columnOrigin = ox &* w.strideWidth &- w.padLeft
            let cols = validTaps(origin: columnOrigin, kernel: w.kernelWidth, extent: w.inputWidth)
            let out = output + (oy &* w.outputWidth &+ ox) &* channels
            // Offsets of the first valid tap of channel 0, in the input and in the weights.
            let inputStart = ((rowOrigin &+ rows.first) &* w.inputWidth &+ columnOrigin &+ cols.first) &* channels
            let weightsStart = (rows.first &* w.kernelWidth &+ cols.first) &* channels
            let inputRowStep = w.inputWidth &* channels
            let weightsRowStep = w.kernelWidth &* channels
            let tapRows = rows.end &- rows.first, tapCols = cols.end &- cols.first
            // Blocks of 16 (C ≥ 16) or 8 lanes, the last one moved back to end at C
            // (see channelBlock); a scalar loop only when C < 8. Compact kernels
            // (BuildOptions.swift) take blocks of 8 only.
            var block = 0
            while tiledKernelsBuilt, let c = channelBlock(block, width: 16, count: channels) {
                var low = SIMD8<Int32>(), high = SIMD8<Int32>()
                if let bias { low = loadLanes(bias + c); high = loadLanes(bias + (c &+ 8)) }
                var r = 0
                while r < tapRows {
                    var x = input + (inputStart &+ r &* inputRowStep &+ c)
                    var k = weights + (weightsStart &+ r &* weightsRowStep &+ c)
                    var t = 0
                    while t < tapCols {
                        low &+= (loadWidened8(x) &- zeroPoint8) &* loadWidened8(k)
                        high &+= (loadWidened8(x + 8) &- zeroPoint8) &* loadWidened8(k + 8)
                        x += channels
                        k += channels
                        t &+= 1
                    }
                    r &+= 1
                }
                let qLow = Requant8(multipliers: requant.multipliers, shifts: requant.shifts, channel: c)
                let qHigh = Requant8(multipliers: requant.multipliers, shifts: requant.shifts, channel: c &+ 8)
                storeLanes(stage(qLow.apply(low)), out + c)
                storeLanes(stage(qHigh.apply(high)), out + (c &+ 8))
                block &+= 1
            }
            while channels < 16 || !tiledKernelsBuilt, let c = channelBlock(block, width: 8, count: channels) {
                var acc = SIMD8<Int32>()
                if let bias { acc = loadLanes(bias + c) }
                var r = 0
                while r < tapRows {
                    var x = input + (inputStart &+ r &* inputRowStep &+ c)
                    var k = weights + (weightsStart &+ r &* weightsRowStep &+ c)
                    var t = 0
                    while t < tapCols {
                        acc &+= (loadWidened8(x) &- zeroPoint8) &* loadWidened8(k)
                        x += channels
                        k += channels
                        t &+= 1
                    }
                    r &+= 1
                }
                let q = Requant8(multipliers: requant.multipliers, shifts: requant.shifts, channel: c)
                storeLanes(stage(q.apply(acc)), out + c)
                block &+= 1
            }
            if tiledKernelsBuilt && channels < 8 {
                // C < 8: one block of 8 lanes, C of them live, filled lane by lane (the
                // lanes past C hold x = zero point and w = 0, so they add nothing, and are
                // never stored); the same arithmetic per lane as the blocks above. Compact
                // kernels (BuildOptions.swift: no SIMD unit to gain from) keep the scalar loop.
                var acc = smallBias
                var r = 0
                while r < tapRows {
                    var x = input + (inputStart &+ r &* inputRowStep)
                    var k = weights + (weightsStart &+ r &* weightsRowStep)
                    var t = 0
                    while t < tapCols {
                        var xv = zeroPoint8, kv = SIMD8<Int32>()
                        for i in 0..<channels {
                            xv[i] = Int32(x[i])
                            kv[i] = Int32(k[i])
                        }
                        acc &+= (xv &- zeroPoint8) &* kv
                        x += channels
                        k += channels
                        t &+= 1
                    }
                    r &+= 1
                }
                let bytes = stage(smallRequant.apply(acc))
                for i in 0..<channels { out[i] = bytes[i] }
            } else {
                var c = channels >= 8 ? channels : 0
                while c < channels {
                    var acc: Int32 = 0
                    if let bias { acc = bias[c] }
                    var r = 0
                    while r < tapRows {
                        var t = 0
                        while t < tapCols {
                            let x = Int32(input[inputStart &+ r &* inputRowStep &+ t &* channels &+ c])
                            acc &+= (x &- inputZeroPoint) &* Int32(weights[weightsStart &+ r &* weightsRowStep &+ t &* channels &+ c])
                            t &+= 1
                        }
                        r &+= 1
                    }
                    out[c] = stage(multiplyByQuantizedMultiplier(acc, requant.multipliers[c], requant.shifts[c]))
                    c &+= 1
                }
            }
            ox &+= 1
        }
        oy &+= 1
    }
}

// MARK: - int8 in Int16 lanes (x86-64)
//
// On x86-64 (`pairedTaps`), C ≥ 8, an int8 input zero point and multipliers and
// shifts in `Requant16`'s domain (every validated blob's), the products are taken
// in Int16 lanes: `x − zp` (|·| ≤ 255) times w (|·| ≤ 128) is at most 32640 in
// magnitude, exact in Int16, so one vpmullw makes 32 products (zmm) where the
// portable loop needs vpmovsxbd and vpmulld (two uops) per 8. Each 32-bit lane
// then holds an even channel's product in its low half and the next (odd)
// channel's in its high half; the even one is biased by 2^15 so that the low half
// reads as an unsigned number, the whole lane is summed, and the odd products are
// summed apart (one vpsrad): after the taps, even = lanes − 2^16·odd − 2^15·taps
// (see `Lanes32.accumulate`). Every sum is modulo 2^32, as the portable loop's
// wrapping sums: the same accumulators bit for bit, in any order.
//
// Channel blocks (32 lanes for C ≥ 32, 16 for C ≥ 16, 8 below; the last block
// moved back to end at C) are the outer loop, so each block's requantization
// parameters (`Requant16`: one rounding shift of the 64-bit product) and bias are
// prepared once. Output pixels whose window lies wholly inside the input (interior
// columns) go 4 at a time through one pass over the taps, sharing each tap's
// weights (for blocks of 16, two pixels to a 32-lane vector); the others (clipped
// columns) one at a time. Rows are clipped per output row.

/// `depthwiseConv2dQ8` on x86-64 for `C ≥ 8`, `−128 ≤ inputZeroPoint ≤ 127` and the
/// requantization in `Requant16`'s domain.
private func depthwiseConv2dQ8Int16(input: UnsafePointer<Int8>, inputZeroPoint: Int32, weights: UnsafePointer<Int8>,
                                    bias: UnsafePointer<Int32>?, output: UnsafeMutablePointer<Int8>,
                                    window w: Window2D, requant: RequantQ8, stage: OutputStageQ8) {
    if stage.clampsNegatives {
        depthwiseConv2dQ8Int16(input: input, inputZeroPoint: inputZeroPoint, weights: weights, bias: bias,
                               output: output, window: w, requant: requant, stage: stage, rounding: ClampsNegatives.self)
    } else {
        depthwiseConv2dQ8Int16(input: input, inputZeroPoint: inputZeroPoint, weights: weights, bias: bias,
                               output: output, window: w, requant: requant, stage: stage, rounding: RoundsNegatives.self)
    }
}

/// `depthwiseConv2dQ8Int16` with the requantization's rounding of negative products fixed
/// (`NegativeRounding`; blocks of 16 and 32 channels, whose `Requant16` can skip it).
private func depthwiseConv2dQ8Int16<N: NegativeRounding>(input: UnsafePointer<Int8>, inputZeroPoint: Int32,
                                                         weights: UnsafePointer<Int8>, bias: UnsafePointer<Int32>?,
                                                         output: UnsafeMutablePointer<Int8>, window w: Window2D,
                                                         requant: RequantQ8, stage: OutputStageQ8, rounding: N.Type) {
    let channels = w.outputChannels
    if channels >= 32 {
        depthwiseRowsQ8(Lanes32.self, N.self, input: input, inputZeroPoint: inputZeroPoint, weights: weights,
                        bias: bias, output: output, window: w, requant: requant, stage: stage)
    } else if channels >= 16 {
        depthwiseRowsQ8(Lanes16.self, N.self, input: input, inputZeroPoint: inputZeroPoint, weights: weights,
                        bias: bias, output: output, window: w, requant: requant, stage: stage)
    } else {
        depthwiseRowsQ8(Lanes8.self, N.self, input: input, inputZeroPoint: inputZeroPoint, weights: weights,
                        bias: bias, output: output, window: w, requant: requant, stage: stage)
    }
}

/// Every channel block of `L.width` (the last moved back to end at C), each over every
/// output row: the block's requantization parameters and bias are prepared once.
private func depthwiseRowsQ8<L: ChannelLanes, N: NegativeRounding>(_: L.Type, _: N.Type, input: UnsafePointer<Int8>,
                                              inputZeroPoint: Int32,
                                              weights: UnsafePointer<Int8>, bias: UnsafePointer<Int32>?,
                                              output: UnsafeMutablePointer<Int8>, window w: Window2D,
                                              requant: RequantQ8, stage: OutputStageQ8) {
    let zp = Int16(truncatingIfNeeded: inputZeroPoint)
    let interior = interiorOutputs(stride: w.strideWidth, pad: w.padLeft, kernel: w.kernelWidth,
                                   extent: w.inputWidth, outputCount: w.outputWidth)
    var block = 0
    while let c = channelBlock(block, width: L.width, count: w.outputChannels) {
        let q = L.requants(requant, channel: c)
        var biasEven = L.Sums(), biasOdd = L.Sums()
        if let bias { (biasEven, biasOdd) = L.splitBias(bias + c) }
        var oy = 0
        while oy < w.outputHeight {
            let rowOrigin = oy &* w.strideHeight &- w.padTop
            let rows = validTaps(origin: rowOrigin, kernel: w.kernelHeight, extent: w.inputHeight)
            var ox = 0
            while ox < w.outputWidth {
                if ox >= interior.first && ox &+ 4 <= interior.end {
                    L.fourPixels(N.self, input: input, zp: zp, weights: weights, output: output, window: w, channel: c,
                                 requant: q, stage: stage, biasEven: biasEven, biasOdd: biasOdd,
                                 oy: oy, ox: ox, rowOrigin: rowOrigin, rows: rows, cols: (0, w.kernelWidth))
                    ox &+= 4
                } else {
                    let columnOrigin = ox &* w.strideWidth &- w.padLeft
                    let cols = validTaps(origin: columnOrigin, kernel: w.kernelWidth, extent: w.inputWidth)
                    depthwiseTileQ8(OnePixel.self, L.self, N.self, input: input, zp: zp, weights: weights, output: output,
                                    window: w, channel: c, requant: q, stage: stage, biasEven: biasEven,
                                    biasOdd: biasOdd, oy: oy, ox: ox, rowOrigin: rowOrigin, rows: rows, cols: cols)
                    ox &+= 1
                }
            }
            oy &+= 1
        }
        block &+= 1
    }
}

/// The number of output pixels of a tile, as a type: each gets its own copy of the tile loop.
private protocol PixelTile { static var pixels: Int { get } }
private enum OnePixel: PixelTile { static var pixels: Int { 1 } }
private enum FourPixels: PixelTile { static var pixels: Int { 4 } }

/// A block of channels in Int16 lanes: 8 (xmm), 16 (ymm) or 32 (zmm with AVX-512).
private protocol ChannelLanes {
    associatedtype Values: SIMD where Values.Scalar == Int16
    associatedtype Sums: SIMD where Sums.Scalar == Int32
    associatedtype Requants
    static var width: Int { get }
    /// `width` int8 at `p`, sign-extended.
    static func widened(_ p: UnsafePointer<Int8>) -> Values
    static func subtract(_ x: Values, _ zp: Int16) -> Values
    /// The bias of the even channels and of the odd ones.
    static func splitBias(_ p: UnsafePointer<Int32>) -> (even: Sums, odd: Sums)
    static func accumulate(_ x: Values, _ w: Values, _ even: inout Sums, _ odd: inout Sums)
    /// The sums of the even and odd channels from what `accumulate` left after `taps` taps.
    static func finish(_ even: Sums, _ odd: Sums, taps: Int) -> (even: Sums, odd: Sums)
    static func requants(_ requant: RequantQ8, channel: Int) -> Requants
    static func store<N: NegativeRounding>(_ even: Sums, _ odd: Sums, _ q: Requants, _ stage: OutputStageQ8,
                                           _ out: UnsafeMutablePointer<Int8>, _: N.Type)
    /// The tile of 4 interior pixels (`depthwiseTileQ8` with `FourPixels`, or a variant).
    static func fourPixels<N: NegativeRounding>(_: N.Type, input: UnsafePointer<Int8>, zp: Int16, weights: UnsafePointer<Int8>,
                           output: UnsafeMutablePointer<Int8>, window w: Window2D, channel c: Int,
                           requant q: Requants, stage: OutputStageQ8, biasEven: Sums, biasOdd: Sums,
                           oy: Int, ox: Int, rowOrigin: Int, rows: (first: Int, end: Int), cols: (first: Int, end: Int))
}

extension ChannelLanes {
    @inline(__always)
    static func fourPixels<N: NegativeRounding>(_: N.Type, input: UnsafePointer<Int8>, zp: Int16, weights: UnsafePointer<Int8>,
                           output: UnsafeMutablePointer<Int8>, window w: Window2D, channel c: Int,
                           requant q: Requants, stage: OutputStageQ8, biasEven: Sums, biasOdd: Sums,
                           oy: Int, ox: Int, rowOrigin: Int, rows: (first: Int, end: Int), cols: (first: Int, end: Int)) {
        depthwiseTileQ8(FourPixels.self, Self.self, N.self, input: input, zp: zp, weights: weights, output: output,
                        window: w, channel: c, requant: q, stage: stage, biasEven: biasEven, biasOdd: biasOdd,
                        oy: oy, ox: ox, rowOrigin: rowOrigin, rows: rows, cols: cols)
    }
}

private enum Lanes16: ChannelLanes {
    static var width: Int { 16 }
    /// Two pixels to a vector of 32 lanes: `depthwiseTilePairsQ8`.
    @inline(__always)
    static func fourPixels<N: NegativeRounding>(_: N.Type, input: UnsafePointer<Int8>, zp: Int16,
                           weights: UnsafePointer<Int8>,
                           output: UnsafeMutablePointer<Int8>, window w: Window2D, channel c: Int,
                           requant q: Requant16, stage: OutputStageQ8, biasEven: SIMD8<Int32>, biasOdd: SIMD8<Int32>,
                           oy: Int, ox: Int, rowOrigin: Int, rows: (first: Int, end: Int), cols: (first: Int, end: Int)) {
        depthwiseTilePairsQ8(N.self, input: input, zp: zp, weights: weights, output: output, window: w, channel: c,
                             requant: q, stage: stage, biasEven: biasEven, biasOdd: biasOdd,
                             oy: oy, ox: ox, rowOrigin: rowOrigin, rows: rows, cols: cols)
    }
    @inline(__always)
    static func widened(_ p: UnsafePointer<Int8>) -> SIMD16<Int16> { widenedInt16(p) }
    @inline(__always)
    static func subtract(_ x: SIMD16<Int16>, _ zp: Int16) -> SIMD16<Int16> { x &- SIMD16(repeating: zp) }
    @inline(__always)
    static func splitBias(_ p: UnsafePointer<Int32>) -> (even: SIMD8<Int32>, odd: SIMD8<Int32>) {
        let (even, odd) = deinterleavedBias(p)
        return (even &+ (odd &<< 16), odd)          // see `Lanes32.accumulate`
    }
    /// As `Lanes32.accumulate`.
    @inline(__always)
    static func accumulate(_ x: SIMD16<Int16>, _ w: SIMD16<Int16>, _ even: inout SIMD8<Int32>, _ odd: inout SIMD8<Int32>) {
        let halfBias = unsafeBitCast(SIMD8<Int32>(repeating: 0x8000), to: SIMD16<Int16>.self)
        let p = unsafeBitCast(x &* w &+ halfBias, to: SIMD8<Int32>.self)
        even &+= p
        odd &+= p &>> 16
    }
    @inline(__always)
    static func finish(_ even: SIMD8<Int32>, _ odd: SIMD8<Int32>, taps: Int) -> (even: SIMD8<Int32>, odd: SIMD8<Int32>) {
        (even &- (odd &<< 16) &- SIMD8(repeating: Int32(truncatingIfNeeded: taps) &<< 15), odd)
    }
    @inline(__always)
    static func requants(_ requant: RequantQ8, channel c: Int) -> Requant16 {
        Requant16(multiplier: loadLanes(requant.multipliers + c), shift: loadLanes(requant.shifts + c))
    }
    @_transparent
    static func store<N: NegativeRounding>(_ even: SIMD8<Int32>, _ odd: SIMD8<Int32>, _ q: Requant16,
                                           _ stage: OutputStageQ8, _ out: UnsafeMutablePointer<Int8>, _: N.Type) {
        storeLanes(stage(q.apply(interleaved(even, odd), N.self)), out)
    }
}

/// The bias of 16 channels, the even channels and the odd ones.
@inline(__always)
private func deinterleavedBias(_ p: UnsafePointer<Int32>) -> (even: SIMD8<Int32>, odd: SIMD8<Int32>) {
    let b: SIMD16<Int32> = loadLanes(p)
    return (SIMD8(b[0], b[2], b[4], b[6], b[8], b[10], b[12], b[14]),
            SIMD8(b[1], b[3], b[5], b[7], b[9], b[11], b[13], b[15]))
}

/// `[even[0], odd[0], even[1], odd[1], …]`: the sums of 16 channels back in channel order.
@_transparent
private func interleaved(_ even: SIMD8<Int32>, _ odd: SIMD8<Int32>) -> SIMD16<Int32> {
    SIMD16(even[0], odd[0], even[1], odd[1], even[2], odd[2], even[3], odd[3],
           even[4], odd[4], even[5], odd[5], even[6], odd[6], even[7], odd[7])
}

private enum Lanes8: ChannelLanes {
    static var width: Int { 8 }
    @inline(__always)
    static func widened(_ p: UnsafePointer<Int8>) -> SIMD8<Int16> {
        let b: SIMD8<Int8> = loadLanes(p)
        return SIMD8(Int16(b[0]), Int16(b[1]), Int16(b[2]), Int16(b[3]), Int16(b[4]), Int16(b[5]), Int16(b[6]), Int16(b[7]))
    }
    @inline(__always)
    static func subtract(_ x: SIMD8<Int16>, _ zp: Int16) -> SIMD8<Int16> { x &- SIMD8(repeating: zp) }
    @inline(__always)
    static func splitBias(_ p: UnsafePointer<Int32>) -> (even: SIMD4<Int32>, odd: SIMD4<Int32>) {
        let b: SIMD8<Int32> = loadLanes(p)
        let even = SIMD4(b[0], b[2], b[4], b[6]), odd = SIMD4(b[1], b[3], b[5], b[7])
        return (even &+ (odd &<< 16), odd)          // see `Lanes32.accumulate`
    }
    /// As `Lanes32.accumulate`.
    @inline(__always)
    static func accumulate(_ x: SIMD8<Int16>, _ w: SIMD8<Int16>, _ even: inout SIMD4<Int32>, _ odd: inout SIMD4<Int32>) {
        let halfBias = unsafeBitCast(SIMD4<Int32>(repeating: 0x8000), to: SIMD8<Int16>.self)
        let p = unsafeBitCast(x &* w &+ halfBias, to: SIMD4<Int32>.self)
        even &+= p
        odd &+= p &>> 16
    }
    @inline(__always)
    static func finish(_ even: SIMD4<Int32>, _ odd: SIMD4<Int32>, taps: Int) -> (even: SIMD4<Int32>, odd: SIMD4<Int32>) {
        (even &- (odd &<< 16) &- SIMD4(repeating: Int32(truncatingIfNeeded: taps) &<< 15), odd)
    }
    @inline(__always)
    static func requants(_ requant: RequantQ8, channel c: Int) -> Requant8 {
        Requant8(multipliers: requant.multipliers, shifts: requant.shifts, channel: c)
    }
    /// (Always the exact rounding: `Requant8` has no variant.)
    @_transparent
    static func store<N: NegativeRounding>(_ even: SIMD4<Int32>, _ odd: SIMD4<Int32>, _ q: Requant8,
                                           _ stage: OutputStageQ8, _ out: UnsafeMutablePointer<Int8>, _: N.Type) {
        let sums = SIMD8(even[0], odd[0], even[1], odd[1], even[2], odd[2], even[3], odd[3])
        storeLanes(stage(q.apply(sums)), out)
    }
}

private enum Lanes32: ChannelLanes {
    static var width: Int { 32 }
    @inline(__always)
    static func widened(_ p: UnsafePointer<Int8>) -> SIMD32<Int16> {
        SIMD32(lowHalf: widenedInt16(p), highHalf: widenedInt16(p + 16))
    }
    @inline(__always)
    static func subtract(_ x: SIMD32<Int16>, _ zp: Int16) -> SIMD32<Int16> { x &- SIMD32(repeating: zp) }
    @inline(__always)
    static func splitBias(_ p: UnsafePointer<Int32>) -> (even: SIMD16<Int32>, odd: SIMD16<Int32>) {
        let low = deinterleavedBias(p), high = deinterleavedBias(p + 16)
        let even = SIMD16(lowHalf: low.even, highHalf: high.even), odd = SIMD16(lowHalf: low.odd, highHalf: high.odd)
        return (even &+ (odd &<< 16), odd)          // see `accumulate`
    }
    /// Here `even` sums whole 32-bit lanes, `2^16·odd + (even + 2^15)` (the even product,
    /// biased by 2^15 in 16 bits, is the lane's unsigned low half; |product| ≤ 32640), and
    /// `odd` the odd products (the high halves, one vpsrad): one shift per 32 products
    /// instead of three. `finish` takes `2^16·odd + 2^15·taps` back out of `even`, modulo
    /// 2^32 like every sum here (the bias starts as `even + 2^16·odd`, see `splitBias`).
    @inline(__always)
    static func accumulate(_ x: SIMD32<Int16>, _ w: SIMD32<Int16>, _ even: inout SIMD16<Int32>, _ odd: inout SIMD16<Int32>) {
        let halfBias = unsafeBitCast(SIMD16<Int32>(repeating: 0x8000), to: SIMD32<Int16>.self)
        let p = unsafeBitCast(x &* w &+ halfBias, to: SIMD16<Int32>.self)
        even &+= p
        odd &+= p &>> 16
    }
    @inline(__always)
    static func finish(_ even: SIMD16<Int32>, _ odd: SIMD16<Int32>, taps: Int) -> (even: SIMD16<Int32>, odd: SIMD16<Int32>) {
        (even &- (odd &<< 16) &- SIMD16(repeating: Int32(truncatingIfNeeded: taps) &<< 15), odd)
    }
    @inline(__always)
    static func requants(_ requant: RequantQ8, channel c: Int) -> (Requant16, Requant16) {
        (Lanes16.requants(requant, channel: c), Lanes16.requants(requant, channel: c &+ 16))
    }
    @_transparent
    static func store<N: NegativeRounding>(_ even: SIMD16<Int32>, _ odd: SIMD16<Int32>, _ q: (Requant16, Requant16),
                                           _ stage: OutputStageQ8, _ out: UnsafeMutablePointer<Int8>, _: N.Type) {
        storeLanes(stage(q.0.apply(interleaved(even.lowHalf, odd.lowHalf), N.self)), out)
        storeLanes(stage(q.1.apply(interleaved(even.highHalf, odd.highHalf), N.self)), out + 16)
    }
}

/// `Tile.pixels` (1 or 4) consecutive output pixels of row `oy` from column `ox`, all with the
/// valid taps `rows` × `cols`, in channels `channel ..< channel + L.width`.
private func depthwiseTileQ8<Tile: PixelTile, L: ChannelLanes, N: NegativeRounding>(_: Tile.Type, _: L.Type, _: N.Type,
                             input: UnsafePointer<Int8>,
                             zp: Int16, weights: UnsafePointer<Int8>, output: UnsafeMutablePointer<Int8>,
                             window w: Window2D, channel c: Int, requant q: L.Requants, stage: OutputStageQ8,
                             biasEven: L.Sums, biasOdd: L.Sums, oy: Int, ox: Int, rowOrigin: Int,
                             rows: (first: Int, end: Int), cols: (first: Int, end: Int)) {
    let channels = w.outputChannels
    let columnOrigin = ox &* w.strideWidth &- w.padLeft
    let pixelStep = w.strideWidth &* channels
    var even0 = biasEven, odd0 = biasOdd
    var even1 = even0, odd1 = odd0, even2 = even0, odd2 = odd0, even3 = even0, odd3 = odd0
    var ky = rows.first
    while ky < rows.end {
        var x = input + (((rowOrigin &+ ky) &* w.inputWidth &+ columnOrigin &+ cols.first) &* channels &+ c)
        var k = weights + ((ky &* w.kernelWidth &+ cols.first) &* channels &+ c)
        var kx = cols.first
        while kx < cols.end {
            let taps = L.widened(k)
            L.accumulate(L.subtract(L.widened(x), zp), taps, &even0, &odd0)
            if Tile.pixels > 1 {
                L.accumulate(L.subtract(L.widened(x + pixelStep), zp), taps, &even1, &odd1)
                L.accumulate(L.subtract(L.widened(x + 2 &* pixelStep), zp), taps, &even2, &odd2)
                L.accumulate(L.subtract(L.widened(x + 3 &* pixelStep), zp), taps, &even3, &odd3)
            }
            x += channels
            k += channels
            kx &+= 1
        }
        ky &+= 1
    }
    let out = output + ((oy &* w.outputWidth &+ ox) &* channels &+ c)
    let taps = (rows.end &- rows.first) &* (cols.end &- cols.first)
    let sums0 = L.finish(even0, odd0, taps: taps)
    L.store(sums0.even, sums0.odd, q, stage, out, N.self)
    if Tile.pixels > 1 {
        let sums1 = L.finish(even1, odd1, taps: taps)
        L.store(sums1.even, sums1.odd, q, stage, out + channels, N.self)
        let sums2 = L.finish(even2, odd2, taps: taps)
        L.store(sums2.even, sums2.odd, q, stage, out + 2 &* channels, N.self)
        let sums3 = L.finish(even3, odd3, taps: taps)
        L.store(sums3.even, sums3.odd, q, stage, out + 3 &* channels, N.self)
    }
}

/// The tile of 4 pixels for blocks of 16 channels (16 ≤ C < 32), two pixels to a vector
/// of 32 Int16 lanes (zmm with AVX-512): pixels 0 and 1 in one, 2 and 3 in the other, each
/// tap's 16 weights twice. The sums are `Lanes32`'s, the requantization `Lanes16`'s per pixel.
private func depthwiseTilePairsQ8<N: NegativeRounding>(_: N.Type, input: UnsafePointer<Int8>, zp: Int16, weights: UnsafePointer<Int8>,
                                  output: UnsafeMutablePointer<Int8>, window w: Window2D, channel c: Int,
                                  requant q: Requant16, stage: OutputStageQ8,
                                  biasEven: SIMD8<Int32>, biasOdd: SIMD8<Int32>, oy: Int, ox: Int,
                                  rowOrigin: Int, rows: (first: Int, end: Int), cols: (first: Int, end: Int)) {
    let channels = w.outputChannels
    let columnOrigin = ox &* w.strideWidth &- w.padLeft
    let pixelStep = w.strideWidth &* channels
    var even01 = SIMD16(lowHalf: biasEven, highHalf: biasEven), odd01 = SIMD16(lowHalf: biasOdd, highHalf: biasOdd)
    var even23 = even01, odd23 = odd01
    var ky = rows.first
    while ky < rows.end {
        var x = input + (((rowOrigin &+ ky) &* w.inputWidth &+ columnOrigin &+ cols.first) &* channels &+ c)
        var k = weights + ((ky &* w.kernelWidth &+ cols.first) &* channels &+ c)
        var kx = cols.first
        while kx < cols.end {
            let w16 = widenedInt16(k)
            let taps = SIMD32(lowHalf: w16, highHalf: w16)
            let x01 = SIMD32(lowHalf: widenedInt16(x), highHalf: widenedInt16(x + pixelStep))
            let x23 = SIMD32(lowHalf: widenedInt16(x + 2 &* pixelStep), highHalf: widenedInt16(x + 3 &* pixelStep))
            Lanes32.accumulate(Lanes32.subtract(x01, zp), taps, &even01, &odd01)
            Lanes32.accumulate(Lanes32.subtract(x23, zp), taps, &even23, &odd23)
            x += channels
            k += channels
            kx &+= 1
        }
        ky &+= 1
    }
    let taps = (rows.end &- rows.first) &* (cols.end &- cols.first)
    let sums01 = Lanes32.finish(even01, odd01, taps: taps), sums23 = Lanes32.finish(even23, odd23, taps: taps)
    let out = output + ((oy &* w.outputWidth &+ ox) &* channels &+ c)
    Lanes16.store(sums01.even.lowHalf, sums01.odd.lowHalf, q, stage, out, N.self)
    Lanes16.store(sums01.even.highHalf, sums01.odd.highHalf, q, stage, out + channels, N.self)
    Lanes16.store(sums23.even.lowHalf, sums23.odd.lowHalf, q, stage, out + 2 &* channels, N.self)
    Lanes16.store(sums23.even.highHalf, sums23.odd.highHalf, q, stage, out + 3 &* channels, N.self)
}

/// 16 int8 at `p`, sign-extended to Int16 (vpmovsxbw).
@inline(__always)
private func widenedInt16(_ p: UnsafePointer<Int8>) -> SIMD16<Int16> {
    let b: SIMD16<Int8> = loadLanes(p)
    return SIMD16(Int16(b[0]), Int16(b[1]), Int16(b[2]), Int16(b[3]), Int16(b[4]), Int16(b[5]), Int16(b[6]), Int16(b[7]),
                  Int16(b[8]), Int16(b[9]), Int16(b[10]), Int16(b[11]), Int16(b[12]), Int16(b[13]), Int16(b[14]), Int16(b[15]))
}

// MARK: - Float32 backward (fine-tuning)

/// Backward of ``depthwiseConv2dF32(input:weights:bias:output:window:clamp:)``
/// for `dz`, the gradient of the pre-activation output. Accumulates; the caller zeroes.
///
/// `dx[iy][ix][c] += w[ky][kx][c]·dz[oy][ox][c]`, `dW[ky][kx][c] += x[iy][ix][c]·dz[oy][ox][c]`,
/// `db[c] += dz[oy][ox][c]`, over the valid taps.
/// - Complexity: O(OH·OW·KH·KW·C); no allocation.
public func depthwiseConv2dBackwardF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                                       outputGradient dz: UnsafePointer<Float>,
                                       inputGradient: UnsafeMutablePointer<Float>?,
                                       weightGradient: UnsafeMutablePointer<Float>?,
                                       biasGradient: UnsafeMutablePointer<Float>?, window w: Window2D) {
    let channels = w.outputChannels
    for oy in 0..<w.outputHeight {
        let rowOrigin = oy &* w.strideHeight &- w.padTop
        let rows = validTaps(origin: rowOrigin, kernel: w.kernelHeight, extent: w.inputHeight)
        for ox in 0..<w.outputWidth {
            let g = dz + (oy &* w.outputWidth &+ ox) &* channels
            if let db = biasGradient {
                for c in 0..<channels { db[c] += g[c] }
            }
            let columnOrigin = ox &* w.strideWidth &- w.padLeft
            let columns = validTaps(origin: columnOrigin, kernel: w.kernelWidth, extent: w.inputWidth)
            var ky = rows.first
            while ky < rows.end {
                var kx = columns.first
                while kx < columns.end {
                    let pixel = ((rowOrigin &+ ky) &* w.inputWidth &+ columnOrigin &+ kx) &* channels
                    let tap = (ky &* w.kernelWidth &+ kx) &* channels
                    if let dw = weightGradient {
                        for c in 0..<channels { dw[tap &+ c] += input[pixel &+ c] * g[c] }
                    }
                    if let dx = inputGradient {
                        for c in 0..<channels { dx[pixel &+ c] += weights[tap &+ c] * g[c] }
                    }
                    kx &+= 1
                }
                ky &+= 1
            }
        }
    }
}

// MARK: - Validation (at load)

extension Model {
    /// DepthwiseConv2D op `o` with input `xi` `[H][W][C]`: weights `[KH][KW][C]`,
    /// params 0 … 5 the window (as Conv2D's) that gives the output `[OH][OW][C]`,
    /// then the bias and the int8 quantization (per channel along axis 2).
    /// Returns the bytes of the requantization tables it scanned.
    func validateDepthwiseConv2D(_ o: Int, _ op: OpInfo, _ xi: TensorInfo) throws(SprigError) -> Int {
        let (wi, out) = try validateWeightedInputs(o, op, xi)
        guard wi.rank == 3 else { throw .shapeMismatch(op: o, slot: 1, expected: 3, found: wi.rank) }
        guard xi.rank == 3 else { throw .shapeMismatch(op: o, slot: 0, expected: 3, found: xi.rank) }
        guard out.rank == 3 else { throw .shapeMismatch(op: o, slot: -1, expected: 3, found: out.rank) }
        guard wi.dims.2 == xi.dims.2 else { throw .shapeMismatch(op: o, slot: 1, expected: xi.dims.2, found: wi.dims.2) }
        let outChannels = wi.dims.2
        try validateWindow(o, op, input: xi, kernelH: wi.dims.0, kernelW: wi.dims.1, firstParam: 0,
                           outChannels: outChannels)
        let scanned = try validateWeightedTail(o, op, xi, weights: wi, outChannels: outChannels, quantAxis: 2)
        try expectZeroParams(o, op, from: 6)
        return scanned
    }
}
