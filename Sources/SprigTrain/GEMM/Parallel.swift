// parallelFor: split an index range over threads for the memory-bound loops around the GEMMs
// (im2col, col2im, batch norm). Each chunk must write memory no other chunk touches.

import Dispatch

/// Thresholds below which work stays on the calling thread. The trainer's workers
/// (WorkerPool.swift) spin between the jobs of a training step, so handing one a part costs a
/// few microseconds at most, not the tens a sleeping Dispatch worker took to wake: loops of about
/// 64 Ki values and GEMMs of about 1 Mi multiply-adds (some 10 µs) and up are split. Measured
/// with `sprig bench --models mlp,mlp@0.5,cnn --threads 2` (2026-12-07, AMD EPYC Zen 4): from
/// 2^20 values and 2^24 multiply-adds, the thresholds of the Dispatch days, to these, training
/// went 37 → 42 k images/s (mlp), 64 → 91 k (mlp@0.5) and 1.90 → 2.20 k (cnn).
/// Variables so that tests can force the threaded paths.
enum ParallelThresholds {
    /// Memory-bound loops touching fewer values than this run on one thread.
    nonisolated(unsafe) static var values = 1 << 16
    /// GEMMs with fewer multiply-adds (m·n·k) than this run on one thread.
    nonisolated(unsafe) static var multiplyAdds = 1 << 20
}

/// `threads`, or 1 when `values` is below `ParallelThresholds.values`.
@inline(__always)
func threadsFor(values: Int, _ threads: Int) -> Int {
    values < ParallelThresholds.values ? 1 : threads
}

/// Calls `body` on `threads` contiguous, disjoint, non-empty sub-ranges of `0..<count`,
/// concurrently when `threads > 1`. The split depends only on `count` and `threads`.
@inline(__always)
func parallelFor(_ count: Int, threads: Int, _ body: (Range<Int>) -> Void) {
    let parts = max(1, min(threads, count))
    if parts == 1 {
        if count > 0 { body(0..<count) }
        return
    }
    let chunk = (count + parts - 1) / parts
    // The body is safe to share by the contract above (disjoint writes).
    concurrentParts(parts) { part in
        let start = part * chunk
        let end = min(count, start + chunk)
        if start < end { body(start..<end) }
    }
}

/// A value handed to worker threads under a contract the compiler cannot check.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Runs `body(0)`, …, `body(count − 1)` as independent jobs on up to `workers` threads and
/// returns their results in index order; the first error (by index) is rethrown after all jobs
/// end. While the jobs run, `GEMM.defaultThreads` is 1, so each job keeps to one core; it is
/// restored afterwards. Jobs must not share mutable state.
///
/// For many small trainings (the re-initialised arm of `sprig transfer`), one job per core
/// beats one job at a time with threaded GEMMs: their GEMMs are too small to split well.
public func concurrentMap<T>(_ count: Int, workers: Int, _ body: (Int) throws -> T) throws -> [T] {
    guard count > 0 else { return [] }
    let saved = GEMM.defaultThreads
    let parts = max(1, min(workers, count))
    if parts > 1 { GEMM.defaultThreads = 1 }
    defer { GEMM.defaultThreads = saved }
    let slots = UnsafeMutableBufferPointer<Result<T, any Error>?>.allocate(capacity: count)
    slots.initialize(repeating: nil)
    defer { slots.deinitialize(); slots.deallocate() }
    withoutActuallyEscaping(body) { escapable in
        let shared = UncheckedSendable((escapable, slots))
        // Worker w takes jobs w, w + parts, w + 2·parts, …: neighbouring jobs (similar sizes)
        // land on different workers.
        DispatchQueue.concurrentPerform(iterations: parts) { worker in
            for job in stride(from: worker, to: count, by: parts) {
                shared.value.1[job] = Result { try shared.value.0(job) }
            }
        }
    }
    return try slots.map { try $0!.get() }
}
