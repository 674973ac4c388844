// A tiny seeded generator private to the data pipeline (shuffles, splits, episodes, shifts,
// synthetic tints).
//
// SplitMix64 (Steele, Lea, Flood 2014): one 64-bit state word, full period, good enough
// statistics for shuffling. It is spelled out here, with our own bounded draw and
// Fisher–Yates, so that a seed gives the same permutation on every platform and Swift
// version (the stdlib's `shuffle(using:)` algorithm is not a stability promise).

/// Seeded SplitMix64 generator for data shuffling. Not cryptographic.
struct DataRNG: Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    /// Next 64 random bits.
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform integer in `0..<bound` (Lemire's multiply-shift with rejection, unbiased).
    mutating func next(below bound: Int) -> Int {
        precondition(bound > 0, "DataRNG.next(below:) needs a positive bound")
        let n = UInt64(bound)
        var m = next().multipliedFullWidth(by: n)
        if m.low < n {
            let threshold = (0 &- n) % n
            while m.low < threshold { m = next().multipliedFullWidth(by: n) }
        }
        return Int(m.high)
    }

    /// Uniform integer in `range` (closed).
    mutating func next(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + next(below: range.upperBound - range.lowerBound + 1)
    }

    /// Uniform Double in `[0, 1)`: the top 53 bits of `next()` times 2⁻⁵³, so every value
    /// is exact and the same on every platform.
    mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// In-place Fisher–Yates shuffle.
    mutating func shuffle<T>(_ array: inout [T]) {
        guard array.count > 1 else { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) {
            let j = next(below: i + 1)
            if i != j { array.swapAt(i, j) }
        }
    }
}

/// Stream-splitting helper: derives an independent seed for a named purpose, so that e.g.
/// the shuffle of epoch 3 and the augmentation of epoch 3 do not share random numbers.
func deriveDataSeed(_ seed: UInt64, _ salt: UInt64) -> UInt64 {
    var rng = DataRNG(seed: seed ^ (salt &* 0xD1B5_4A32_D192_ED03))
    return rng.next()
}
