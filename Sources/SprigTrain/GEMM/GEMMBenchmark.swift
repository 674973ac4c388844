// gemmBenchmark: the number `sprig bench` prints for the trainer's matrix multiply.

import Dispatch

/// Measures `sgemm` (no transposes, alpha 1, beta 0) on random m×k and k×n operands.
///
/// One untimed warm-up call, then `iterations` timed calls; returns the best single call's
/// rate in GFLOP/s (2·m·n·k flops per call), which is the least noisy figure on a shared machine.
///
/// - Precondition: `m, n, k, threads, iterations > 0`.
public func gemmBenchmark(m: Int, n: Int, k: Int, threads: Int, iterations: Int) -> Double {
    let best = gemmBenchmarkSeconds(m: m, n: n, k: k, threads: threads, iterations: iterations).min()!
    return 2.0 * Double(m) * Double(n) * Double(k) / best * 1e-9
}

/// The seconds of each of `iterations` timed `sgemm` calls (after one untimed warm-up call),
/// in call order, on the same operands as `gemmBenchmark`.
///
/// - Precondition: `m, n, k, threads, iterations > 0`.
public func gemmBenchmarkSeconds(m: Int, n: Int, k: Int, threads: Int, iterations: Int) -> [Double] {
    precondition(m > 0 && n > 0 && k > 0 && threads > 0 && iterations > 0,
                 "gemmBenchmark: sizes, threads and iterations must be positive")
    var rng = SprigRNG(seed: 0x5EED)
    let a = (0..<(m * k)).map { _ in rng.nextFloat() - 0.5 }
    let b = (0..<(k * n)).map { _ in rng.nextFloat() - 0.5 }
    var c = [Float](repeating: 0, count: m * n)
    var times: [Double] = []
    a.withUnsafeBufferPointer { ap in
        b.withUnsafeBufferPointer { bp in
            c.withUnsafeMutableBufferPointer { cp in
                for iteration in 0...iterations {
                    let start = DispatchTime.now().uptimeNanoseconds
                    sgemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1,
                          a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: n,
                          beta: 0, c: cp.baseAddress!, ldc: n, threads: threads)
                    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
                    if iteration > 0 { times.append(seconds) }
                }
            }
        }
    }
    return times
}
