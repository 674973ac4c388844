// parallelFor: split an index range over threads for the memory-bound loops around the GEMMs
// (im2col, col2im, batch norm). Each chunk must write memory no other chunk touches.

import Dispatch

/// Thresholds below which work stays on the calling thread. Waking a sleeping worker costs
/// tens of microseconds on a virtual machine (more than a 64 Ki-value loop takes), and an
/// unlucky late wake-up leaves the caller waiting, so only loops of about a millisecond and
/// GEMMs of about 0.2 ms and up are split. Variables so that tests can force the threaded paths.
enum ParallelThresholds {
    /// Memory-bound loops touching fewer values than this run on one thread.
    nonisolated(unsafe) static var values = 1 << 20
    /// GEMMs with fewer multiply-adds (m·n·k) than this run on one thread.
    nonisolated(unsafe) static var multiplyAdds = 1 << 24
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
    // concurrentPerform wants a @Sendable closure; the body is safe to share by the contract
    // above (disjoint writes) and does not outlive this call.
    withoutActuallyEscaping(body) { escapable in
        let shared = UncheckedSendable(escapable)
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let start = part * chunk
            let end = min(count, start + chunk)
            if start < end { shared.value(start..<end) }
        }
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
