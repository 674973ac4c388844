// gemmNaive: the reference matrix multiply, kept forever.
//
// It is the oracle for every fast-path test and the fallback for tiny products, where packing
// would cost more than it saves. Three loops, a Double accumulator, nothing clever.

/// `C = alpha·op(A)·op(B) + beta·C`, row-major, computed the obvious way with a Double accumulator.
///
/// Same contract as `sgemm` (see there for the meaning of `lda`, `ldb`, `ldc` and the transposes).
/// When `beta == 0`, `C` is not read (NaNs in it do not propagate), as in BLAS.
///
/// - Complexity: O(m·n·k), no blocking.
public func gemmNaive(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                      alpha: Float, a: UnsafePointer<Float>, lda: Int,
                      b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    for i in 0..<m {
        for j in 0..<n {
            var sum = 0.0
            for p in 0..<k {
                let av = transA ? a[p * lda + i] : a[i * lda + p]
                let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                sum += Double(av) * Double(bv)
            }
            let prior = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
            c[i * ldc + j] = Float(Double(alpha) * sum + prior)
        }
    }
}
