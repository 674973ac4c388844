// sgemm: the trainer's matrix multiply. Dense and Conv2D run forward and backward through it.
//
//   C[m][n] = alpha · op(A)[m][k] · op(B)[k][n] + beta · C[m][n]        all row-major
//
//   transA == false: A is stored [m][lda], lda >= k     op(A)[i][p] = A[i*lda + p]
//   transA == true : A is stored [k][lda], lda >= m     op(A)[i][p] = A[p*lda + i]
//   transB == false: B is stored [k][ldb], ldb >= n     op(B)[p][j] = B[p*ldb + j]
//   transB == true : B is stored [n][ldb], ldb >= k     op(B)[p][j] = B[j*ldb + p]
//   C is stored [m][ldc], ldc >= n
//
// Paths: tiny products go to `gemmNaive`; everything else to `gemmPacked` (GEMMPacked.swift),
// split across threads (when large enough, see Parallel.swift) by rows, or by columns when C is
// wide, in whole micro-tiles. Every element
// of C is computed by exactly one thread with the same sequence of operations whatever the thread
// count, so results are bitwise identical for 1 and 2 threads.

/// Settings shared by everything that calls `sgemm`.
public enum GEMM {
    /// Threads a layer uses when it has no `threads` of its own.
    ///
    /// Set it once at startup (the CLI's `--threads`), before training starts: it is read
    /// without synchronisation.
    nonisolated(unsafe) public static var defaultThreads: Int = 2

    /// Products with `m·n·k` below this go to `gemmNaive`.
    static let naiveWork = 2048
}

/// `C = alpha·op(A)·op(B) + beta·C` in Float32, row-major. See the legend at the top of GEMM.swift.
///
/// ```
/// // y[N][Out] = x[N][In] · W[Out][In]ᵀ
/// sgemm(transA: false, transB: true, m: n, n: out, k: inDim,
///       alpha: 1, a: x, lda: inDim, b: w, ldb: inDim, beta: 0, c: y, ldc: out)
/// ```
///
/// - Parameters:
///   - threads: 1 runs on the calling thread; more splits C into that many blocks run on
///     the trainer's worker threads (`concurrentParts`, WorkerPool.swift). Products under
///     `ParallelThresholds.multiplyAdds` (2²⁰ multiply-adds, about 10 µs) stay on one
///     thread. The result does not depend on it.
///   - beta: 0 means C is write-only (its old contents, NaNs included, are ignored).
/// - Precondition: `m, n, k >= 0`, leading dimensions at least as large as the legend says.
/// - Complexity: 2·m·n·k flops; O(m·k + k·n) packing.
public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                  alpha: Float, a: UnsafePointer<Float>, lda: Int,
                  b: UnsafePointer<Float>, ldb: Int,
                  beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
                  threads: Int = GEMM.defaultThreads) {
    precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative size m=\(m) n=\(n) k=\(k)")
    precondition(lda >= max(1, transA ? m : k), "sgemm: lda=\(lda) too small (transA=\(transA), m=\(m), k=\(k))")
    precondition(ldb >= max(1, transB ? k : n), "sgemm: ldb=\(ldb) too small (transB=\(transB), k=\(k), n=\(n))")
    precondition(ldc >= max(1, n), "sgemm: ldc=\(ldc) too small (n=\(n))")
    if m == 0 || n == 0 { return }
    let work = m * n * k
    if work < GEMM.naiveWork {
        gemmNaive(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                  b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    let t = work < ParallelThresholds.multiplyAdds ? 1 : max(1, threads)
    gemmParallel(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                 b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, threads: t)
}

/// The packed path on `threads` threads, without the tiny-product fallback (tests call it directly).
func gemmParallel(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                  alpha: Float, a: UnsafePointer<Float>, lda: Int,
                  b: UnsafePointer<Float>, ldb: Int,
                  beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
                  threads: Int) {
    if m == 0 || n == 0 { return }
    // Split the longer side of C into whole micro-tiles, one block per thread.
    let byRows = m * GEMMPacked.nr >= n * GEMMPacked.mr
    let unit = byRows ? GEMMPacked.mr : GEMMPacked.nr
    let extent = byRows ? m : n
    let tiles = (extent + unit - 1) / unit
    let parts = max(1, min(threads, tiles))
    if parts == 1 {
        gemmPacked(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                   b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    let chunk = (tiles + parts - 1) / parts * unit
    concurrentParts(parts) { part in
        let start = part * chunk
        let size = min(chunk, extent - start)
        if size <= 0 { return }
        if byRows {
            gemmPacked(transA: transA, transB: transB, m: size, n: n, k: k, alpha: alpha,
                       a: transA ? a + start : a + start * lda, lda: lda,
                       b: b, ldb: ldb, beta: beta, c: c + start * ldc, ldc: ldc)
        } else {
            gemmPacked(transA: transA, transB: transB, m: m, n: size, k: k, alpha: alpha,
                       a: a, lda: lda,
                       b: transB ? b + start * ldb : b + start, ldb: ldb,
                       beta: beta, c: c + start, ldc: ldc)
        }
    }
}
