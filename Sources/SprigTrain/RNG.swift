// SprigRNG: the trainer's one seeded random number generator (SplitMix64).
//
// Everything random in training (weight init, dropout masks, gate noise) draws
// from a SprigRNG, so a seed reproduces a run bit for bit on every machine.
// SplitMix64 is tiny, passes BigCrush, and any 64-bit seed (0 included) is fine.

import Foundation

/// A seeded SplitMix64 generator.
///
/// ```
/// var rng = SprigRNG(seed: 42)
/// let u = rng.nextFloat()      // in [0, 1)
/// let z = rng.normal()         // standard normal
/// let i = rng.int(below: 10)   // uniform in 0..<10
/// ```
///
/// It conforms to `RandomNumberGenerator`, so `array.shuffle(using: &rng)` works too.
public struct SprigRNG: RandomNumberGenerator, Sendable, Equatable {
    /// The whole state: the Weyl-sequence counter.
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// The next 64 uniformly distributed bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform `Float` in `[0, 1)`: the top 24 bits, so every value is exact and 1 is never returned.
    public mutating func nextFloat() -> Float {
        Float(next() >> 40) * 0x1p-24
    }

    /// A uniform `Double` in `[0, 1)` (top 53 bits).
    public mutating func nextDouble() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A standard normal sample (Box–Muller, one draw per call, computed in Double).
    public mutating func normal() -> Float {
        // u1 in (0, 1] so log(u1) is finite.
        let u1 = 1.0 - nextDouble()
        let u2 = nextDouble()
        return Float((-2.0 * log(u1)).squareRoot() * cos(2.0 * Double.pi * u2))
    }

    /// A uniform integer in `0..<bound` without modulo bias (Lemire's multiply-and-reject).
    ///
    /// - Precondition: `bound > 0`.
    public mutating func int(below bound: Int) -> Int {
        precondition(bound > 0, "SprigRNG.int(below:): bound must be positive, got \(bound)")
        let b = UInt64(bound)
        var product = next().multipliedFullWidth(by: b)
        if product.low < b {
            let threshold = (0 &- b) % b
            while product.low < threshold {
                product = next().multipliedFullWidth(by: b)
            }
        }
        return Int(product.high)
    }
}
