// A small deterministic random number generator for tests (SplitMix64), with
// helpers for the random tensors and shapes the kernel tests draw.

/// SplitMix64 (Steele, Lea, Flood 2014): 64-bit state, passes BigCrush, one
/// multiply-xorshift chain per draw. Same seed, same sequence, on every platform.
public struct SeededRNG: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `range`.
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        Int.random(in: range, using: &self)
    }

    /// A uniform Int32 in `range`.
    public mutating func int32(in range: ClosedRange<Int32>) -> Int32 {
        Int32.random(in: range, using: &self)
    }

    /// A uniform Float in `range`.
    public mutating func float(in range: ClosedRange<Float>) -> Float {
        Float.random(in: range, using: &self)
    }

    /// A uniform Double in `range`.
    public mutating func double(in range: ClosedRange<Double>) -> Double {
        Double.random(in: range, using: &self)
    }

    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool {
        Double.random(in: 0 ..< 1, using: &self) < p
    }

    /// `count` uniform Floats in `range`.
    public mutating func floats(_ count: Int, in range: ClosedRange<Float> = -1 ... 1) -> [Float] {
        (0 ..< count).map { _ in Float.random(in: range, using: &self) }
    }

    /// `count` uniform Int8 values in `range`.
    public mutating func int8s(_ count: Int, in range: ClosedRange<Int8> = -128 ... 127) -> [Int8] {
        (0 ..< count).map { _ in Int8.random(in: range, using: &self) }
    }

    /// `count` uniform Int32 values in `range`.
    public mutating func int32s(_ count: Int, in range: ClosedRange<Int32>) -> [Int32] {
        (0 ..< count).map { _ in Int32.random(in: range, using: &self) }
    }

    /// `count` Int8 values that are mostly uniform but hit the extremes −128 and
    /// 127 (and 0) with probability `extremes` each draw.
    public mutating func int8sWithExtremes(_ count: Int, extremes: Double = 0.2) -> [Int8] {
        (0 ..< count).map { _ in
            if chance(extremes) { return [Int8.min, Int8.max, 0, -1][int(in: 0 ... 3)] }
            return Int8.random(in: Int8.min ... Int8.max, using: &self)
        }
    }
}
