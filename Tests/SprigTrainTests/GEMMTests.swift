// sgemm against gemmNaive: odd shapes, every transpose, alpha/beta, strides, 1 and 2 threads.
//
// Error measure: for each element, |fast − naive| ≤ 1e-5 · (|alpha|·Σ_p |op(A)[i][p]·op(B)[p][j]| + |beta·C0[i][j]|),
// the relative error of a dot product measured against its absolute-value sum (cancellation in
// the exact result cannot make a correct kernel fail).

import XCTest
@testable import SprigTrain
import SprigTestSupport

final class GEMMTests: XCTestCase {
    /// One product, with operands stored at a leading dimension `pad` wider than needed.
    struct Problem {
        var transA: Bool, transB: Bool
        var m: Int, n: Int, k: Int
        var alpha: Float, beta: Float
        var pad = 3
        var lda: Int { (transA ? m : k) + pad }
        var ldb: Int { (transB ? k : n) + pad }
        var ldc: Int { n + pad }
        var aCount: Int { (transA ? k : m) * lda }
        var bCount: Int { (transB ? n : k) * ldb }
        var cCount: Int { m * ldc }
    }

    private func random(_ count: Int, _ rng: inout SprigRNG) -> [Float] {
        (0..<count).map { _ in rng.nextFloat() * 2 - 1 }
    }

    /// Runs `kernel` and gemmNaive on the same operands; returns the worst scaled error.
    private func worstError(_ p: Problem, seed: UInt64, nanInC: Bool = false,
                            kernel: (Problem, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> Double {
        var rng = SprigRNG(seed: seed)
        let a = random(p.aCount, &rng), b = random(p.bCount, &rng)
        var c0 = random(p.cCount, &rng)
        if nanInC { c0 = c0.map { _ in .nan } }
        var fast = c0, reference = c0
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                fast.withUnsafeMutableBufferPointer { kernel(p, ap.baseAddress!, bp.baseAddress!, $0.baseAddress!) }
                reference.withUnsafeMutableBufferPointer {
                    gemmNaive(transA: p.transA, transB: p.transB, m: p.m, n: p.n, k: p.k, alpha: p.alpha,
                              a: ap.baseAddress!, lda: p.lda, b: bp.baseAddress!, ldb: p.ldb,
                              beta: p.beta, c: $0.baseAddress!, ldc: p.ldc)
                }
            }
        }
        var worst = 0.0
        for i in 0..<p.m {
            for j in 0..<p.ldc {
                let index = i * p.ldc + j
                if j >= p.n {
                    // The padding columns of C must be untouched.
                    if !(fast[index].bitPattern == c0[index].bitPattern) { return .infinity }
                    continue
                }
                var scale = p.beta == 0 ? 0 : abs(Double(p.beta) * Double(c0[index]))
                for q in 0..<p.k {
                    let av = p.transA ? a[q * p.lda + i] : a[i * p.lda + q]
                    let bv = p.transB ? b[j * p.ldb + q] : b[q * p.ldb + j]
                    scale += abs(Double(p.alpha) * Double(av) * Double(bv))
                }
                let error = abs(Double(fast[index]) - Double(reference[index])) / max(scale, 1e-30)
                if !(error <= worst) { worst = error.isNaN ? .infinity : error }
            }
        }
        return worst
    }

    private func runSgemm(threads: Int) -> (Problem, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void {
        { p, a, b, c in
            sgemm(transA: p.transA, transB: p.transB, m: p.m, n: p.n, k: p.k, alpha: p.alpha, a: a, lda: p.lda,
                  b: b, ldb: p.ldb, beta: p.beta, c: c, ldc: p.ldc, threads: threads)
        }
    }

    /// The packed path itself, without the tiny-product fallback to gemmNaive.
    private func runPacked(threads: Int) -> (Problem, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void {
        { p, a, b, c in
            gemmParallel(transA: p.transA, transB: p.transB, m: p.m, n: p.n, k: p.k, alpha: p.alpha, a: a, lda: p.lda,
                         b: b, ldb: p.ldb, beta: p.beta, c: c, ldc: p.ldc, threads: threads)
        }
    }

    func testOddShapesEveryTransposeAlphaBetaThreads() {
        let shapes = [(1, 1, 1), (17, 33, 9), (65, 31, 129), (6, 16, 8), (7, 17, 3), (2, 70, 5), (40, 3, 11)]
        let scalars: [(Float, Float)] = [(1, 0), (0.75, 1), (-1.5, 0.5)]
        var seed: UInt64 = 1
        for (m, n, k) in shapes {
            for transA in [false, true] {
                for transB in [false, true] {
                    for (alpha, beta) in scalars {
                        for threads in [1, 2] {
                            seed += 1
                            let p = Problem(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta)
                            let viaSgemm = worstError(p, seed: seed, kernel: runSgemm(threads: threads))
                            let viaPacked = worstError(p, seed: seed, kernel: runPacked(threads: threads))
                            XCTAssertLessThan(viaSgemm, 1e-5, "sgemm \(p) threads \(threads)")
                            XCTAssertLessThan(viaPacked, 1e-5, "packed \(p) threads \(threads)")
                        }
                    }
                }
            }
        }
    }

    /// Shapes that cross the blocking sizes (MC = 144 rows, KC = 256 depth, NC = 3072 columns)
    /// and the micro-tile edges, through both loop orders: op(B) packed whole (the first two)
    /// and op(B) packed per depth block (9×400×520: too wide to pack whole).
    func testShapesAcrossCacheBlocks() {
        let shapes = [(151, 23, 260), (13, 37, 513), (9, 400, 520), (2, 3100, 3)]
        var seed: UInt64 = 1000
        for (m, n, k) in shapes {
            for (transA, transB) in [(false, false), (true, true)] {
                for threads in [1, 2] {
                    seed += 1
                    let p = Problem(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, beta: 0.5)
                    XCTAssertLessThan(worstError(p, seed: seed, kernel: runPacked(threads: threads)), 1e-5, "\(p) threads \(threads)")
                }
            }
        }
    }

    /// beta = 0 means C is write-only: NaNs already in C must not leak into the result.
    func testBetaZeroIgnoresOldC() {
        for transB in [false, true] {
            let p = Problem(transA: false, transB: transB, m: 13, n: 21, k: 10, alpha: 1, beta: 0)
            XCTAssertLessThan(worstError(p, seed: 77, nanInC: true, kernel: runPacked(threads: 1)), 1e-5)
            let tiny = Problem(transA: false, transB: transB, m: 2, n: 3, k: 4, alpha: 1, beta: 0)
            XCTAssertLessThan(worstError(tiny, seed: 78, nanInC: true, kernel: runSgemm(threads: 1)), 1e-5)
        }
    }

    /// k = 0 or alpha = 0 leaves beta·C.
    func testEmptyDepthScalesC() {
        for kernel in [runSgemm(threads: 1), runPacked(threads: 2)] {
            let p = Problem(transA: false, transB: false, m: 9, n: 20, k: 0, alpha: 1, beta: -2)
            XCTAssertLessThan(worstError(p, seed: 5, kernel: kernel), 1e-6)
            let q = Problem(transA: true, transB: false, m: 9, n: 20, k: 4, alpha: 0, beta: 3)
            XCTAssertLessThan(worstError(q, seed: 6, kernel: kernel), 1e-6)
        }
    }

    /// Every element is computed by one thread with the same operation sequence, so the thread
    /// count must not change a single bit (training runs are reproducible across machines).
    func testThreadCountDoesNotChangeBits() {
        for (m, n) in [(70, 40), (20, 90)] {
            var rng = SprigRNG(seed: 11)
            let k = 37
            let a = random(m * k, &rng), b = random(k * n, &rng)
            var results: [[Float]] = []
            for threads in [1, 2, 3] {
                var c = [Float](repeating: 0, count: m * n)
                gemmParallel(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n,
                             beta: 0, c: &c, ldc: n, threads: threads)
                results.append(c)
            }
            XCTAssertEqual(results[0].map(\.bitPattern), results[1].map(\.bitPattern), "\(m)x\(n): 1 vs 2 threads")
            XCTAssertEqual(results[0].map(\.bitPattern), results[2].map(\.bitPattern), "\(m)x\(n): 1 vs 3 threads")
        }
    }

    /// `transpose8x8` against the definition, with strides wider than the block on both sides.
    func testTranspose8x8() {
        let src = (0..<(8 * 11)).map { Float($0) }
        var dst = [Float](repeating: -1, count: 8 * 13)
        src.withUnsafeBufferPointer { s in
            dst.withUnsafeMutableBufferPointer { d in
                transpose8x8(s.baseAddress! + 2, stride: 11, into: d.baseAddress! + 1, stride: 13)
            }
        }
        for q in 0..<8 {
            for i in 0..<8 { XCTAssertEqual(dst[1 + q * 13 + i], src[2 + i * 11 + q], "dst[\(q)][\(i)]") }
        }
        XCTAssertEqual(dst[0], -1)
        XCTAssertEqual(dst[9], -1, "past the block's row")
    }

    /// op(B) = Bᵀ is packed through 8×8 register transposes (whole NR panels, depths in steps of
    /// 8) and the scalar loop (the rest); both must give the very panels that packing the
    /// explicitly transposed matrix gives, so C must match to the bit. Depths cover 8·j, 8·j ± 1,
    /// and more than one depth block; widths a partial last panel; ldb is padded.
    func testTransposedBMatchesExplicitTransposeBitForBit() {
        var seed: UInt64 = 2000
        for (m, n, k) in [(7, 32, 8), (13, 64, 17), (6, 75, 7), (20, 96, 300), (64, 512, 784), (5, 40, 1)] {
            for threads in [1, 2] {
                seed += 1
                var rng = SprigRNG(seed: seed)
                let ldb = k + 5
                let a = random(m * k, &rng), b = random(n * ldb, &rng)
                var bt = [Float](repeating: 0, count: k * n)
                for j in 0..<n { for q in 0..<k { bt[q * n + j] = b[j * ldb + q] } }
                var viaTranspose = [Float](repeating: 0, count: m * n), viaPlain = viaTranspose
                gemmParallel(transA: false, transB: true, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: ldb,
                             beta: 0, c: &viaTranspose, ldc: n, threads: threads)
                gemmParallel(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: bt, ldb: n,
                             beta: 0, c: &viaPlain, ldc: n, threads: threads)
                XCTAssertEqual(viaTranspose.map(\.bitPattern), viaPlain.map(\.bitPattern), "\(m)x\(n)x\(k), \(threads) threads")
            }
        }
    }

    /// The naive oracle itself, on a product small enough to write out.
    func testNaiveOnHandExample() {
        // [[1,2],[3,4]] · [[5,6],[7,8]] = [[19,22],[43,50]]; alpha 2, beta 1 onto [[1,1],[1,1]].
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [5, 6, 7, 8]
        var c: [Float] = [1, 1, 1, 1]
        gemmNaive(transA: false, transB: false, m: 2, n: 2, k: 2, alpha: 2, a: a, lda: 2, b: b, ldb: 2,
                  beta: 1, c: &c, ldc: 2)
        XCTAssertEqual(c, [39, 45, 87, 101])
        // Aᵀ·Bᵀ = [[1,3],[2,4]]·[[5,7],[6,8]] = [[23,31],[34,46]]
        var d: [Float] = [.nan, .nan, .nan, .nan]
        gemmNaive(transA: true, transB: true, m: 2, n: 2, k: 2, alpha: 1, a: a, lda: 2, b: b, ldb: 2,
                  beta: 0, c: &d, ldc: 2)
        XCTAssertEqual(d, [23, 31, 34, 46])
    }

    func testBenchmarkReportsARate() {
        let rate = gemmBenchmark(m: 16, n: 16, k: 16, threads: 1, iterations: 1)
        XCTAssertTrue(rate.isFinite && rate > 0)
    }

    /// `concurrentMap` returns results in index order for any worker count, gives each job one
    /// GEMM thread while it runs, restores the setting, and rethrows the lowest-index error.
    func testConcurrentMapOrderThreadsAndErrors() throws {
        struct Failed: Error, Equatable { let job: Int }
        let saved = GEMM.defaultThreads
        GEMM.defaultThreads = 3
        defer { GEMM.defaultThreads = saved }
        for workers in [1, 2, 5] {
            // Each job does a GEMM of its own, so a mix-up between jobs shows in the values.
            let results = try concurrentMap(7, workers: workers) { job -> (Float, Int) in
                let a = [Float](repeating: Float(job), count: 4), b = [Float](repeating: 1, count: 4)
                var c: [Float] = [0]
                gemmParallel(transA: false, transB: false, m: 1, n: 1, k: 4, alpha: 1, a: a, lda: 4, b: b, ldb: 1,
                             beta: 0, c: &c, ldc: 1, threads: GEMM.defaultThreads)
                return (c[0], GEMM.defaultThreads)
            }
            XCTAssertEqual(results.map(\.0), (0..<7).map { Float(4 * $0) }, "workers \(workers)")
            XCTAssertEqual(Set(results.map(\.1)), [workers == 1 ? 3 : 1], "GEMM threads inside jobs, workers \(workers)")
            XCTAssertEqual(GEMM.defaultThreads, 3, "restored after workers \(workers)")
        }
        XCTAssertThrowsError(try concurrentMap(6, workers: 2) { job -> Int in
            if job == 3 || job == 4 { throw Failed(job: job) }
            return job
        }) { XCTAssertEqual($0 as? Failed, Failed(job: 3)) }
        XCTAssertEqual(GEMM.defaultThreads, 3, "restored after an error")
        XCTAssertEqual(try concurrentMap(0, workers: 2) { $0 }, [])
    }
}
