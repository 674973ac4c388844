// parallelFor: split an index range over threads for the memory-bound loops around the GEMMs
// (im2col, col2im, batch norm). Each chunk must write memory no other chunk touches.

import Dispatch

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
