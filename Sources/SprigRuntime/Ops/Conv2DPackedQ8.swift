// Conv2D int8 from packed weights: the path `conv2dQ8` takes in a build with 8-bit dot
// products (VNNI's vpdpbusd on x86-64, sdot on aarch64 with the dot-product extension;
// `quadDot` in KernelDotQ8.swift).
//
// Both want, per 32-bit lane (one output channel), the weights of 4 consecutive
// taps side by side, where HWIO keeps one tap's channels side by side. The tiles of
// Conv2D.swift transpose 4 weight rows into that order for every tile of 4 pixels
// (`quadRows16`), and their pixel path for every pixel, so on the nets Sprig makes the
// shuffles, not the products, set the time (int8 ran slower than Float32). Here each
// channel block's weights are put in that order once per call, in a scratch on the
// stack, and every pixel of the block is computed from them:
//
//   for each channel block of 16 lanes, the last one moved back to end at Cout
//   (`channelBlock`), two blocks at once with AVX-512 (`packedTileWide`); below 16
//   channels one block whose lanes past Cout have zero weights and are not stored:
//     pack the block (below), then for each output row:
//       copy the KH input rows its windows read into a band, padded with the zero point,
//       run tiles of 4 consecutive output pixels × the block over the band.
//
// The band makes every window whole, so there is one kind of tile and no clipping: a
// padding tap reads the zero point, and contributes (zp − zp)·w = 0 once the tile's
// initial value takes (zp + packedInputOffset)·Σ w over all taps out (KernelDotQ8.swift:
// 128 with vpdpbusd, 0 with sdot).
// The band is wide enough for the last tile's 4 pixels (those past the row are not
// stored) and ends with slack for the over-read below.
//
// A block's pack: the KW·Cin taps of one kernel row are cut into quads of 4 taps, the
// last one padded with zero weights:
//
//   sums   [KH]        16 Int32: Σ w over the row, per channel
//   quads  [KH][Q]     64 bytes: byte 4l + k = w[ky][flat tap 4q + k][c + l], Q = ⌈KW·Cin/4⌉
//
// Reading the padded quad reads up to 3 band bytes past the window row's last tap, which
// the zero weights cancel.
//
// The sums are exact in wrapping Int32 as in Conv2D.swift, so the outputs are bit for bit
// those of the naive loop (KernelQ8Tests compares them on every path). Without VNNI this
// file is empty: the portable tiles of Conv2D.swift run everywhere else.
//
// `wideTiles` is x86-64 AVX-512 only; on aarch64 a tile's eight accumulators are
// sixteen of NEON's 32 registers.
#if (arch(x86_64) && SPRIG_ISA_VNNI) || (arch(arm64) && SPRIG_ISA_DOTPROD)
import SprigISA

/// The stack scratch of a layer: 48 KiB for the packs (one block of a 3×3 conv of up to
/// 336 input channels, or two of up to 160) and the band. A layer that needs more takes
/// Conv2D.swift's tiles.
typealias PackedConvScratch = InlineArray<768, SIMD16<Int32>>

/// The scratch of the small layers: 8 KiB (it is zeroed on every call).
typealias SmallPackScratch = InlineArray<128, SIMD16<Int32>>

/// One packed channel block: where its sums and quads are.
struct PackedBlockQ8 {
    /// `[KH]` vectors of 16 Int32.
    var sums: UnsafeRawPointer
    /// `[KH][quads]` of 64 bytes.
    var quads: UnsafeRawPointer
    /// Quads per kernel row.
    var quadsPerRow: Int

    /// Bytes of a pack of `kernelRows` rows of `quads` quads each: sums, then quads.
    static func bytes(kernelRows: Int, quads: Int) -> Int { kernelRows &* 64 &* (1 &+ quads) }

    /// Σ w of every lane over all taps.
    func weightSum(kernelRows: Int) -> SIMD16<Int32> {
        var total = SIMD16<Int32>()
        var ky = 0
        while ky < kernelRows {
            total &+= (sums + ky &* 64).loadUnaligned(as: SIMD16<Int32>.self)
            ky &+= 1
        }
        return total
    }
}

/// Packs channels `c ..< c + active` (`active` ≤ 16; lanes past it get zero weights)
/// of HWIO `weights` into `scratch` (see the file comment).
@inline(__always)
private func packConvBlockQ8(_ weights: UnsafePointer<Int8>, window w: Window2D, channel c: Int, active: Int,
                             into scratch: UnsafeMutableRawPointer) -> PackedBlockQ8 {
    let cout = w.outputChannels
    let taps = w.kernelWidth &* w.inputChannels
    let quadsPerRow = (taps &+ 3) / 4
    let sums = scratch
    let quads = scratch + w.kernelHeight &* 64
    let ones = SIMD8<Int32>(repeating: 0x0101_0101)
    var out = quads
    var ky = 0
    while ky < w.kernelHeight {
        var sumLow = SIMD8<Int32>(), sumHigh = SIMD8<Int32>()
        let first = weights + (ky &* taps &* cout &+ c)
        var t = 0
        while t < taps {
            let row = first + t &* cout
            if t &+ 4 <= taps && active == 16 {
                // A whole quad of 16 channels: the byte transpose of KernelDotQ8.swift.
                let (low, high) = quadRows16(row, step: cout)
                out.storeBytes(of: low, as: SIMD8<Int32>.self)
                (out + 32).storeBytes(of: high, as: SIMD8<Int32>.self)
            } else {
                // The row's last 1–3 taps, or a block of fewer than 16 channels (whose
                // weight rows must not be read past channel c + active): byte by byte.
                var l = 0
                while l < 16 {
                    var k = 0
                    while k < 4 {
                        let value: Int8 = t &+ k < taps && l < active ? row[k &* cout &+ l] : 0
                        out.storeBytes(of: value, toByteOffset: 4 &* l &+ k, as: Int8.self)
                        k &+= 1
                    }
                    l &+= 1
                }
            }
            // Σ w of the quad per channel: its 4 bytes times 1 each.
            sumLow = quadDot(sumLow, inputs: ones, weights: out.loadUnaligned(as: SIMD8<Int32>.self))
            sumHigh = quadDot(sumHigh, inputs: ones, weights: (out + 32).loadUnaligned(as: SIMD8<Int32>.self))
            out += 64
            t &+= 4
        }
        let sum = sums + ky &* 64
        sum.storeBytes(of: sumLow, as: SIMD8<Int32>.self)
        (sum + 32).storeBytes(of: sumHigh, as: SIMD8<Int32>.self)
        ky &+= 1
    }
    return PackedBlockQ8(sums: UnsafeRawPointer(sums), quads: UnsafeRawPointer(quads), quadsPerRow: quadsPerRow)
}

/// `pointer[0 ..< active]` in lanes 0 ..< active (`active` ≤ 16) and `padding` in the
/// rest, reading nothing past `pointer + active`.
@inline(__always)
func loadLanes(_ pointer: UnsafePointer<Int32>, active: Int, padding: Int32) -> SIMD16<Int32> {
    if active == 16 { return loadLanes(pointer) }
    return loadPartialLanes(pointer, active: active, padding: padding)
}

/// `loadLanes(_:active:padding:)` below 16 lanes, through a stack buffer.
///
/// Not inlined, on purpose. Inlined at -O (swift-frontend 6.3.1), the vector read back
/// from the buffer came out wrong: KernelQ8Tests' odd-channel cases failed in a release
/// build and passed in debug. Building the vector lane by lane instead (a lane store, or
/// the 16-scalar initializer) crashes the compiler in IRGen. One call per block.
@inline(never)
private func loadPartialLanes(_ pointer: UnsafePointer<Int32>, active: Int, padding: Int32) -> SIMD16<Int32> {
    var lanes = InlineArray<16, Int32>(repeating: padding)
    var l = 0
    while l < active && l < 16 { lanes[l] = pointer[l]; l &+= 1 }
    return withUnsafeBytes(of: &lanes) { $0.loadUnaligned(as: SIMD16<Int32>.self) }
}

/// `conv2dQ8` from packed weights. Returns false, having written nothing, when the
/// packs and the band do not fit the scratch; the caller then runs Conv2D.swift's tiles.
func conv2dPackedQ8(input: UnsafePointer<Int8>, inputZeroPoint: Int32, weights: UnsafePointer<Int8>,
                    bias: UnsafePointer<Int32>?, output: UnsafeMutablePointer<Int8>,
                    window w: Window2D, requant: RequantQ8) -> Bool {
    let cout = w.outputChannels
    let band = PackedBand(w)
    let packBytes = PackedBlockQ8.bytes(kernelRows: w.kernelHeight, quads: (w.kernelWidth &* w.inputChannels &+ 3) / 4)
    let single = packBytes &+ band.bytes
    let paired = cout > 16 && wideTiles && single &+ packBytes <= MemoryLayout<PackedConvScratch>.size
    let need = paired ? single &+ packBytes : single
    guard cout > 0 && w.outputHeight > 0 && w.outputWidth > 0 && need <= MemoryLayout<PackedConvScratch>.size,
          inputZeroPoint >= -128 && inputZeroPoint <= 127 else { return false }
    let layer = PackedLayerQ8(input: input, zeroPoint: Int8(truncatingIfNeeded: inputZeroPoint), weights: weights,
                              bias: bias, output: output, window: w, requant: requant, band: band)
    let body = { (base: UnsafeMutableRawPointer) in
        let bandBase = (base + 2 &* packBytes).assumingMemoryBound(to: Int8.self)
        // Blocks of 16 channels (in pairs when `paired`), or one of all of them below 16.
        var block = 0
        while let c = cout < 16 ? (block == 0 ? 0 : nil) : channelBlock(block, width: 16, count: cout) {
            let first = layer.channels(c, active: cout < 16 ? cout : 16,
                                       packed: packConvBlockQ8(weights, window: w, channel: c,
                                                               active: cout < 16 ? cout : 16, into: base))
            if paired, let next = channelBlock(block &+ 1, width: 16, count: cout) {
                let second = layer.channels(next, active: 16,
                                            packed: packConvBlockQ8(weights, window: w, channel: next, active: 16,
                                                                    into: base + packBytes))
                layer.run(first, second, paired: true, band: bandBase)
                block &+= 2
            } else {
                layer.run(first, first, paired: false, band: bandBase)
                block &+= 1
            }
        }
    }
    // The band sits after room for two packs in either scratch.
    if 2 &* packBytes &+ band.bytes <= MemoryLayout<SmallPackScratch>.size {
        withPackScratch(SmallPackScratch.self, body)
    } else if 2 &* packBytes &+ band.bytes <= MemoryLayout<PackedConvScratch>.size {
        withPackScratch(PackedConvScratch.self, body)
    } else {
        return false
    }
    return true
}

/// Runs `body` on a zeroed stack scratch of `count` 64-byte vectors.
@inline(__always)
private func withPackScratch<let count: Int>(_: InlineArray<count, SIMD16<Int32>>.Type,
                                             _ body: (UnsafeMutableRawPointer) -> Void) {
    var scratch = InlineArray<count, SIMD16<Int32>>(repeating: SIMD16())
    withUnsafeMutableBytes(of: &scratch) { buffer in
        if let base = buffer.baseAddress { body(base) }
    }
}

/// Whether the tiles take two blocks at once (`packedTileWide`): with AVX-512's 32 vector
/// registers only (its 16 accumulators, 4 weight vectors and 4 inputs would spill from
/// AVX-VNNI's 16).
var wideTiles: Bool {
    #if SPRIG_ISA_AVX512_VNNI
    return true
    #else
    return false
    #endif
}

/// The band of one output row: its KH input rows, from input column −padLeft, as many
/// columns as the row's last tile of 4 pixels reads, outside the input the zero point.
struct PackedBand {
    /// Input pixels per band row: (⌈OW / 4⌉·4 − 1)·strideWidth + KW.
    let columns: Int
    /// Bytes per band row (`columns`·Cin).
    let rowBytes: Int
    /// Bytes of the band: KH rows, then 64 bytes of slack for the padded quads' over-read.
    let bytes: Int

    init(_ w: Window2D) {
        let tiled = (w.outputWidth &+ 3) / 4 &* 4
        columns = (tiled &- 1) &* w.strideWidth &+ w.kernelWidth
        rowBytes = columns &* w.inputChannels
        bytes = w.kernelHeight &* rowBytes &+ 64
    }
}

/// One packed block and what its pixels start from.
struct PackedChannels {
    /// Its first channel.
    var channel: Int
    var packed: PackedBlockQ8
    /// bias − (zp + packedInputOffset)·Σ w over every tap.
    var initial: SIMD16<Int32>
    var epilogue: PackedEpilogue
}

/// One call of `conv2dPackedQ8`: the layer's pointers and geometry.
private struct PackedLayerQ8 {
    let input: UnsafePointer<Int8>
    let zeroPoint: Int8
    let weights: UnsafePointer<Int8>
    let bias: UnsafePointer<Int32>?
    let output: UnsafeMutablePointer<Int8>
    let window: Window2D
    let requant: RequantQ8
    let band: PackedBand

    /// The block at channel `c`, with its tiles' initial value and its epilogue.
    func channels(_ c: Int, active: Int, packed: PackedBlockQ8) -> PackedChannels {
        var biasVector = SIMD16<Int32>()
        if let bias { biasVector = loadLanes(bias + c, active: active, padding: 0) }
        let offset = SIMD16<Int32>(repeating: Int32(zeroPoint) &+ packedInputOffset)
        let stage = OutputStageQ8(zeroPoint: requant.outputZeroPoint, clampMin: requant.clampMin,
                                  clampMax: requant.clampMax)
        return PackedChannels(channel: c, packed: packed,
                              initial: biasVector &- offset &* packed.weightSum(kernelRows: window.kernelHeight),
                              epilogue: PackedEpilogue(requant, channel: c, active: active, stage: stage,
                                                       outputEnd: output + window.outputHeight &* window.outputWidth
                                                           &* window.outputChannels))
    }

    /// Copies the KH input rows of output row `oy` into `band`, the zero point outside the input.
    func fill(_ band: UnsafeMutablePointer<Int8>, oy: Int) {
        let w = window
        let cin = w.inputChannels
        let rowBytes = self.band.rowBytes
        // Band column b is input column b − padLeft: the input's columns are those from
        // max(0, padLeft) to min(columns, padLeft + W).
        let left = w.padLeft < 0 ? 0 : (w.padLeft > self.band.columns ? self.band.columns : w.padLeft)
        let rightEdge = w.padLeft &+ w.inputWidth
        let right = rightEdge < left ? left : (rightEdge > self.band.columns ? self.band.columns : rightEdge)
        var r = 0
        while r < w.kernelHeight {
            let row = band + r &* rowBytes
            let iy = oy &* w.strideHeight &- w.padTop &+ r
            if iy < 0 || iy >= w.inputHeight || right == left {
                row.update(repeating: zeroPoint, count: rowBytes)
            } else {
                row.update(repeating: zeroPoint, count: left &* cin)
                (row + left &* cin).update(from: input + (iy &* w.inputWidth &+ left &- w.padLeft) &* cin,
                                           count: (right &- left) &* cin)
                (row + right &* cin).update(repeating: zeroPoint, count: (self.band.columns &- right) &* cin)
            }
            r &+= 1
        }
    }

    /// Every output pixel of one block, or of two when `paired` (`second`,
    /// `packedTileWide`). (Not an optional `second`: binding one copied the block's
    /// kilobyte of constants at every tile.)
    func run(_ first: borrowing PackedChannels, _ second: borrowing PackedChannels, paired: Bool,
             band: UnsafeMutablePointer<Int8>) {
        let w = window
        if w.kernelHeight == 1 && w.kernelWidth == 1 && w.strideHeight == 1 && w.strideWidth == 1
            && w.padTop == 0 && w.padLeft == 0 && w.outputHeight == w.inputHeight && w.outputWidth == w.inputWidth {
            runPointwise(first, second, paired: paired, band: band)
            return
        }
        let cout = w.outputChannels
        let pixelStep = w.strideWidth &* w.inputChannels
        var oy = 0
        while oy < w.outputHeight {
            fill(band, oy: oy)
            var ox = 0
            while ox < w.outputWidth {
                let count = w.outputWidth &- ox < 4 ? w.outputWidth &- ox : 4
                let start = UnsafePointer(band + ox &* pixelStep)
                let out = output + (oy &* w.outputWidth &+ ox) &* cout
                if paired {
                    packedTileWide(first.packed, second.packed, input: start, pixelStep: pixelStep,
                                   rowStride: self.band.rowBytes, tapRows: w.kernelHeight,
                                   initial: (first.initial, second.initial),
                                   output: (out + first.channel, out + second.channel), outputPixelStep: cout,
                                   count: count, epilogue: (first.epilogue, second.epilogue))
                } else {
                    packedTile(first.packed, input: start, pixelStep: pixelStep, rowStride: self.band.rowBytes,
                               tapRows: w.kernelHeight, initial: first.initial, output: out + first.channel,
                               outputPixelStep: cout, count: count, epilogue: first.epilogue)
                }
                ox &+= 4
            }
            oy &+= 1
        }
    }
}

extension PackedLayerQ8 {
    /// `run` for a pointwise conv (1×1, stride 1, no padding): the H·W pixels are one row,
    /// and the tiles read the input where it is, without a band. A tile reads
    /// 3·Cin + 4·Q bytes from its first pixel (Q quads per pixel, the last one padded with
    /// zero weights); the input's last tiles, whose reads would pass its end, read a copy
    /// of the pixels left, padded with the zero point, from the band (at least 4·Cin + 64
    /// bytes). Bytes past the pixels a tile stores are either other pixels of the input
    /// or the padding, and meet zero weights or lanes that are not stored, so the outputs
    /// are those of the band.
    func runPointwise(_ first: borrowing PackedChannels, _ second: borrowing PackedChannels, paired: Bool,
                      band: UnsafeMutablePointer<Int8>) {
        let w = window
        let cin = w.inputChannels, cout = w.outputChannels
        let pixels = w.outputHeight &* w.outputWidth
        let inputBytes = pixels &* cin
        let reach = 3 &* cin &+ 4 &* first.packed.quadsPerRow
        var p = 0
        while p < pixels {
            let count = pixels &- p < 4 ? pixels &- p : 4
            var start = input + p &* cin
            if p &* cin &+ reach > inputBytes {
                let rest = inputBytes &- p &* cin
                band.update(from: start, count: rest)
                (band + rest).update(repeating: zeroPoint, count: reach &- rest)
                start = UnsafePointer(band)
            }
            let out = output + p &* cout
            if paired {
                packedTileWide(first.packed, second.packed, input: start, pixelStep: cin, rowStride: 0, tapRows: 1,
                               initial: (first.initial, second.initial),
                               output: (out + first.channel, out + second.channel), outputPixelStep: cout,
                               count: count, epilogue: (first.epilogue, second.epilogue))
            } else {
                packedTile(first.packed, input: start, pixelStep: cin, rowStride: 0, tapRows: 1,
                           initial: first.initial, output: out + first.channel, outputPixelStep: cout,
                           count: count, epilogue: first.epilogue)
            }
            p &+= 4
        }
    }
}

/// The requantization and output stage of 16 lanes at once (one zmm per step with
/// AVX-512): lane-wise `stage(Requant8.apply(x))` of Conv2D.swift's tiles, with what
/// depends only on the channel worked out once per block (the masks of
/// `roundingDivideByPOT`, and whether any channel shifts left). The narrow, small-K
/// layers (a 1×1 conv of 10 channels) spend more time here than in their products.
struct PackedEpilogue {
    let multiplier: SIMD16<Int32>
    /// The odd lanes' multipliers in the low halves of 64-bit lanes (see `apply`).
    let multiplierOdd: SIMD8<Int64>
    let leftShift: SIMD16<Int32>
    let anyLeftShift: Bool
    /// The rounding of even and odd lanes in 64 bits (see `apply`): K, S and 31 + e.
    let roundEven: SIMD8<Int64>, roundOdd: SIMD8<Int64>
    let negativeEven: SIMD8<Int64>, negativeOdd: SIMD8<Int64>
    let shiftEven: SIMD8<Int64>, shiftOdd: SIMD8<Int64>
    let stage: OutputStageQ8
    /// Whether `apply` corrects the rounding of negative products: not when the output
    /// stage's lower bound is ≥ 0 (a ReLU), which clamps every such lane either way (`apply`).
    let correctsNegatives: Bool
    let lower: SIMD16<Int32>
    let upper: SIMD16<Int32>
    let zeroPoint: SIMD16<Int32>
    /// Channels stored per pixel (16, or Cout below 16).
    let active: Int
    /// One past the output tensor's last byte.
    let outputEnd: UnsafeMutablePointer<Int8>

    /// Channels `c ..< c + active`; the lanes past `active` get a valid multiplier (2^30,
    /// shift 0) and are not stored.
    init(_ requant: RequantQ8, channel c: Int, active: Int, stage: OutputStageQ8,
         outputEnd: UnsafeMutablePointer<Int8>) {
        self.outputEnd = outputEnd
        let shift = loadLanes(requant.shifts + c, active: active, padding: 0)
        let zero = SIMD16<Int32>()
        multiplier = loadLanes(requant.multipliers + c, active: active, padding: 1 << 30)
        multiplierOdd = unsafeBitCast(multiplier, to: SIMD8<Int64>.self) &>> 32
        leftShift = shift.replacing(with: zero, where: shift .< zero)
        // (Not `any(shift .> zero)`: swift-frontend 6.3.1 crashes emitting it here.)
        var left = false
        var l = 0
        while l < active { left = left || requant.shifts[c &+ l] > 0; l &+= 1 }
        anyLeftShift = left
        let right = unsafeBitCast((zero &- shift).replacing(with: zero, where: shift .> zero), to: SIMD8<Int64>.self)
        let rightEven = (right &<< 32) &>> 32, rightOdd = right &>> 32
        let none = SIMD8<Int64>(repeating: 0), one = SIMD8<Int64>(repeating: 1)
        roundEven = (one &<< 30) &+ (one &<< (rightEven &+ 30)).replacing(with: none, where: rightEven .< one)
        roundOdd = (one &<< 30) &+ (one &<< (rightOdd &+ 30)).replacing(with: none, where: rightOdd .< one)
        negativeEven = (one &<< 31).replacing(with: none, where: rightEven .< one)
        negativeOdd = (one &<< 31).replacing(with: none, where: rightOdd .< one)
        shiftEven = rightEven &+ 31
        shiftOdd = rightOdd &+ 31
        self.stage = stage
        correctsNegatives = !stage.clampsNegatives
        lower = SIMD16(repeating: stage.lower)
        upper = SIMD16(repeating: stage.upper)
        zeroPoint = SIMD16(repeating: stage.zeroPoint)
        self.active = active
    }

    /// Stores the first `active` lanes of `bytes` (from `apply`) at `output`.
    // @_transparent: with @inline(__always) the optimizer left both this and `apply` as
    // calls inside the tiles (a fifth of a MobileNet's int8 time went to the call).
    @_transparent
    func store(_ bytes: SIMD16<Int8>, _ output: UnsafeMutablePointer<Int8>) {
        // Below 16 channels all 16 lanes are stored too, where they stay inside the output:
        // the lanes past `active` land on the next pixels' first channels, which are
        // written after this one (rows, tiles and pixels go in increasing address order,
        // and there is one block), so only the last pixel or two store lane by lane.
        if active == 16 || output + 16 <= outputEnd {
            storeLanes(bytes, output)
        } else {
            var l = 0
            while l < active { output[l] = bytes[l]; l &+= 1 }
        }
    }

    /// `stage(multiplyByQuantizedMultiplier(x))` lane by lane, as Requant8 and
    /// OutputStageQ8 compute it, with its two roundings in one 64-bit step.
    ///
    /// Requant8 forms P = x·M (x after its left shift; M is never Int32.min, see
    /// `roundingDoublingHighMul(_:byMultiplier:)`), then h = ⌊(P + 2^30) / 2^31⌋ (Int32,
    /// exact), then `roundingDivideByPOT(h, e)`, which for e ≥ 1 is
    /// ⌊(h + 2^(e−1) − [h < 0]) / 2^e⌋ and for e = 0 is h. Nested floors of divisions by
    /// positive integers merge (⌊(⌊a/b⌋ + c)/d⌋ = ⌊(a + c·b)/(b·d)⌋ for integer c), and
    /// h < 0 exactly when P < −2^30, so
    ///
    ///     result = (P + K − [P < −2^30]·S) >> (31 + e)      (arithmetic, Int64)
    ///     K = 2^30 + 2^(30+e), S = 2^31 for e ≥ 1;  K = 2^30, S = 0 for e = 0.
    ///
    /// |P| ≤ 2^62 and K < 2^62, so nothing wraps. KernelQ8Tests compares every path
    /// with the naive loop, extreme multipliers and shifts included.
    ///
    /// Without the correction (`correctsNegatives` false) a lane with P < −2^30 gets
    /// ⌊(P + K) / 2^(31+e)⌋ ≤ 0 (P + K < 2^(30+e)) where the exact value is
    /// `roundingDivideByPOT(h, e)` ≤ 0 (h < 0); with a lower bound ≥ 0 the clamp turns both
    /// into that bound, so the output bytes are the same.
    @_transparent
    func apply<N: NegativeRounding>(_ x: SIMD16<Int32>, _: N.Type) -> SIMD16<Int8> {
        let shifted = anyLeftShift ? x &<< leftShift : x
        let a64 = unsafeBitCast(shifted, to: SIMD8<Int64>.self), b64 = unsafeBitCast(multiplier, to: SIMD8<Int64>.self)
        // vpmuldq of even lanes (sign-extended in place) and of odd lanes (shifted down).
        // Both in one form, low 32 bits sign-extended on each side: written as
        // `(a64 >> 32) * (b64 >> 32)`, most odd products became vpmullq (3 µops, latency 15).
        let even = ((a64 &<< 32) &>> 32) &* ((b64 &<< 32) &>> 32)
        let odd = (((a64 &>> 32) &<< 32) &>> 32) &* ((multiplierOdd &<< 32) &>> 32)
        let limit = SIMD8<Int64>(repeating: -(1 << 30))
        let evenSum = even &+ roundEven, oddSum = odd &+ roundOdd
        let evenResult: SIMD8<Int64>, oddResult: SIMD8<Int64>
        if N.corrects {
            evenResult = evenSum.replacing(with: evenSum &- negativeEven, where: even .< limit) &>> shiftEven
            oddResult = oddSum.replacing(with: oddSum &- negativeOdd, where: odd .< limit) &>> shiftOdd
        } else {
            evenResult = evenSum &>> shiftEven
            oddResult = oddSum &>> shiftOdd
        }
        let r = unsafeBitCast((evenResult & 0xFFFF_FFFF) | (oddResult &<< 32), to: SIMD16<Int32>.self)
        // max, then min: vpmaxsd and vpminsd (as OutputStageQ8 orders them).
        let raised = r.replacing(with: lower, where: r .< lower)
        let clamped = raised.replacing(with: upper, where: upper .< raised) &+ zeroPoint
        // Narrowed by halves: LLVM keeps a 16-lane narrowing as byte inserts (vpmovdb each here).
        let (low, high) = halves(clamped)
        return unsafeBitCast((narrowLanes(low), narrowLanes(high)), to: SIMD16<Int8>.self)
    }
}


/// The two halves of `v`, and `joined` back: bit casts, because in these large
/// functions the optimizer left the stdlib's `lowHalf`, `highHalf` and
/// `init(lowHalf:highHalf:)` as calls (see KernelSupport.swift on stdlib SIMD helpers).
@inline(__always)
func halves(_ v: SIMD16<Int32>) -> (SIMD8<Int32>, SIMD8<Int32>) {
    unsafeBitCast(v, to: (SIMD8<Int32>, SIMD8<Int32>).self)
}

@inline(__always)
func joined(_ low: SIMD8<Int32>, _ high: SIMD8<Int32>) -> SIMD16<Int32> {
    unsafeBitCast((low, high), to: SIMD16<Int32>.self)
}

/// 4 output pixels × one block: `tapRows` kernel rows of the band, pixel p reading
/// `input + p·pixelStep` and writing `output + p·outputPixelStep` for p < `count`;
/// `initial` = bias − (zp + packedInputOffset)·Σ w. Eight ymm accumulators, pixels 0...3 × channels
/// 0 ..< 8 (l) and 8 ..< 16 (h); per quad two weight loads, four input quads and eight
/// vpdpbusd.
@inline(never)
private func packedTile(_ block: PackedBlockQ8, input: UnsafePointer<Int8>, pixelStep: Int, rowStride: Int,
                        tapRows: Int, initial: SIMD16<Int32>, output: UnsafeMutablePointer<Int8>,
                        outputPixelStep: Int, count: Int, epilogue: PackedEpilogue) {
    if epilogue.correctsNegatives {
        packedTile(block, input: input, pixelStep: pixelStep, rowStride: rowStride, tapRows: tapRows, initial: initial,
                   output: output, outputPixelStep: outputPixelStep, count: count, epilogue: epilogue,
                   rounding: RoundsNegatives.self)
    } else {
        packedTile(block, input: input, pixelStep: pixelStep, rowStride: rowStride, tapRows: tapRows, initial: initial,
                   output: output, outputPixelStep: outputPixelStep, count: count, epilogue: epilogue,
                   rounding: ClampsNegatives.self)
    }
}

/// `packedTile` with the epilogue's rounding of negative products fixed.
@inline(__always)
private func packedTile<N: NegativeRounding>(_ block: PackedBlockQ8, input: UnsafePointer<Int8>, pixelStep: Int,
                                             rowStride: Int, tapRows: Int, initial: SIMD16<Int32>,
                                             output: UnsafeMutablePointer<Int8>, outputPixelStep: Int, count: Int,
                                             epilogue: PackedEpilogue, rounding: N.Type) {
    var (a0l, a0h) = halves(initial)
    var a1l = a0l, a2l = a0l, a3l = a0l, a1h = a0h, a2h = a0h, a3h = a0h
    var wp = block.quads
    var r = 0
    while r < tapRows {
        let p0 = input + r &* rowStride
        let p1 = p0 + pixelStep, p2 = p1 + pixelStep, p3 = p2 + pixelStep
        var j = 0
        var n = 0
        while n < block.quadsPerRow {
            let wl = wp.loadUnaligned(as: SIMD8<Int32>.self), wh = (wp + 32).loadUnaligned(as: SIMD8<Int32>.self)
            let x0 = packedInputQuad(p0 + j), x1 = packedInputQuad(p1 + j), x2 = packedInputQuad(p2 + j), x3 = packedInputQuad(p3 + j)
            a0l = quadDot(a0l, inputs: x0, weights: wl); a0h = quadDot(a0h, inputs: x0, weights: wh)
            a1l = quadDot(a1l, inputs: x1, weights: wl); a1h = quadDot(a1h, inputs: x1, weights: wh)
            a2l = quadDot(a2l, inputs: x2, weights: wl); a2h = quadDot(a2h, inputs: x2, weights: wh)
            a3l = quadDot(a3l, inputs: x3, weights: wl); a3h = quadDot(a3h, inputs: x3, weights: wh)
            wp += 64
            j &+= 4
            n &+= 1
        }
        r &+= 1
    }
    // Every pixel's requantization first, then the stores: in one basic block, LLVM sees
    // that the multiplier's odd lanes are sign-extended and multiplies with vpmuldq; with a
    // branch before each pixel, the later ones took vpmullq (3 µops, latency 15).
    let step = outputPixelStep
    let r0 = epilogue.apply(joined(a0l, a0h), N.self), r1 = epilogue.apply(joined(a1l, a1h), N.self)
    let r2 = epilogue.apply(joined(a2l, a2h), N.self), r3 = epilogue.apply(joined(a3l, a3h), N.self)
    epilogue.store(r0, output)
    if count > 1 { epilogue.store(r1, output + step) }
    if count > 2 { epilogue.store(r2, output + 2 &* step) }
    if count > 3 { epilogue.store(r3, output + 3 &* step) }
}

/// `packedTile` for two blocks `a` and `b` at once (`wideTiles`): sixteen ymm
/// accumulators, and per quad four weight loads, four input quads and sixteen vpdpbusd,
/// so that each input quad feeds four products instead of two.
@inline(never)
private func packedTileWide(_ a: PackedBlockQ8, _ b: PackedBlockQ8, input: UnsafePointer<Int8>, pixelStep: Int,
                            rowStride: Int, tapRows: Int, initial: (SIMD16<Int32>, SIMD16<Int32>),
                            output: (UnsafeMutablePointer<Int8>, UnsafeMutablePointer<Int8>), outputPixelStep: Int,
                            count: Int, epilogue: (PackedEpilogue, PackedEpilogue)) {
    // Both blocks have the layer's output stage, so the same `correctsNegatives`.
    if epilogue.0.correctsNegatives {
        packedTileWide(a, b, input: input, pixelStep: pixelStep, rowStride: rowStride, tapRows: tapRows,
                       initial: initial, output: output, outputPixelStep: outputPixelStep, count: count,
                       epilogue: epilogue, rounding: RoundsNegatives.self)
    } else {
        packedTileWide(a, b, input: input, pixelStep: pixelStep, rowStride: rowStride, tapRows: tapRows,
                       initial: initial, output: output, outputPixelStep: outputPixelStep, count: count,
                       epilogue: epilogue, rounding: ClampsNegatives.self)
    }
}

/// `packedTileWide` with the epilogue's rounding of negative products fixed.
@inline(__always)
private func packedTileWide<N: NegativeRounding>(_ a: PackedBlockQ8, _ b: PackedBlockQ8, input: UnsafePointer<Int8>,
                                                 pixelStep: Int, rowStride: Int, tapRows: Int,
                                                 initial: (SIMD16<Int32>, SIMD16<Int32>),
                                                 output: (UnsafeMutablePointer<Int8>, UnsafeMutablePointer<Int8>),
                                                 outputPixelStep: Int, count: Int,
                                                 epilogue: (PackedEpilogue, PackedEpilogue), rounding: N.Type) {
    var (a0l, a0h) = halves(initial.0), (b0l, b0h) = halves(initial.1)
    var a1l = a0l, a2l = a0l, a3l = a0l, a1h = a0h, a2h = a0h, a3h = a0h
    var b1l = b0l, b2l = b0l, b3l = b0l, b1h = b0h, b2h = b0h, b3h = b0h
    var wa = a.quads, wb = b.quads
    var r = 0
    while r < tapRows {
        let p0 = input + r &* rowStride
        let p1 = p0 + pixelStep, p2 = p1 + pixelStep, p3 = p2 + pixelStep
        var j = 0
        var n = 0
        while n < a.quadsPerRow {
            let wal = wa.loadUnaligned(as: SIMD8<Int32>.self), wah = (wa + 32).loadUnaligned(as: SIMD8<Int32>.self)
            let wbl = wb.loadUnaligned(as: SIMD8<Int32>.self), wbh = (wb + 32).loadUnaligned(as: SIMD8<Int32>.self)
            let x0 = packedInputQuad(p0 + j), x1 = packedInputQuad(p1 + j), x2 = packedInputQuad(p2 + j), x3 = packedInputQuad(p3 + j)
            a0l = quadDot(a0l, inputs: x0, weights: wal); a0h = quadDot(a0h, inputs: x0, weights: wah)
            b0l = quadDot(b0l, inputs: x0, weights: wbl); b0h = quadDot(b0h, inputs: x0, weights: wbh)
            a1l = quadDot(a1l, inputs: x1, weights: wal); a1h = quadDot(a1h, inputs: x1, weights: wah)
            b1l = quadDot(b1l, inputs: x1, weights: wbl); b1h = quadDot(b1h, inputs: x1, weights: wbh)
            a2l = quadDot(a2l, inputs: x2, weights: wal); a2h = quadDot(a2h, inputs: x2, weights: wah)
            b2l = quadDot(b2l, inputs: x2, weights: wbl); b2h = quadDot(b2h, inputs: x2, weights: wbh)
            a3l = quadDot(a3l, inputs: x3, weights: wal); a3h = quadDot(a3h, inputs: x3, weights: wah)
            b3l = quadDot(b3l, inputs: x3, weights: wbl); b3h = quadDot(b3h, inputs: x3, weights: wbh)
            wa += 64
            wb += 64
            j &+= 4
            n &+= 1
        }
        r &+= 1
    }
    let (ea, eb) = epilogue
    let (oa, ob) = output
    let step = outputPixelStep
    // Every requantization first, then the stores (see `packedTile`).
    let ra0 = ea.apply(joined(a0l, a0h), N.self), rb0 = eb.apply(joined(b0l, b0h), N.self)
    let ra1 = ea.apply(joined(a1l, a1h), N.self), rb1 = eb.apply(joined(b1l, b1h), N.self)
    let ra2 = ea.apply(joined(a2l, a2h), N.self), rb2 = eb.apply(joined(b2l, b2h), N.self)
    let ra3 = ea.apply(joined(a3l, a3h), N.self), rb3 = eb.apply(joined(b3l, b3h), N.self)
    ea.store(ra0, oa)
    eb.store(rb0, ob)
    if count > 1 {
        ea.store(ra1, oa + step)
        eb.store(rb1, ob + step)
    }
    if count > 2 {
        ea.store(ra2, oa + 2 &* step)
        eb.store(rb2, ob + 2 &* step)
    }
    if count > 3 {
        ea.store(ra3, oa + 3 &* step)
        eb.store(rb3, ob + 3 &* step)
    }
}

#endif
