// The arena planner: offsets for buffers whose lifetimes are known.
//
// Used by the blob writer (inference plan) and the compiler. Greedy by size: the largest buffer is placed
// first, each at the lowest aligned offset where it overlaps no placed buffer
// whose live range meets its own. Not optimal (the problem is NP-hard), but
// within a few percent of the lower bound on chain-like CNNs.

import SprigRuntime

/// One buffer to place: `size` bytes, live from step `first` to step `last` inclusive.
public struct PlannedBuffer: Equatable, Sendable {
    public var size: Int
    public var first: Int
    public var last: Int
    public init(size: Int, first: Int, last: Int) {
        self.size = size
        self.first = first
        self.last = last
    }

    /// True when the two live ranges share a step.
    public func livesWith(_ other: PlannedBuffer) -> Bool {
        first <= other.last && other.first <= last
    }
}

/// The planner's answer: an offset per buffer, and the peak bytes.
public struct ArenaPlan: Equatable, Sendable {
    public var offsets: [Int]
    public var peak: Int
}

/// Places `buffers` in one arena.
///
/// Example: three 64-byte buffers live over steps [0,1], [1,2], [2,3]:
/// the first and third never meet, so they share offset 0 and the peak is 128.
///
/// - Parameters:
///   - buffers: sizes and live ranges.
///   - alignment: every offset (and the peak) is a multiple of this.
/// - Returns: offsets in the order of `buffers`, and the peak.
/// - Complexity: O(n² log n) for n buffers.
public func planArena(_ buffers: [PlannedBuffer], alignment: Int = 16) -> ArenaPlan {
    let n = buffers.count
    var offsets = [Int](repeating: 0, count: n)
    var order = Array(0..<n)
    order.sort { a, b in
        let x = buffers[a], y = buffers[b]
        if x.size != y.size { return x.size > y.size }
        if x.first != y.first { return x.first < y.first }
        return a < b
    }
    var placed: [Int] = []
    var peak = 0
    for i in order {
        let buffer = buffers[i]
        let size = alignUp(buffer.size, alignment)
        // Placed buffers that are alive at the same time, by offset.
        var conflicts = placed.filter { buffers[$0].livesWith(buffer) }
        conflicts.sort { offsets[$0] < offsets[$1] }
        var candidate = 0
        for c in conflicts {
            let start = offsets[c]
            if start >= candidate + size { break }
            candidate = max(candidate, alignUp(start + buffers[c].size, alignment))
        }
        offsets[i] = candidate
        peak = max(peak, candidate + size)
        placed.append(i)
    }
    return ArenaPlan(offsets: offsets, peak: peak)
}

/// `value` rounded up to a multiple of `alignment` (the runtime keeps its own, internal, twin).
@inline(__always)
func alignUp(_ value: Int, _ alignment: Int) -> Int {
    (value + alignment - 1) / alignment * alignment
}
