// gemmPacked: the single-threaded fast path of sgemm (Goto/BLIS blocking).
//
//   for jc in 0..<n step NC                      C column block
//     for pc in 0..<k step kc                    one rank-kc update; k is cut into equal blocks ≤ KC
//       pack op(B)[pc..][jc..] -> Bp             kc×NC, as NR-wide column panels, zero padded
//       for ic in 0..<m step MC
//         pack alpha·op(A)[ic..][pc..] -> Ap     MC×kc, as MR-tall row panels, zero padded; L2
//         for jr in 0..<nc step NR               one B micro-panel (kc×NR ≤ 16 KB) stays in L1
//           for ir in 0..<mc step MR
//             C[MR×NR] (+)= Ap panel · Bp panel  the 6×16 micro-kernel, 12 ymm accumulators
//                                                (6×32 with AVX-512: 12 zmm)
//
// When the whole op(B) column block fits in L2 (conv and dense weights), it is packed once and
// the pc loop moves inside the ic loop, so a C row block stays in cache across its updates.
//
// Packed layouts:  Ap panel r: Ap[r*MR*kc + p*MR + i] = alpha·op(A)[ic + r*MR + i][pc + p]
//                  Bp panel s: Bp[s*NR*kc + p*NR + j] = op(B)[pc + p][jc + s*NR + j]
// Transposes and alpha are absorbed by packing, so the micro-kernel sees one layout only.
// beta is applied by the first rank-kc update (pc == 0); later updates add into C. Edge tiles
// (fewer than MR rows or NR columns left) run the same kernel into a 6×16 scratch tile and copy
// back the valid part, so odd shapes need no second kernel.
//
// FMA: with AVX2+FMA (see Package.swift), `SIMD16<Float>.addProduct` lowers to two vfmadd231ps
// per row; `acc = acc + a * b` does not (Swift does not contract): measured 100 against 60 GFLOP/s.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum GEMMPacked {
    static let mr = 6
    /// Columns of the micro-kernel: 16 with AVX2 (6×16: 12 ymm accumulators), 32 with AVX-512
    /// (6×32: 12 zmm accumulators, as many independent FMA chains). The order of every C
    /// element's sum over k is the same either way, so the results are too.
    #if SPRIG_ISA_AVX512_VNNI
    static let nr = 32
    #else
    static let nr = 16
    #endif
    static let kc = 256
    static let mc = 144
    static let nc = 3072
    /// Largest op(B) column block packed whole (all depth blocks at once): 768 KB, most of L2.
    static let wholeBFloats = 196_608
}

/// A thread's memory for the packed panels, grown when a call needs more and kept for the
/// next: allocated per call, the panels of a 256³ product (0.4 MB) came from mmap and were
/// zero-filled page by page on first touch, a fifth of the call (88 against 110 GFLOP/s on
/// an AMD EPYC, Zen 4). At most one `gemmPacked` runs on a thread at a time, so one buffer per
/// thread is enough; the thread's exit frees it.
private final class PackScratch {
    private var base: UnsafeMutableRawPointer?
    private var capacity = 0

    /// At least `bytes` bytes, 64-byte aligned; the contents are not kept when it grows.
    func reserve(_ bytes: Int) -> UnsafeMutableRawPointer {
        if let base, bytes <= capacity { return base }
        base?.deallocate()
        let grown = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
        base = grown
        capacity = max(bytes, 64)
        return grown
    }

    deinit { base?.deallocate() }

    /// The calling thread's scratch (a pthread key; created on first use).
    static var ofThisThread: PackScratch {
        if let raw = pthread_getspecific(packScratchKey) {
            return Unmanaged<PackScratch>.fromOpaque(raw).takeUnretainedValue()
        }
        let scratch = PackScratch()
        pthread_setspecific(packScratchKey, Unmanaged.passRetained(scratch).toOpaque())
        return scratch
    }
}

/// The key of `PackScratch.ofThisThread`; its destructor releases a thread's scratch at exit.
private let packScratchKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { raw in
        if let raw { Unmanaged<PackScratch>.fromOpaque(raw).release() }
    }
    return key
}()

/// One thread of sgemm: see the loop nest above. Callers guarantee `m, n > 0` and valid strides.
func gemmPacked(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                alpha: Float, a: UnsafePointer<Float>, lda: Int,
                b: UnsafePointer<Float>, ldb: Int,
                beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    let MR = GEMMPacked.mr, NR = GEMMPacked.nr
    if m == 0 || n == 0 { return }
    if k == 0 || alpha == 0 {
        scaleMatrix(c, ldc: ldc, m: m, n: n, beta: beta)
        return
    }
    // Depth blocks of equal size (288 = 2×144, not 256 + 32: a thin last block wastes C traffic).
    let kBlocks = (k + GEMMPacked.kc - 1) / GEMMPacked.kc
    let kcMax = (k + kBlocks - 1) / kBlocks
    let mcMax = min(GEMMPacked.mc, (m + MR - 1) / MR * MR)
    let ncMax = min(GEMMPacked.nc, (n + NR - 1) / NR * NR)
    // When all of op(B)'s column block fits in L2 next to an A block (conv weights), pack it whole
    // once and run the depth loop inside the row loop, so each C row block stays in cache for all
    // its rank-kc updates instead of streaming C through memory once per depth block.
    let wholeB = kBlocks > 1 && kBlocks * kcMax * ncMax <= GEMMPacked.wholeBFloats
    let bFloats = (wholeB ? kBlocks : 1) * kcMax * ncMax
    // The packs live in this thread's scratch, kept between calls (`PackScratch`).
    let aBytes = (mcMax * kcMax * 4 + 63) / 64 * 64
    let scratch = PackScratch.ofThisThread.reserve(aBytes + bFloats * 4)
    let packA = scratch.bindMemory(to: Float.self, capacity: mcMax * kcMax)
    let packB = (scratch + aBytes).bindMemory(to: Float.self, capacity: bFloats)
    var jc = 0
    while jc < n {
        let nc = min(GEMMPacked.nc, n - jc)
        if wholeB {
            for block in 0..<kBlocks {
                let pc = block * kcMax
                packPanelsB(transB: transB, b: b, ldb: ldb, row: pc, kc: min(kcMax, k - pc), column: jc, nc: nc,
                            into: packB + block * kcMax * ncMax)
            }
            var ic = 0
            while ic < m {
                let mc = min(GEMMPacked.mc, m - ic)
                for block in 0..<kBlocks {
                    let pc = block * kcMax, kc = min(kcMax, k - pc)
                    packPanelsA(transA: transA, a: a, lda: lda, row: ic, mc: mc, column: pc, kc: kc, alpha: alpha, into: packA)
                    macroKernel(mc: mc, nc: nc, kc: kc, packA: packA, packB: packB + block * kcMax * ncMax,
                                c: c + ic * ldc + jc, ldc: ldc, beta: pc == 0 ? beta : 1)
                }
                ic += GEMMPacked.mc
            }
        } else {
            var pc = 0
            while pc < k {
                let kc = min(kcMax, k - pc)
                packPanelsB(transB: transB, b: b, ldb: ldb, row: pc, kc: kc, column: jc, nc: nc, into: packB)
                var ic = 0
                while ic < m {
                    let mc = min(GEMMPacked.mc, m - ic)
                    packPanelsA(transA: transA, a: a, lda: lda, row: ic, mc: mc, column: pc, kc: kc, alpha: alpha, into: packA)
                    macroKernel(mc: mc, nc: nc, kc: kc, packA: packA, packB: packB,
                                c: c + ic * ldc + jc, ldc: ldc, beta: pc == 0 ? beta : 1)
                    ic += GEMMPacked.mc
                }
                pc += kcMax
            }
        }
        jc += GEMMPacked.nc
    }
}

/// `C[mc][nc] (+)= Ap · Bp` for one packed A block and one packed B block: the micro-kernel
/// over every MR×NR tile; edge tiles go through `edgeTile`.
@inline(__always)
func macroKernel(mc: Int, nc: Int, kc: Int, packA: UnsafeMutablePointer<Float>, packB: UnsafeMutablePointer<Float>,
                 c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float) {
    let MR = GEMMPacked.mr, NR = GEMMPacked.nr
    var jr = 0
    while jr < nc {
        let nr = min(NR, nc - jr)
        let bPanel = UnsafePointer(packB + jr * kc)
        var ir = 0
        while ir < mc {
            let mr = min(MR, mc - ir)
            let aPanel = UnsafePointer(packA + ir * kc)
            if mr == MR && nr == NR {
                microKernel(kc: kc, a: aPanel, b: bPanel, c: c + ir * ldc + jr, ldc: ldc, beta: beta)
            } else {
                edgeTile(rows: mr, columns: nr, kc: kc, a: aPanel, b: bPanel, c: c + ir * ldc + jr, ldc: ldc, beta: beta)
            }
            ir += MR
        }
        jr += NR
    }
}

/// A tile with fewer than MR rows or NR columns: the same kernel into a 6×16 scratch tile,
/// then the valid part is merged into C with beta.
@inline(never)
func edgeTile(rows: Int, columns: Int, kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
              c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float) {
    let NR = GEMMPacked.nr
    withUnsafeTemporaryAllocation(of: Float.self, capacity: GEMMPacked.mr * NR) { edgeBuffer in
        let edge = edgeBuffer.baseAddress!
        microKernel(kc: kc, a: a, b: b, c: edge, ldc: NR, beta: 0)
        for i in 0..<rows {
            for j in 0..<columns {
                let v = edge[i * NR + j]
                let dst = c + i * ldc + j
                if beta == 0 {
                    dst.pointee = v
                } else if beta == 1 {
                    dst.pointee = dst.pointee + v
                } else {
                    dst.pointee = beta * dst.pointee + v
                }
            }
        }
    }
}

/// `C = beta·C` (beta 0 writes zeros without reading C).
func scaleMatrix(_ c: UnsafeMutablePointer<Float>, ldc: Int, m: Int, n: Int, beta: Float) {
    if beta == 1 { return }
    for i in 0..<m {
        let row = c + i * ldc
        if beta == 0 {
            row.update(repeating: 0, count: n)
        } else {
            for j in 0..<n { row[j] = beta * row[j] }
        }
    }
}

/// Packs `alpha·op(A)[row..<row+mc][column..<column+kc]` as MR-tall panels (see the legend).
@inline(__always)
func packPanelsA(transA: Bool, a: UnsafePointer<Float>, lda: Int, row: Int, mc: Int, column: Int, kc: Int,
                 alpha: Float, into dst: UnsafeMutablePointer<Float>) {
    let MR = GEMMPacked.mr
    var ir = 0
    while ir < mc {
        let rows = min(MR, mc - ir)
        let panel = dst + ir * kc
        if !transA {
            // Rows of A are contiguous: walk MR rows side by side, write MR-wide columns.
            if rows == MR {
                let r0 = a + (row + ir) * lda + column
                let r1 = r0 + lda, r2 = r1 + lda, r3 = r2 + lda, r4 = r3 + lda, r5 = r4 + lda
                if alpha == 1 {
                    for p in 0..<kc {
                        let o = panel + p * MR
                        o[0] = r0[p]; o[1] = r1[p]; o[2] = r2[p]
                        o[3] = r3[p]; o[4] = r4[p]; o[5] = r5[p]
                    }
                } else {
                    for p in 0..<kc {
                        let o = panel + p * MR
                        o[0] = alpha * r0[p]; o[1] = alpha * r1[p]; o[2] = alpha * r2[p]
                        o[3] = alpha * r3[p]; o[4] = alpha * r4[p]; o[5] = alpha * r5[p]
                    }
                }
            } else {
                for i in 0..<MR {
                    if i < rows {
                        let src = a + (row + ir + i) * lda + column
                        for p in 0..<kc { panel[p * MR + i] = alpha * src[p] }
                    } else {
                        for p in 0..<kc { panel[p * MR + i] = 0 }
                    }
                }
            }
        } else {
            // Columns of op(A) are rows of A: MR contiguous values per p.
            if rows == MR && alpha == 1 {
                for p in 0..<kc {
                    let src = UnsafeRawPointer(a + (column + p) * lda + row + ir)
                    let o = UnsafeMutableRawPointer(panel + p * MR)
                    o.storeBytes(of: src.loadUnaligned(as: SIMD4<Float>.self), as: SIMD4<Float>.self)
                    o.storeBytes(of: src.loadUnaligned(fromByteOffset: 16, as: SIMD2<Float>.self), toByteOffset: 16, as: SIMD2<Float>.self)
                }
            } else {
                for p in 0..<kc {
                    let src = a + (column + p) * lda + row + ir
                    let o = panel + p * MR
                    for i in 0..<MR { o[i] = i < rows ? alpha * src[i] : 0 }
                }
            }
        }
        ir += MR
    }
}

/// Packs `op(B)[row..<row+kc][column..<column+nc]` as NR-wide panels (see the legend).
@inline(__always)
func packPanelsB(transB: Bool, b: UnsafePointer<Float>, ldb: Int, row: Int, kc: Int, column: Int, nc: Int,
                 into dst: UnsafeMutablePointer<Float>) {
    let NR = GEMMPacked.nr
    var jr = 0
    while jr < nc {
        let cols = min(NR, nc - jr)
        let panel = dst + jr * kc
        if !transB {
            // Rows of B are contiguous: NR/16 16-wide copies per p.
            if cols == NR {
                for p in 0..<kc {
                    let src = UnsafeRawPointer(b + (row + p) * ldb + column + jr)
                    let dst = UnsafeMutableRawPointer(panel + p * NR)
                    var q = 0
                    while q < NR {
                        dst.storeBytes(of: src.loadUnaligned(fromByteOffset: 4 * q, as: SIMD16<Float>.self),
                                       toByteOffset: 4 * q, as: SIMD16<Float>.self)
                        q += 16
                    }
                }
            } else {
                for p in 0..<kc {
                    let src = b + (row + p) * ldb + column + jr
                    let o = panel + p * NR
                    for j in 0..<NR { o[j] = j < cols ? src[j] : 0 }
                }
            }
        } else if cols == NR {
            // op(B) columns are rows of B: 8×8 blocks (8 columns j, 8 depths p) transposed in
            // registers, so each store writes 8 contiguous panel values; the last kc % 8 depths
            // one by one. Only moves values: the panel is the scalar loop's below, bit for bit.
            var p = 0
            while p + 8 <= kc {
                var j = 0
                while j < NR {
                    transpose8x8(b + (column + jr + j) * ldb + row + p, stride: ldb, into: panel + p * NR + j, stride: NR)
                    j += 8
                }
                p += 8
            }
            if p < kc {
                for j in 0..<NR {
                    let src = b + (column + jr + j) * ldb + row
                    for q in p..<kc { panel[q * NR + j] = src[q] }
                }
            }
        } else {
            // The last, partial panel: read each column contiguously, scatter with stride NR.
            for j in 0..<NR {
                if j < cols {
                    let src = b + (column + jr + j) * ldb + row
                    for p in 0..<kc { panel[p * NR + j] = src[p] }
                } else {
                    for p in 0..<kc { panel[p * NR + j] = 0 }
                }
            }
        }
        jr += NR
    }
}

/// `dst[q·dstStride + i] = src[i·srcStride + q]` for i, q in 0..<8: one 8×8 block transposed.
///
/// Three rounds of "evens of each row pair, then odds" (the inverse perfect shuffle of the 64
/// values, which rotates an element's 6-bit index r₂r₁r₀c₂c₁c₀ right by one) take row-major
/// index 8r + c to 8c + r. Loads may be unaligned.
@inline(__always)
func transpose8x8(_ src: UnsafePointer<Float>, stride srcStride: Int,
                  into dst: UnsafeMutablePointer<Float>, stride dstStride: Int) {
    @inline(__always)
    func load(_ i: Int) -> SIMD8<Float> { UnsafeRawPointer(src + i * srcStride).loadUnaligned(as: SIMD8<Float>.self) }
    @inline(__always)
    func unshuffle(_ v: inout (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>,
                                SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)) {
        let p0 = SIMD16(lowHalf: v.0, highHalf: v.1), p1 = SIMD16(lowHalf: v.2, highHalf: v.3)
        let p2 = SIMD16(lowHalf: v.4, highHalf: v.5), p3 = SIMD16(lowHalf: v.6, highHalf: v.7)
        v = (p0.evenHalf, p1.evenHalf, p2.evenHalf, p3.evenHalf, p0.oddHalf, p1.oddHalf, p2.oddHalf, p3.oddHalf)
    }
    var v = (load(0), load(1), load(2), load(3), load(4), load(5), load(6), load(7))
    unshuffle(&v)
    unshuffle(&v)
    unshuffle(&v)
    let out = UnsafeMutableRawPointer(dst)
    out.storeBytes(of: v.0, as: SIMD8<Float>.self)
    out.storeBytes(of: v.1, toByteOffset: 4 * dstStride, as: SIMD8<Float>.self)
    out.storeBytes(of: v.2, toByteOffset: 8 * dstStride, as: SIMD8<Float>.self)
    out.storeBytes(of: v.3, toByteOffset: 12 * dstStride, as: SIMD8<Float>.self)
    out.storeBytes(of: v.4, toByteOffset: 16 * dstStride, as: SIMD8<Float>.self)
    out.storeBytes(of: v.5, toByteOffset: 20 * dstStride, as: SIMD8<Float>.self)
    out.storeBytes(of: v.6, toByteOffset: 24 * dstStride, as: SIMD8<Float>.self)
    out.storeBytes(of: v.7, toByteOffset: 28 * dstStride, as: SIMD8<Float>.self)
}

/// The micro-kernel of `GEMMPacked.nr` columns.
@inline(__always)
func microKernel(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                 c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float) {
    #if SPRIG_ISA_AVX512_VNNI
    microKernel6x32(kc: kc, a: a, b: b, c: c, ldc: ldc, beta: beta)
    #else
    microKernel6x16(kc: kc, a: a, b: b, c: c, ldc: ldc, beta: beta)
    #endif
}

/// `microKernel6x16` for 32 columns: twelve zmm accumulators (6 rows × 2 halves), two B
/// loads and six broadcasts per step.
@inline(__always)
func microKernel6x32(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                     c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float) {
    var c0 = SIMD16<Float>(), c1 = SIMD16<Float>(), c2 = SIMD16<Float>()
    var c3 = SIMD16<Float>(), c4 = SIMD16<Float>(), c5 = SIMD16<Float>()
    var d0 = SIMD16<Float>(), d1 = SIMD16<Float>(), d2 = SIMD16<Float>()
    var d3 = SIMD16<Float>(), d4 = SIMD16<Float>(), d5 = SIMD16<Float>()
    var ap = a
    var bp = UnsafeRawPointer(b)
    for _ in 0..<kc {
        let bl = bp.load(as: SIMD16<Float>.self), bh = bp.load(fromByteOffset: 64, as: SIMD16<Float>.self)
        let x0 = SIMD16(repeating: ap[0]), x1 = SIMD16(repeating: ap[1]), x2 = SIMD16(repeating: ap[2])
        let x3 = SIMD16(repeating: ap[3]), x4 = SIMD16(repeating: ap[4]), x5 = SIMD16(repeating: ap[5])
        c0.addProduct(x0, bl); d0.addProduct(x0, bh)
        c1.addProduct(x1, bl); d1.addProduct(x1, bh)
        c2.addProduct(x2, bl); d2.addProduct(x2, bh)
        c3.addProduct(x3, bl); d3.addProduct(x3, bh)
        c4.addProduct(x4, bl); d4.addProduct(x4, bh)
        c5.addProduct(x5, bl); d5.addProduct(x5, bh)
        ap += 6
        bp += 128
    }
    storeRow(c0, c, beta); storeRow(d0, c + 16, beta)
    storeRow(c1, c + ldc, beta); storeRow(d1, c + ldc + 16, beta)
    storeRow(c2, c + 2 * ldc, beta); storeRow(d2, c + 2 * ldc + 16, beta)
    storeRow(c3, c + 3 * ldc, beta); storeRow(d3, c + 3 * ldc + 16, beta)
    storeRow(c4, c + 4 * ldc, beta); storeRow(d4, c + 4 * ldc + 16, beta)
    storeRow(c5, c + 5 * ldc, beta); storeRow(d5, c + 5 * ldc + 16, beta)
}

/// `C[6][16] = A panel · B panel + beta·C` over `kc` steps (beta 0: C is not read).
///
/// `a` holds 6 values per step, `b` 16 values per step (64-byte aligned, from the packers).
/// Twelve ymm accumulators (6 rows × 2 halves), two B loads and six broadcasts per step.
@inline(__always)
func microKernel6x16(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                     c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float) {
    var c0 = SIMD16<Float>(), c1 = SIMD16<Float>(), c2 = SIMD16<Float>()
    var c3 = SIMD16<Float>(), c4 = SIMD16<Float>(), c5 = SIMD16<Float>()
    var ap = a
    var bp = UnsafeRawPointer(b)
    for _ in 0..<kc {
        let bv = bp.load(as: SIMD16<Float>.self)
        c0.addProduct(SIMD16(repeating: ap[0]), bv)
        c1.addProduct(SIMD16(repeating: ap[1]), bv)
        c2.addProduct(SIMD16(repeating: ap[2]), bv)
        c3.addProduct(SIMD16(repeating: ap[3]), bv)
        c4.addProduct(SIMD16(repeating: ap[4]), bv)
        c5.addProduct(SIMD16(repeating: ap[5]), bv)
        ap += 6
        bp += 64
    }
    storeRow(c0, c, beta)
    storeRow(c1, c + ldc, beta)
    storeRow(c2, c + 2 * ldc, beta)
    storeRow(c3, c + 3 * ldc, beta)
    storeRow(c4, c + 4 * ldc, beta)
    storeRow(c5, c + 5 * ldc, beta)
}

@inline(__always)
private func storeRow(_ acc: SIMD16<Float>, _ c: UnsafeMutablePointer<Float>, _ beta: Float) {
    let raw = UnsafeMutableRawPointer(c)
    if beta == 0 {
        raw.storeBytes(of: acc, as: SIMD16<Float>.self)
    } else if beta == 1 {
        raw.storeBytes(of: raw.loadUnaligned(as: SIMD16<Float>.self) + acc, as: SIMD16<Float>.self)
    } else {
        raw.storeBytes(of: beta * raw.loadUnaligned(as: SIMD16<Float>.self) + acc, as: SIMD16<Float>.self)
    }
}
