// gemmBenchmark: the number `sprig bench` prints for the trainer's matrix multiply.

import Dispatch

/// Measures `sgemm` (no transposes, alpha 1, beta 0) on random m×k and k×n operands.
///
/// Untimed warm-up calls for 50 ms (at least one), then `iterations` timed calls; returns the
/// best single call's rate in GFLOP/s (2·m·n·k flops per call), which is the least noisy figure
/// on a shared machine.
/// The warm-up is long enough for the worker threads to start and for the scheduler to spread
/// them over the cores: with a single warm-up call, a 256³ product at 2 threads sometimes ran
/// its first dozen calls at 1-thread speed.
///
/// - Precondition: `m, n, k, threads, iterations > 0`.
public func gemmBenchmark(m: Int, n: Int, k: Int, threads: Int, iterations: Int) -> Double {
    let best = gemmBenchmarkSeconds(m: m, n: n, k: k, threads: threads, iterations: iterations).min()!
    return 2.0 * Double(m) * Double(n) * Double(k) / best * 1e-9
}

/// The seconds of each of `iterations` timed `sgemm` calls (after the warm-up above),
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
                func call() {
                    sgemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1,
                          a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: n,
                          beta: 0, c: cp.baseAddress!, ldc: n, threads: threads)
                }
                let warmEnd = DispatchTime.now().uptimeNanoseconds + warmUpNanoseconds
                repeat { call() } while DispatchTime.now().uptimeNanoseconds < warmEnd
                for _ in 0..<iterations {
                    let start = DispatchTime.now().uptimeNanoseconds
                    call()
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
                }
            }
        }
    }
    return times
}

/// How long `gemmBenchmarkSeconds` warms up.
private let warmUpNanoseconds: UInt64 = 50_000_000
