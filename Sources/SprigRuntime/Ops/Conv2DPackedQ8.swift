// Conv2D int8 from packed weights: the path `conv2dQ8` takes in a build with VNNI.
//
// vpdpbusd wants, per 32-bit lane (one output channel), the weights of 4 consecutive
// taps side by side, where HWIO keeps one tap's channels side by side. The tiles of
// Conv2D.swift transpose 4 weight rows into that order for every tile of 4 pixels
// (`quadRows16`), and the pixel path for every pixel, so on the nets Sprig makes the
// shuffles, not the products, set the time (int8 ran slower than Float32). Here one
// channel block's weights are put in that order once per call, into a scratch on the
// stack, and every pixel of the block is computed from it:
//
//   for each channel block of 16 lanes, the last one moved back to end at Cout
//   (`channelBlock`); below 16 channels one block whose lanes past Cout have zero
//   weights and are not stored:
//     pack the block (below), then
//     1. horizontal tiles: 4 consecutive interior columns of one row, rows clipped,
//     2. vertical tiles: 4 consecutive interior rows of one other column, columns clipped,
//     3. every other pixel alone, clipped both ways.
//
// A block's pack: the taps of one kernel row are cut into groups, each group into quads
// of 4 taps, the last quad of a group padded with zero weights:
//
//   by column  one group per kx, of Cin taps (kx, 0 ..< Cin); any column clipping
//              skips whole groups, so tiles of both kinds and single pixels use it;
//   by row     one group of the whole row, KW·Cin taps; for Cin ≤ 2 only, where it
//              pads less (3×3 with Cin = 1: 3 quads a row against 9), and for
//              horizontal tiles only (their windows are never clipped in columns).
//
//   sums   [KH][groups]      L Int32: Σ w over the group, per channel (for the
//                             zero-point term: bias − (zp + 128)·Σ w over the valid taps)
//   quads  [KH][groups][Q]   L × 4 bytes: byte 4l + k = w[ky][tap 4q + k of the group][c + l]
//
// Reading a padded quad reads up to 3 input bytes past the group's last tap: the next
// pixel's, or the next row's, which the zero weights cancel. Past the end of the input
// they would be outside the tensor, so a window whose reads reach past its end is
// computed by `conv2dPixelQ8` instead (`PackedReach`): the last one or two pixels of a
// layer at most.
//
// The sums are exact in wrapping Int32 as in Conv2D.swift, so the outputs are bit for bit
// those of the naive loop (KernelQ8Tests compares them on every path). Without VNNI this
// file is empty: the portable tiles of Conv2D.swift run everywhere else.
#if arch(x86_64) && SPRIG_ISA_VNNI
import SprigISA

/// The stack scratch of the packs: 48 KiB, one block of a 3×3 conv of up to 336 input
/// channels, or two side by side up to 160 (`packedTileWide`). A layer whose block needs
/// more takes Conv2D.swift's tiles.
typealias PackedConvScratch = InlineArray<768, SIMD16<Int32>>

/// How one kernel row's taps are grouped in a pack (see the file comment).
struct PackedGrouping {
    /// Taps per group: Cin (by column) or KW·Cin (by row).
    var taps: Int
    /// Groups per kernel row: KW or 1.
    var groups: Int
    /// Quads per group, ⌈taps / 4⌉.
    var quads: Int
    /// Input elements from one group's first tap to the next one's (Cin).
    var inputStride: Int

    init(taps: Int, groups: Int, inputStride: Int) {
        self.taps = taps
        self.groups = groups
        quads = (taps &+ 3) / 4
        self.inputStride = inputStride
    }

    /// Bytes of a pack of one block and `kernelRows` rows: sums, then quads (64 bytes each).
    func bytes(kernelRows: Int) -> Int {
        kernelRows &* groups &* 64 &* (1 &+ quads)
    }
}

/// One packed channel block: where its sums and quads are.
struct PackedBlockQ8 {
    var grouping: PackedGrouping
    /// `[KH][groups]` vectors of 16 Int32.
    var sums: UnsafeRawPointer
    /// `[KH][groups][quads]` of 64 bytes.
    var quads: UnsafeRawPointer

    /// Bytes from one kernel row's quads to the next's.
    var quadRowBytes: Int { grouping.groups &* grouping.quads &* 64 }
    /// Bytes of one group's quads.
    var groupBytes: Int { grouping.quads &* 64 }

    /// Σ w of every lane over kernel rows `rows` and groups `groups`.
    @inline(__always)
    func weightSum(rows: (first: Int, end: Int), groups: (first: Int, end: Int)) -> SIMD16<Int32> {
        var total = SIMD16<Int32>()
        var ky = rows.first
        while ky < rows.end {
            var g = groups.first
            while g < groups.end {
                total &+= (sums + (ky &* grouping.groups &+ g) &* 64).loadUnaligned(as: SIMD16<Int32>.self)
                g &+= 1
            }
            ky &+= 1
        }
        return total
    }
}

/// Packs channels `c ..< c + active` (`active` ≤ 16; lanes past it get zero weights)
/// of HWIO `weights` into `scratch` as `grouping` says (see the file comment) and
/// returns where each part went.
@inline(__always)
private func packConvBlockQ8(_ weights: UnsafePointer<Int8>, window w: Window2D, channel c: Int, active: Int,
                             grouping: PackedGrouping, into scratch: UnsafeMutableRawPointer) -> PackedBlockQ8 {
    let cout = w.outputChannels
    let kyStride = w.kernelWidth &* w.inputChannels &* cout
    let sums = scratch
    let quads = scratch + w.kernelHeight &* grouping.groups &* 64
    let ones = SIMD8<Int32>(repeating: 0x0101_0101)
    var out = quads
    var ky = 0
    while ky < w.kernelHeight {
        var g = 0
        while g < grouping.groups {
            var sumLow = SIMD8<Int32>(), sumHigh = SIMD8<Int32>()
            let first = weights + (ky &* kyStride &+ g &* grouping.taps &* cout &+ c)
            var t = 0
            while t < grouping.taps {
                let row = first + t &* cout
                if t &+ 4 <= grouping.taps && active == 16 {
                    // A whole quad of 16 channels: the byte transpose of KernelDotQ8.swift.
                    let (low, high) = quadRows16(row, step: cout)
                    out.storeBytes(of: low, as: SIMD8<Int32>.self)
                    (out + 32).storeBytes(of: high, as: SIMD8<Int32>.self)
                } else {
                    // The group's last 1–3 taps, or a block of fewer than 16 channels
                    // (whose rows must not be read past channel c + active): byte by byte.
                    var l = 0
                    while l < 16 {
                        var k = 0
                        while k < 4 {
                            let value: Int8 = t &+ k < grouping.taps && l < active ? row[k &* cout &+ l] : 0
                            out.storeBytes(of: value, toByteOffset: 4 &* l &+ k, as: Int8.self)
                            k &+= 1
                        }
                        l &+= 1
                    }
                }
                // Σ w of the quad per channel: its 4 bytes times 1 each.
                sumLow = dotBytes(sumLow, unsigned: ones, signed: out.loadUnaligned(as: SIMD8<Int32>.self))
                sumHigh = dotBytes(sumHigh, unsigned: ones, signed: (out + 32).loadUnaligned(as: SIMD8<Int32>.self))
                out += 64
                t &+= 4
            }
            let sum = sums + (ky &* grouping.groups &+ g) &* 64
            sum.storeBytes(of: sumLow, as: SIMD8<Int32>.self)
            (sum + 32).storeBytes(of: sumHigh, as: SIMD8<Int32>.self)
            g &+= 1
        }
        ky &+= 1
    }
    return PackedBlockQ8(grouping: grouping, sums: UnsafeRawPointer(sums), quads: UnsafeRawPointer(quads))
}

/// Whether a window's packed reads stay inside the input: its last read is the 4th
/// byte of its last quad, in its last valid kernel row.
struct PackedReach {
    /// One past the input's last element.
    let end: UnsafePointer<Int8>

    /// - Parameters:
    ///   - first: the window's first valid tap (its first valid row and group).
    ///   - lastPixel: `first` of the last pixel of the tile (the same for one pixel).
    @inline(__always)
    func fits(lastPixel: UnsafePointer<Int8>, tapRows: Int, rowStride: Int, groups: Int,
              grouping: PackedGrouping) -> Bool {
        guard tapRows > 0 && groups > 0 else { return true }
        let lastQuad = (groups &- 1) &* grouping.inputStride &+ (grouping.quads &- 1) &* 4
        return lastPixel + ((tapRows &- 1) &* rowStride &+ lastQuad &+ 4) <= end
    }
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

/// `conv2dQ8` from packed weights. Returns false, having written nothing, when a
/// block is larger than the scratch; the caller then runs Conv2D.swift's tiles.
func conv2dPackedQ8(input: UnsafePointer<Int8>, inputZeroPoint: Int32, weights: UnsafePointer<Int8>,
                    bias: UnsafePointer<Int32>?, output: UnsafeMutablePointer<Int8>,
                    window w: Window2D, requant: RequantQ8) -> Bool {
    let cin = w.inputChannels
    let cout = w.outputChannels
    let byColumn = PackedGrouping(taps: cin, groups: w.kernelWidth, inputStride: cin)
    let byRow = PackedGrouping(taps: w.kernelWidth &* cin, groups: 1, inputStride: 0)
    let rowGrouped = cin <= 2 && byRow.quads < byColumn.quads &* w.kernelWidth
    let columnBytes = byColumn.bytes(kernelRows: w.kernelHeight)
    let packBytes = columnBytes &+ (rowGrouped ? byRow.bytes(kernelRows: w.kernelHeight) : 0)
    guard cout > 0 && packBytes <= MemoryLayout<PackedConvScratch>.size else { return false }

    // Two blocks packed side by side when they fit (`packedTileWide`).
    let paired = cout >= 32 && 2 &* packBytes <= MemoryLayout<PackedConvScratch>.size && wideTiles
    let layer = PackedLayerQ8(input: input, zeroPoint: inputZeroPoint, weights: weights, bias: bias,
                              output: output, window: w, requant: requant)
    let body = { (base: UnsafeMutableRawPointer) in
        /// Packs the block at channel `c` into `region` (0 or 1).
        func pack(_ c: Int, active: Int, region: Int) -> PackedChannels {
            let at = base + region &* packBytes
            let columns = packConvBlockQ8(weights, window: w, channel: c, active: active, grouping: byColumn, into: at)
            let rows = rowGrouped
                ? packConvBlockQ8(weights, window: w, channel: c, active: active, grouping: byRow,
                                  into: at + columnBytes)
                : columns
            return layer.channels(c, active: active, byColumn: columns, horizontal: rows)
        }
        // Blocks of 16 channels (in pairs when `paired`), or one of all of them below 16.
        var block = 0
        while let c = cout < 16 ? (block == 0 ? 0 : nil) : channelBlock(block, width: 16, count: cout) {
            let first = pack(c, active: cout < 16 ? cout : 16, region: 0)
            if paired, let next = channelBlock(block &+ 1, width: 16, count: cout) {
                layer.run(first, pack(next, active: 16, region: 1), paired: true, firstBlock: block == 0)
                block &+= 2
            } else {
                layer.run(first, first, paired: false, firstBlock: block == 0)
                block &+= 1
            }
        }
    }
    // The scratch is zeroed on entry (an InlineArray must be initialized): the small one
    // when it is enough.
    let need = paired ? 2 &* packBytes : packBytes
    if need <= MemoryLayout<SmallPackScratch>.size {
        withPackScratch(SmallPackScratch.self, body)
    } else {
        withPackScratch(PackedConvScratch.self, body)
    }
    return true
}

/// The scratch of the small layers: 8 KiB.
typealias SmallPackScratch = InlineArray<128, SIMD16<Int32>>

/// Runs `body` on a zeroed stack scratch of `count` 64-byte vectors.
@inline(__always)
private func withPackScratch<let count: Int>(_: InlineArray<count, SIMD16<Int32>>.Type,
                                             _ body: (UnsafeMutableRawPointer) -> Void) {
    var scratch = InlineArray<count, SIMD16<Int32>>(repeating: SIMD16())
    withUnsafeMutableBytes(of: &scratch) { buffer in
        if let base = buffer.baseAddress { body(base) }
    }
}

/// Whether the horizontal tiles take two blocks at once (`packedTileWide`): with
/// AVX-512's 32 vector registers only (its 16 accumulators, 4 weight vectors and 4
/// inputs would spill from AVX-VNNI's 16).
var wideTiles: Bool {
    #if SPRIG_ISA_AVX512_VNNI
    return true
    #else
    return false
    #endif
}

/// One packed block and what its pixels start from.
struct PackedChannels {
    /// Its first channel.
    var channel: Int
    var byColumn: PackedBlockQ8
    var horizontal: PackedBlockQ8
    var bias: SIMD16<Int32>
    var epilogue: PackedEpilogue
}

/// One call of `conv2dPackedQ8`: the layer's pointers and geometry.
private struct PackedLayerQ8 {
    let input: UnsafePointer<Int8>
    let zeroPoint: Int32
    let weights: UnsafePointer<Int8>
    let bias: UnsafePointer<Int32>?
    let output: UnsafeMutablePointer<Int8>
    let window: Window2D
    let requant: RequantQ8

    /// The block at channel `c` with its bias and epilogue.
    func channels(_ c: Int, active: Int, byColumn: PackedBlockQ8, horizontal: PackedBlockQ8) -> PackedChannels {
        var biasVector = SIMD16<Int32>()
        if let bias { biasVector = loadLanes(bias + c, active: active, padding: 0) }
        let stage = OutputStageQ8(zeroPoint: requant.outputZeroPoint, clampMin: requant.clampMin,
                                  clampMax: requant.clampMax)
        return PackedChannels(channel: c, byColumn: byColumn, horizontal: horizontal, bias: biasVector,
                              epilogue: PackedEpilogue(requant, channel: c, active: active, stage: stage))
    }

    /// Every output pixel of one block, or of two when `paired` (`second`; horizontal
    /// tiles through `packedTileWide`): tiles from `horizontal` (rows clipped) and
    /// `byColumn` (columns clipped), then single pixels from `byColumn`. A window whose
    /// reads would pass the input's end is computed, all channels at once, by
    /// `conv2dPixelQ8` in the first block. (Not an optional `second`: binding one copies
    /// the block's kilobyte of constants at every pixel.)
    func run(_ first: borrowing PackedChannels, _ second: borrowing PackedChannels, paired: Bool, firstBlock: Bool) {
        let w = window
        let cin = w.inputChannels
        let cout = w.outputChannels
        let rowStride = w.inputWidth &* cin
        let reach = PackedReach(end: input + w.inputHeight &* rowStride)
        let offset = SIMD16<Int32>(repeating: zeroPoint &+ 128)
        let columns = interiorOutputs(stride: w.strideWidth, pad: w.padLeft, kernel: w.kernelWidth,
                                      extent: w.inputWidth, outputCount: w.outputWidth)
        let columnsTiledEnd = columns.first &+ (columns.end &- columns.first) / 4 &* 4
        let rows = interiorOutputs(stride: w.strideHeight, pad: w.padTop, kernel: w.kernelHeight,
                                   extent: w.inputHeight, outputCount: w.outputHeight)
        let rowsTiledEnd = rows.first &+ (rows.end &- rows.first) / 4 &* 4
        let grouping = first.horizontal.grouping
        let allGroups = (first: 0, end: grouping.groups)

        var oy = 0
        while oy < w.outputHeight {
            let rowOrigin = oy &* w.strideHeight &- w.padTop
            let taps = validTaps(origin: rowOrigin, kernel: w.kernelHeight, extent: w.inputHeight)
            let tapRows = taps.end &- taps.first
            let rowTiled = oy >= rows.first && oy < rowsTiledEnd
            // 1. Horizontal tiles of this row.
            if columns.first < columnsTiledEnd {
                let initial = first.bias &- offset &* first.horizontal.weightSum(rows: taps, groups: allGroups)
                let secondInitial = second.bias &- offset &* second.horizontal.weightSum(rows: taps, groups: allGroups)
                var ox = columns.first
                while ox < columnsTiledEnd {
                    let start = input + ((rowOrigin &+ taps.first) &* rowStride &+ (ox &* w.strideWidth &- w.padLeft) &* cin)
                    let pixelStep = w.strideWidth &* cin
                    let out = output + (oy &* w.outputWidth &+ ox) &* cout
                    if reach.fits(lastPixel: start + 3 &* pixelStep, tapRows: tapRows, rowStride: rowStride,
                                  groups: allGroups.end, grouping: grouping) {
                        if paired {
                            packedTileWide(first.horizontal, second.horizontal, input: start, pixelStep: pixelStep,
                                           rowStride: rowStride, tapRows: tapRows, firstRow: taps.first,
                                           groups: allGroups, initial: (initial, secondInitial),
                                           output: (out + first.channel, out + second.channel),
                                           outputPixelStep: cout, epilogue: (first.epilogue, second.epilogue))
                        } else {
                            packedTile(first.horizontal, input: start, pixelStep: pixelStep, rowStride: rowStride,
                                       tapRows: tapRows, firstRow: taps.first, groups: allGroups, initial: initial,
                                       output: out + first.channel, outputPixelStep: cout, epilogue: first.epilogue)
                        }
                    } else {
                        var p = 0
                        while p < 4 {
                            pixel(first, firstBlock: firstBlock, oy: oy, ox: ox &+ p, offset: offset, reach: reach)
                            if paired {
                                pixel(second, firstBlock: false, oy: oy, ox: ox &+ p, offset: offset, reach: reach)
                            }
                            p &+= 1
                        }
                    }
                    ox &+= 4
                }
            }
            // 2. and 3. The other columns: vertical tiles on the tiled rows, single pixels elsewhere.
            var ox = 0
            while ox < w.outputWidth {
                if ox >= columns.first && ox < columnsTiledEnd { ox = columnsTiledEnd; continue }
                if rowTiled {
                    if (oy &- rows.first) % 4 == 0 {
                        verticalTile(first, firstBlock: firstBlock, oy: oy, ox: ox, offset: offset, reach: reach)
                        if paired {
                            verticalTile(second, firstBlock: false, oy: oy, ox: ox, offset: offset, reach: reach)
                        }
                    }
                } else {
                    pixel(first, firstBlock: firstBlock, oy: oy, ox: ox, offset: offset, reach: reach)
                    if paired { pixel(second, firstBlock: false, oy: oy, ox: ox, offset: offset, reach: reach) }
                }
                ox &+= 1
            }
            oy &+= 1
        }
    }

    /// The tile of output rows `oy ..< oy + 4` in column `ox` (columns clipped).
    @inline(__always)
    private func verticalTile(_ channels: borrowing PackedChannels, firstBlock: Bool, oy: Int, ox: Int,
                              offset: SIMD16<Int32>, reach: PackedReach) {
        let c = channels.channel, block = channels.byColumn
        let biasVector = channels.bias, epilogue = channels.epilogue
        let w = window
        let cin = w.inputChannels
        let rowStride = w.inputWidth &* cin
        let columnOrigin = ox &* w.strideWidth &- w.padLeft
        let groups = validTaps(origin: columnOrigin, kernel: w.kernelWidth, extent: w.inputWidth)
        let first = input + ((oy &* w.strideHeight &- w.padTop) &* rowStride &+ (columnOrigin &+ groups.first) &* cin)
        let pixelStep = w.strideHeight &* rowStride
        if reach.fits(lastPixel: first + 3 &* pixelStep, tapRows: w.kernelHeight, rowStride: rowStride,
                      groups: groups.end &- groups.first, grouping: block.grouping) {
            let initial = biasVector &- offset &* block.weightSum(rows: (0, w.kernelHeight), groups: groups)
            packedTile(block, input: first, pixelStep: pixelStep, rowStride: rowStride, tapRows: w.kernelHeight,
                       firstRow: 0, groups: groups, initial: initial,
                       output: output + ((oy &* w.outputWidth &+ ox) &* w.outputChannels &+ c),
                       outputPixelStep: w.outputWidth &* w.outputChannels, epilogue: epilogue)
        } else {
            var p = 0
            while p < 4 {
                pixel(channels, firstBlock: firstBlock, oy: oy &+ p, ox: ox, offset: offset, reach: reach)
                p &+= 1
            }
        }
    }

    /// Output pixel (oy, ox), channels `c ..< c + active`, clipped both ways.
    @inline(__always)
    private func pixel(_ channels: borrowing PackedChannels, firstBlock: Bool, oy: Int, ox: Int, offset: SIMD16<Int32>,
                       reach: PackedReach) {
        let c = channels.channel, block = channels.byColumn
        let biasVector = channels.bias, epilogue = channels.epilogue
        let w = window
        let cin = w.inputChannels
        let rowStride = w.inputWidth &* cin
        let rowOrigin = oy &* w.strideHeight &- w.padTop
        let columnOrigin = ox &* w.strideWidth &- w.padLeft
        let rows = validTaps(origin: rowOrigin, kernel: w.kernelHeight, extent: w.inputHeight)
        let groups = validTaps(origin: columnOrigin, kernel: w.kernelWidth, extent: w.inputWidth)
        let first = input + ((rowOrigin &+ rows.first) &* rowStride &+ (columnOrigin &+ groups.first) &* cin)
        guard reach.fits(lastPixel: first, tapRows: rows.end &- rows.first, rowStride: rowStride,
                         groups: groups.end &- groups.first, grouping: block.grouping) else {
            if firstBlock {
                conv2dPixelQ8(input: input, inputZeroPoint: zeroPoint, weights: weights, bias: bias, output: output,
                              window: w, oy: oy, ox: ox, firstChannel: 0, requant: requant,
                              stage: epilogue.stage)
            }
            return
        }
        let initial = biasVector &- offset &* block.weightSum(rows: rows, groups: groups)
        packedPixel(block, input: first, rowStride: rowStride, tapRows: rows.end &- rows.first, firstRow: rows.first,
                    groups: groups, initial: initial,
                    output: output + ((oy &* w.outputWidth &+ ox) &* w.outputChannels &+ c), epilogue: epilogue)
    }
}

/// The requantization and output stage of 16 lanes at once (one zmm per step with
/// AVX-512): lane-wise `stage(Requant8.apply(x))` of Conv2D.swift's tiles, with what
/// depends only on the channel worked out once per block (the masks of
/// `roundingDivideByPOT`, and whether any channel shifts left). The narrow, small-K
/// layers (a 1×1 conv of 10 channels) spend more time here than in their products.
struct PackedEpilogue {
    let multiplier: SIMD16<Int32>
    let leftShift: SIMD16<Int32>
    let anyLeftShift: Bool
    /// The rounding of even and odd lanes in 64 bits (see `apply`): K, S and 31 + e.
    let roundEven: SIMD8<Int64>, roundOdd: SIMD8<Int64>
    let negativeEven: SIMD8<Int64>, negativeOdd: SIMD8<Int64>
    let shiftEven: SIMD8<Int64>, shiftOdd: SIMD8<Int64>
    let stage: OutputStageQ8
    let lower: SIMD16<Int32>
    let upper: SIMD16<Int32>
    let zeroPoint: SIMD16<Int32>
    /// Channels stored per pixel (16, or Cout below 16).
    let active: Int

    /// Channels `c ..< c + active`; the lanes past `active` get a valid multiplier (2^30,
    /// shift 0) and are not stored.
    init(_ requant: RequantQ8, channel c: Int, active: Int, stage: OutputStageQ8) {
        let shift = loadLanes(requant.shifts + c, active: active, padding: 0)
        let zero = SIMD16<Int32>()
        multiplier = loadLanes(requant.multipliers + c, active: active, padding: 1 << 30)
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
        lower = SIMD16(repeating: stage.lower)
        upper = SIMD16(repeating: stage.upper)
        zeroPoint = SIMD16(repeating: stage.zeroPoint)
        self.active = active
    }

    /// Requantizes `x` and stores its first `active` lanes at `output`.
    @inline(__always)
    func store(_ x: SIMD16<Int32>, _ output: UnsafeMutablePointer<Int8>) {
        let bytes = apply(x)
        if active == 16 {
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
    @inline(__always)
    func apply(_ x: SIMD16<Int32>) -> SIMD16<Int8> {
        let shifted = anyLeftShift ? x &<< leftShift : x
        let a64 = unsafeBitCast(shifted, to: SIMD8<Int64>.self), b64 = unsafeBitCast(multiplier, to: SIMD8<Int64>.self)
        // vpmuldq of even lanes (sign-extended in place) and of odd lanes (shifted down).
        let even = ((a64 &<< 32) &>> 32) &* ((b64 &<< 32) &>> 32)
        let odd = (a64 &>> 32) &* (b64 &>> 32)
        let limit = SIMD8<Int64>(repeating: -(1 << 30))
        let evenSum = even &+ roundEven, oddSum = odd &+ roundOdd
        let evenResult = evenSum.replacing(with: evenSum &- negativeEven, where: even .< limit) &>> shiftEven
        let oddResult = oddSum.replacing(with: oddSum &- negativeOdd, where: odd .< limit) &>> shiftOdd
        let r = unsafeBitCast((evenResult & 0xFFFF_FFFF) | (oddResult &<< 32), to: SIMD16<Int32>.self)
        let clamped = r.replacing(with: lower, where: r .< lower).replacing(with: upper, where: r .> upper) &+ zeroPoint
        // Narrowed by halves: LLVM keeps a 16-lane narrowing as byte inserts (vpmovdb each here).
        return SIMD16(lowHalf: narrowLanes(clamped.lowHalf), highHalf: narrowLanes(clamped.highHalf))
    }
}

/// 4 output pixels × one block from its pack: `tapRows` kernel rows from `firstRow`,
/// the groups `groups` of each. Pixel p reads `input + p·pixelStep` (its first valid
/// tap) and writes `output + p·outputPixelStep`; `initial` = bias − (zp + 128)·Σ w.
/// Eight ymm accumulators, pixels 0...3 × channels 0 ..< 8 (l) and 8 ..< 16 (h); per
/// quad two weight loads, four input quads and eight vpdpbusd.
private func packedTile(_ block: PackedBlockQ8, input: UnsafePointer<Int8>, pixelStep: Int, rowStride: Int,
                          tapRows: Int, firstRow: Int, groups: (first: Int, end: Int), initial: SIMD16<Int32>,
                          output: UnsafeMutablePointer<Int8>, outputPixelStep: Int, epilogue: PackedEpilogue) {
    var a0l = initial.lowHalf, a1l = a0l, a2l = a0l, a3l = a0l
    var a0h = initial.highHalf, a1h = a0h, a2h = a0h, a3h = a0h
    let g = block.grouping
    let quadsPerRow = (groups.end &- groups.first) &* g.quads
    var r = 0
    while r < tapRows {
        let p0 = input + r &* rowStride
        let p1 = p0 + pixelStep, p2 = p1 + pixelStep, p3 = p2 + pixelStep
        var wp = block.quads + ((firstRow &+ r) &* block.quadRowBytes &+ groups.first &* block.groupBytes)
        var group = 0
        var q = 0
        var j = 0
        var n = 0
        while n < quadsPerRow {
            let wl = wp.loadUnaligned(as: SIMD8<Int32>.self), wh = (wp + 32).loadUnaligned(as: SIMD8<Int32>.self)
            let x0 = inputQuad8(p0 + j), x1 = inputQuad8(p1 + j), x2 = inputQuad8(p2 + j), x3 = inputQuad8(p3 + j)
            a0l = dotBytes(a0l, unsigned: x0, signed: wl); a0h = dotBytes(a0h, unsigned: x0, signed: wh)
            a1l = dotBytes(a1l, unsigned: x1, signed: wl); a1h = dotBytes(a1h, unsigned: x1, signed: wh)
            a2l = dotBytes(a2l, unsigned: x2, signed: wl); a2h = dotBytes(a2h, unsigned: x2, signed: wh)
            a3l = dotBytes(a3l, unsigned: x3, signed: wl); a3h = dotBytes(a3h, unsigned: x3, signed: wh)
            wp += 64
            n &+= 1
            // The next quad: 4 taps on, or the next group's first.
            q &+= 1
            if q == g.quads { q = 0; group &+= 1; j = group &* g.inputStride } else { j &+= 4 }
        }
        r &+= 1
    }
    let o1 = output + outputPixelStep, o2 = o1 + outputPixelStep, o3 = o2 + outputPixelStep
    epilogue.store(SIMD16(lowHalf: a0l, highHalf: a0h), output)
    epilogue.store(SIMD16(lowHalf: a1l, highHalf: a1h), o1)
    epilogue.store(SIMD16(lowHalf: a2l, highHalf: a2h), o2)
    epilogue.store(SIMD16(lowHalf: a3l, highHalf: a3h), o3)
}

/// `packedTile` for two blocks `a` and `b` at once (`wideTiles`): sixteen ymm
/// accumulators, and per quad four weight loads, four input quads and sixteen vpdpbusd,
/// so that each input quad feeds four products instead of two.
private func packedTileWide(_ a: PackedBlockQ8, _ b: PackedBlockQ8, input: UnsafePointer<Int8>, pixelStep: Int,
                            rowStride: Int, tapRows: Int, firstRow: Int, groups: (first: Int, end: Int),
                            initial: (SIMD16<Int32>, SIMD16<Int32>),
                            output: (UnsafeMutablePointer<Int8>, UnsafeMutablePointer<Int8>), outputPixelStep: Int,
                            epilogue: (PackedEpilogue, PackedEpilogue)) {
    var a0l = initial.0.lowHalf, a1l = a0l, a2l = a0l, a3l = a0l
    var a0h = initial.0.highHalf, a1h = a0h, a2h = a0h, a3h = a0h
    var b0l = initial.1.lowHalf, b1l = b0l, b2l = b0l, b3l = b0l
    var b0h = initial.1.highHalf, b1h = b0h, b2h = b0h, b3h = b0h
    let g = a.grouping
    let quadsPerRow = (groups.end &- groups.first) &* g.quads
    var r = 0
    while r < tapRows {
        let p0 = input + r &* rowStride
        let p1 = p0 + pixelStep, p2 = p1 + pixelStep, p3 = p2 + pixelStep
        let offset = (firstRow &+ r) &* a.quadRowBytes &+ groups.first &* a.groupBytes
        var wa = a.quads + offset, wb = b.quads + offset
        var group = 0
        var q = 0
        var j = 0
        var n = 0
        while n < quadsPerRow {
            let wal = wa.loadUnaligned(as: SIMD8<Int32>.self), wah = (wa + 32).loadUnaligned(as: SIMD8<Int32>.self)
            let wbl = wb.loadUnaligned(as: SIMD8<Int32>.self), wbh = (wb + 32).loadUnaligned(as: SIMD8<Int32>.self)
            let x0 = inputQuad8(p0 + j), x1 = inputQuad8(p1 + j), x2 = inputQuad8(p2 + j), x3 = inputQuad8(p3 + j)
            a0l = dotBytes(a0l, unsigned: x0, signed: wal); a0h = dotBytes(a0h, unsigned: x0, signed: wah)
            b0l = dotBytes(b0l, unsigned: x0, signed: wbl); b0h = dotBytes(b0h, unsigned: x0, signed: wbh)
            a1l = dotBytes(a1l, unsigned: x1, signed: wal); a1h = dotBytes(a1h, unsigned: x1, signed: wah)
            b1l = dotBytes(b1l, unsigned: x1, signed: wbl); b1h = dotBytes(b1h, unsigned: x1, signed: wbh)
            a2l = dotBytes(a2l, unsigned: x2, signed: wal); a2h = dotBytes(a2h, unsigned: x2, signed: wah)
            b2l = dotBytes(b2l, unsigned: x2, signed: wbl); b2h = dotBytes(b2h, unsigned: x2, signed: wbh)
            a3l = dotBytes(a3l, unsigned: x3, signed: wal); a3h = dotBytes(a3h, unsigned: x3, signed: wah)
            b3l = dotBytes(b3l, unsigned: x3, signed: wbl); b3h = dotBytes(b3h, unsigned: x3, signed: wbh)
            wa += 64
            wb += 64
            n &+= 1
            q &+= 1
            if q == g.quads { q = 0; group &+= 1; j = group &* g.inputStride } else { j &+= 4 }
        }
        r &+= 1
    }
    let (ea, eb) = epilogue
    let (oa, ob) = output
    let step = outputPixelStep
    ea.store(SIMD16(lowHalf: a0l, highHalf: a0h), oa); eb.store(SIMD16(lowHalf: b0l, highHalf: b0h), ob)
    ea.store(SIMD16(lowHalf: a1l, highHalf: a1h), oa + step); eb.store(SIMD16(lowHalf: b1l, highHalf: b1h), ob + step)
    ea.store(SIMD16(lowHalf: a2l, highHalf: a2h), oa + 2 &* step)
    eb.store(SIMD16(lowHalf: b2l, highHalf: b2h), ob + 2 &* step)
    ea.store(SIMD16(lowHalf: a3l, highHalf: a3h), oa + 3 &* step)
    eb.store(SIMD16(lowHalf: b3l, highHalf: b3h), ob + 3 &* step)
}

/// One output pixel × one block from its pack (see `packedTile`).
private func packedPixel(_ block: PackedBlockQ8, input: UnsafePointer<Int8>, rowStride: Int, tapRows: Int,
                         firstRow: Int, groups: (first: Int, end: Int), initial: SIMD16<Int32>,
                         output: UnsafeMutablePointer<Int8>, epilogue: PackedEpilogue) {
    var al = initial.lowHalf, ah = initial.highHalf
    let g = block.grouping
    let quadsPerRow = (groups.end &- groups.first) &* g.quads
    var r = 0
    while r < tapRows {
        let p = input + r &* rowStride
        var wp = block.quads + ((firstRow &+ r) &* block.quadRowBytes &+ groups.first &* block.groupBytes)
        var group = 0
        var q = 0
        var j = 0
        var n = 0
        while n < quadsPerRow {
            let x = inputQuad8(p + j)
            al = dotBytes(al, unsigned: x, signed: wp.loadUnaligned(as: SIMD8<Int32>.self))
            ah = dotBytes(ah, unsigned: x, signed: (wp + 32).loadUnaligned(as: SIMD8<Int32>.self))
            wp += 64
            n &+= 1
            q &+= 1
            if q == g.quads { q = 0; group &+= 1; j = group &* g.inputStride } else { j &+= 4 }
        }
        r &+= 1
    }
    epilogue.store(SIMD16(lowHalf: al, highHalf: ah), output)
}

#endif
