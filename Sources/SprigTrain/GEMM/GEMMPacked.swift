// gemmPacked: the single-threaded fast path of sgemm (Goto/BLIS blocking).
//
//   for jc in 0..<n step NC                      C column block; B block lives in L3
//     for pc in 0..<k step KC                    one rank-KC update
//       pack op(B)[pc..][jc..] -> Bp             KC×NC, as NR-wide column panels, zero padded
//       for ic in 0..<m step MC
//         pack alpha·op(A)[ic..][pc..] -> Ap     MC×KC, as MR-tall row panels, zero padded; L2
//         for jr in 0..<nc step NR               one B micro-panel (KC×NR = 16 KB) stays in L1
//           for ir in 0..<mc step MR
//             C[MR×NR] (+)= Ap panel · Bp panel  the 6×16 micro-kernel, 12 ymm accumulators
//
// Packed layouts:  Ap panel r: Ap[r*MR*KC + p*MR + i] = alpha·op(A)[ic + r*MR + i][pc + p]
//                  Bp panel s: Bp[s*NR*KC + p*NR + j] = op(B)[pc + p][jc + s*NR + j]
// Transposes and alpha are absorbed by packing, so the micro-kernel sees one layout only.
// beta is applied by the first rank-KC update (pc == 0); later updates add into C. Edge tiles
// (fewer than MR rows or NR columns left) run the same kernel into a 6×16 scratch tile and copy
// back the valid part, so odd shapes need no second kernel.
//
// FMA: with AVX2+FMA (see Package.swift), `SIMD16<Float>.addProduct` lowers to two vfmadd231ps
// per row; `acc = acc + a * b` does not (Swift does not contract): measured 100 against 60 GFLOP/s.

enum GEMMPacked {
    static let mr = 6
    static let nr = 16
    static let kc = 256
    static let mc = 144
    static let nc = 3072
}

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
    let kcMax = min(GEMMPacked.kc, k)
    let mcMax = min(GEMMPacked.mc, (m + MR - 1) / MR * MR)
    let ncMax = min(GEMMPacked.nc, (n + NR - 1) / NR * NR)
    let packA = UnsafeMutableRawPointer.allocate(byteCount: mcMax * kcMax * 4, alignment: 64)
        .bindMemory(to: Float.self, capacity: mcMax * kcMax)
    let packB = UnsafeMutableRawPointer.allocate(byteCount: ncMax * kcMax * 4, alignment: 64)
        .bindMemory(to: Float.self, capacity: ncMax * kcMax)
    defer {
        packA.deallocate()
        packB.deallocate()
    }
    withUnsafeTemporaryAllocation(of: Float.self, capacity: MR * NR) { edgeBuffer in
        let edge = edgeBuffer.baseAddress!
        var jc = 0
        while jc < n {
            let nc = min(GEMMPacked.nc, n - jc)
            var pc = 0
            while pc < k {
                let kc = min(GEMMPacked.kc, k - pc)
                let blockBeta: Float = pc == 0 ? beta : 1
                packPanelsB(transB: transB, b: b, ldb: ldb, row: pc, kc: kc, column: jc, nc: nc, into: packB)
                var ic = 0
                while ic < m {
                    let mc = min(GEMMPacked.mc, m - ic)
                    packPanelsA(transA: transA, a: a, lda: lda, row: ic, mc: mc, column: pc, kc: kc,
                                alpha: alpha, into: packA)
                    var jr = 0
                    while jr < nc {
                        let nr = min(NR, nc - jr)
                        let bPanel = UnsafePointer(packB + jr * kc)
                        var ir = 0
                        while ir < mc {
                            let mr = min(MR, mc - ir)
                            let aPanel = UnsafePointer(packA + ir * kc)
                            let cTile = c + (ic + ir) * ldc + (jc + jr)
                            if mr == MR && nr == NR {
                                microKernel6x16(kc: kc, a: aPanel, b: bPanel, c: cTile, ldc: ldc, beta: blockBeta)
                            } else {
                                microKernel6x16(kc: kc, a: aPanel, b: bPanel, c: edge, ldc: NR, beta: 0)
                                for i in 0..<mr {
                                    for j in 0..<nr {
                                        let v = edge[i * NR + j]
                                        let dst = cTile + i * ldc + j
                                        if blockBeta == 0 {
                                            dst.pointee = v
                                        } else if blockBeta == 1 {
                                            dst.pointee = dst.pointee + v
                                        } else {
                                            dst.pointee = blockBeta * dst.pointee + v
                                        }
                                    }
                                }
                            }
                            ir += MR
                        }
                        jr += NR
                    }
                    ic += GEMMPacked.mc
                }
                pc += GEMMPacked.kc
            }
            jc += GEMMPacked.nc
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
                for p in 0..<kc {
                    let o = panel + p * MR
                    o[0] = alpha * r0[p]; o[1] = alpha * r1[p]; o[2] = alpha * r2[p]
                    o[3] = alpha * r3[p]; o[4] = alpha * r4[p]; o[5] = alpha * r5[p]
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
            for p in 0..<kc {
                let src = a + (column + p) * lda + row + ir
                let o = panel + p * MR
                for i in 0..<MR { o[i] = i < rows ? alpha * src[i] : 0 }
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
            // Rows of B are contiguous: one 16-wide copy per p.
            if cols == NR {
                for p in 0..<kc {
                    let src = UnsafeRawPointer(b + (row + p) * ldb + column + jr)
                    UnsafeMutableRawPointer(panel + p * NR).storeBytes(of: src.loadUnaligned(as: SIMD16<Float>.self),
                                                                       as: SIMD16<Float>.self)
                }
            } else {
                for p in 0..<kc {
                    let src = b + (row + p) * ldb + column + jr
                    let o = panel + p * NR
                    for j in 0..<NR { o[j] = j < cols ? src[j] : 0 }
                }
            }
        } else {
            // op(B) columns are rows of B: read each contiguously, scatter with stride NR.
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
