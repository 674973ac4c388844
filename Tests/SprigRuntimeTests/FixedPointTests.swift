// Fixed-point primitives: worked examples from the doc comments, then sweeps
// over whole small domains against values computed independently here with
// Int64 arithmetic (exact rational rounding), and the SIMD8 versions against
// the scalar ones lane by lane.
import Foundation
import XCTest
@testable import SprigRuntime
import SprigTestSupport

final class FixedPointTests: XCTestCase {
    // MARK: - Independent oracles

    /// round(a·b / 2^31) with halves toward +∞ (what gemmlowp's nudge computes),
    /// from the quotient and remainder of the exact product.
    private func exactSRDHM(_ a: Int32, _ b: Int32) -> Int64 {
        let p = Int64(a) * Int64(b)
        let d = Int64(1) << 31
        var q = p / d                     // truncated toward zero
        let r = p - q * d                 // same sign as p, |r| < d
        if r > 0 && 2 * r >= d { q += 1 } // positive fraction ≥ 1/2 rounds up
        if r < 0 && 2 * r < -d { q -= 1 } // negative fraction below −1/2 rounds down; −1/2 rounds up
        return q
    }

    /// round(x / 2^e), halves away from zero, by comparing twice the remainder with the divisor.
    private func exactRDBPOT(_ x: Int32, _ e: Int32) -> Int64 {
        let d = Int64(1) << Int64(e)
        let v = Int64(x)
        var q = v / d
        let r = v - q * d
        if 2 * abs(r) >= d && r != 0 { q += r > 0 ? 1 : -1 }
        return q
    }

    /// Interesting Int32 values: extremes, powers of two and their neighbours.
    private var specialValues: [Int32] {
        var v: [Int32] = [0, 1, -1, 2, -2, 3, -3, Int32.max, Int32.min, Int32.max - 1, Int32.min + 1]
        for k in 0 ..< 31 {
            let p = Int32(1) << Int32(k)
            v += [p, p - 1, p + 1, -p, -p + 1, -p - 1]
        }
        return v
    }

    // MARK: - saturatingRoundingDoublingHighMul

    func testSRDHMWorkedExamples() {
        XCTAssertEqual(saturatingRoundingDoublingHighMul(1 << 30, 1 << 30), 536_870_912)
        XCTAssertEqual(saturatingRoundingDoublingHighMul(3, 1 << 30), 2)       // 1.5 → 2
        XCTAssertEqual(saturatingRoundingDoublingHighMul(-3, 1 << 30), -1)     // −1.5 → −1 (half up)
        XCTAssertEqual(saturatingRoundingDoublingHighMul(100, 1_073_741_824), 50)
        XCTAssertEqual(saturatingRoundingDoublingHighMul(.min, .min), .max)
        XCTAssertEqual(saturatingRoundingDoublingHighMul(.min, .max), -2_147_483_647)
        XCTAssertEqual(saturatingRoundingDoublingHighMul(.max, .max), 2_147_483_646)
    }

    /// ~2^16 values of `a` (a dense grid across the whole range plus all
    /// special values) × 40 values of `b`.
    func testSRDHMSweepAgainstExactRounding() {
        var rng = SeededRNG(seed: 1)
        var grid: [Int32] = specialValues
        for i in 0 ..< 65_536 { grid.append(Int32(truncatingIfNeeded: Int64(i) * 65_537 - 2_147_483_648)) }
        let bs: [Int32] = specialValues.filter { _ in rng.chance(0.15) }
            + [Int32.min, Int32.max, 0, 1, -1, 1 << 30, -(1 << 30), 1_288_490_189, 1 << 15, -(1 << 15)]
            + rng.int32s(12, in: Int32.min ... Int32.max)
        var failures = 0
        for b in bs {
            for a in grid {
                let got = saturatingRoundingDoublingHighMul(a, b)
                let exact = (a == .min && b == .min) ? Int64(Int32.max) : exactSRDHM(a, b)
                if Int64(got) != exact || got != Naive.saturatingRoundingDoublingHighMul(a, b) {
                    failures += 1
                    if failures < 5 { XCTFail("SRDHM(\(a), \(b)) = \(got), expected \(exact)") }
                }
            }
        }
        XCTAssertEqual(failures, 0)
    }

    func testSRDHMVectorMatchesScalar() {
        var rng = SeededRNG(seed: 2)
        let values = specialValues + rng.int32s(4000, in: Int32.min ... Int32.max)
        let others = specialValues.shuffled(using: &rng) + rng.int32s(4000, in: Int32.min ... Int32.max)
        for start in stride(from: 0, to: min(values.count, others.count) - 8, by: 8) {
            let a = SIMD8<Int32>(values[start ..< start + 8])
            let b = SIMD8<Int32>(others[start ..< start + 8])
            let v = saturatingRoundingDoublingHighMul(a, b)
            for i in 0 ..< 8 { XCTAssertEqual(v[i], saturatingRoundingDoublingHighMul(a[i], b[i]), "lane \(a[i]) × \(b[i])") }
        }
        let m = SIMD8<Int32>(repeating: .min)
        XCTAssertEqual(saturatingRoundingDoublingHighMul(m, m), SIMD8(repeating: .max))
    }

    // MARK: - roundingDivideByPOT

    func testRoundingDivideByPOTWorkedExamples() {
        XCTAssertEqual(roundingDivideByPOT(5, 1), 3)
        XCTAssertEqual(roundingDivideByPOT(-5, 1), -3)
        XCTAssertEqual(roundingDivideByPOT(-6, 2), -2)
        XCTAssertEqual(roundingDivideByPOT(-5, 2), -1)
        XCTAssertEqual(roundingDivideByPOT(7, 0), 7)
        XCTAssertEqual(roundingDivideByPOT(.min, 31), -1)
        XCTAssertEqual(roundingDivideByPOT(.max, 31), 1)
        XCTAssertEqual(roundingDivideByPOT(1 << 30, 31), 1)      // 0.5 → 1
        XCTAssertEqual(roundingDivideByPOT(-(1 << 30), 31), -1)  // −0.5 → −1
    }

    /// Every x in −70000...70000 with every exponent 0...31, plus the special values.
    func testRoundingDivideByPOTExhaustiveSmallDomain() {
        var failures = 0
        let xs = Array(Int32(-70_000) ... 70_000) + specialValues
        for e in Int32(0) ... 31 {
            for x in xs {
                let got = roundingDivideByPOT(x, e)
                if Int64(got) != exactRDBPOT(x, e) || got != Naive.roundingDivideByPOT(x, e) {
                    failures += 1
                    if failures < 5 { XCTFail("RDBPOT(\(x), \(e)) = \(got), expected \(exactRDBPOT(x, e))") }
                }
            }
        }
        XCTAssertEqual(failures, 0)
    }

    func testRoundingDivideByPOTVectorMatchesScalar() {
        var rng = SeededRNG(seed: 3)
        let xs = specialValues + rng.int32s(2000, in: Int32.min ... Int32.max) + rng.int32s(2000, in: -300 ... 300)
        for start in stride(from: 0, to: xs.count - 8, by: 8) {
            let x = SIMD8<Int32>(xs[start ..< start + 8])
            let e = SIMD8<Int32>((0 ..< 8).map { _ in rng.int32(in: 0 ... 31) })
            let v = roundingDivideByPOT(x, e)
            for i in 0 ..< 8 { XCTAssertEqual(v[i], roundingDivideByPOT(x[i], e[i]), "x \(x[i]) e \(e[i])") }
        }
    }

    // MARK: - multiplyByQuantizedMultiplier

    func testMultiplyByQuantizedMultiplierWorkedExample() {
        let q = quantizeMultiplier(0.3)
        XCTAssertEqual(q.multiplier, 1_288_490_189)
        XCTAssertEqual(q.shift, -1)
        XCTAssertEqual(saturatingRoundingDoublingHighMul(1000, q.multiplier), 600)
        XCTAssertEqual(multiplyByQuantizedMultiplier(1000, q.multiplier, q.shift), 300)
        // ×2 with a left shift: multiplier 0.5, shift 2.
        XCTAssertEqual(multiplyByQuantizedMultiplier(-7, 1 << 30, 2), -14)
    }

    /// Random accumulators × multipliers of random reals × every shift −31...30,
    /// against the Int64 reference, the SIMD8 version, and the real product.
    func testMultiplyByQuantizedMultiplierSweep() {
        var rng = SeededRNG(seed: 4)
        var failures = 0
        let xs = specialValues + rng.int32s(300, in: Int32.min ... Int32.max) + rng.int32s(300, in: -100_000 ... 100_000)
        for _ in 0 ..< 12 {
            let real = rng.double(in: 0.5 ... 0.999)
            let m = quantizeMultiplier(real).multiplier          // shift 0 for [0.5, 1)
            for shift in Int32(-31) ... 30 {
                for x in xs {
                    let got = multiplyByQuantizedMultiplier(x, m, shift)
                    if got != Naive.multiplyByQuantizedMultiplier(x, m, shift) {
                        failures += 1
                        if failures < 5 { XCTFail("MBQM(\(x), \(m), \(shift)) = \(got)") }
                    }
                }
                // Where nothing wraps or saturates, the result is x·M rounded, within 1.
                for x in xs where shift <= 0 || abs(Int64(x)) << Int64(shift) < Int64(Int32.max) {
                    let ideal = Double(x) * Double(m) / 2_147_483_648 * pow(2, Double(shift))
                    let got = Double(multiplyByQuantizedMultiplier(x, m, shift))
                    if abs(got - ideal) > 1.0 + 1e-9 * abs(ideal) { failures += 1 }
                }
            }
        }
        XCTAssertEqual(failures, 0)
        // SIMD8 lane by lane, per-lane shifts.
        for start in stride(from: 0, to: xs.count - 8, by: 8) {
            let x = SIMD8<Int32>(xs[start ..< start + 8])
            let m = SIMD8<Int32>((0 ..< 8).map { _ in quantizeMultiplier(rng.double(in: 0.5 ... 0.999)).multiplier })
            let s = SIMD8<Int32>((0 ..< 8).map { _ in rng.int32(in: -31 ... 30) })
            let v = multiplyByQuantizedMultiplier(x, m, s)
            for i in 0 ..< 8 { XCTAssertEqual(v[i], multiplyByQuantizedMultiplier(x[i], m[i], s[i])) }
            var shifts = [Int32](repeating: 0, count: 8), mults = [Int32](repeating: 0, count: 8)
            for i in 0 ..< 8 { shifts[i] = s[i]; mults[i] = m[i] }
            let r = mults.withUnsafeBufferPointer { mp in
                shifts.withUnsafeBufferPointer { sp in
                    Requant8(multipliers: mp.baseAddress!, shifts: sp.baseAddress!, channel: 0).apply(x)
                }
            }
            XCTAssertEqual(r, v)
        }
    }

    // MARK: - quantizeMultiplier

    func testQuantizeMultiplierExamples() {
        XCTAssertTrue(quantizeMultiplier(0.5) == (1 << 30, 0))
        XCTAssertTrue(quantizeMultiplier(1.0) == (1 << 30, 1))
        XCTAssertTrue(quantizeMultiplier(0.25) == (1 << 30, -1))
        XCTAssertTrue(quantizeMultiplier(0.75) == (1_610_612_736, 0))   // 0.75·2^31
        XCTAssertTrue(quantizeMultiplier(0.3) == (1_288_490_189, -1))   // 0.6·2^31 = 1288490188.8
        XCTAssertTrue(quantizeMultiplier(0.0) == (0, 0))
        XCTAssertTrue(quantizeMultiplier(.nan) == (0, 0))
        XCTAssertTrue(quantizeMultiplier(.infinity) == (0, 0))
        XCTAssertTrue(quantizeMultiplier(1e-20) == (0, 0))              // shift would be < −31
        XCTAssertTrue(quantizeMultiplier(1e10) == (Int32.max, 30))      // saturates
        XCTAssertTrue(quantizeMultiplier(-0.5) == (-(1 << 30), 0))
        // The mantissa rounds up to 2^31: halved, shift incremented.
        XCTAssertTrue(quantizeMultiplier(1.0.nextDown) == (1 << 30, 1))
        XCTAssertTrue(quantizeMultiplier(0.5.nextDown) == (1 << 30, 0))
    }

    func testQuantizeMultiplierRoundTrip() {
        var rng = SeededRNG(seed: 5)
        for _ in 0 ..< 20_000 {
            let real = pow(10, rng.double(in: -8 ... 5))
            let (m, s) = quantizeMultiplier(real)
            XCTAssertTrue(m >= 1 << 30, "\(real) → \(m)")
            XCTAssertTrue((-31 ... 30).contains(s))
            let back = Double(m) / 2_147_483_648 * pow(2, Double(s))
            XCTAssertLessThanOrEqual(abs(back - real) / real, pow(2, -30), "\(real) → (\(m), \(s))")
        }
    }

    // MARK: - Clamps

    func testClampToInt8() {
        XCTAssertEqual(clampToInt8(300, -128, 127), 127)
        XCTAssertEqual(clampToInt8(-5, 0, 127), 0)
        XCTAssertEqual(clampToInt8(42, -128, 6), 6)
        XCTAssertEqual(clampToInt8(.min, -1000, 1000), -128)
        for x in Int32(-600) ... 600 {
            for (lo, hi) in [(Int32(-128), Int32(127)), (0, 127), (-128, 6), (-20, 20)] {
                XCTAssertEqual(Int64(clampToInt8(x, lo, hi)), min(max(Int64(x), Int64(lo)), Int64(hi)))
            }
        }
    }

    /// The q8 output stage (clamp first, add the zero point after) equals
    /// clamp(x + zp) for every zero point in the int8 range, also for huge x.
    func testOutputStageMatchesDefinition() {
        var rng = SeededRNG(seed: 6)
        let xs = specialValues + Array(Int32(-400) ... 400)
        for _ in 0 ..< 30 {
            let zp = rng.int32(in: -128 ... 127)
            var lo = rng.int32(in: -128 ... 127), hi = rng.int32(in: -128 ... 127)
            if lo > hi { swap(&lo, &hi) }
            let stage = OutputStageQ8(zeroPoint: zp, clampMin: lo, clampMax: hi)
            for start in stride(from: 0, to: xs.count - 8, by: 8) {
                let v = SIMD8<Int32>(xs[start ..< start + 8])
                let lanes = stage(v)
                for i in 0 ..< 8 {
                    let expected = Naive.outputStage(v[i], zeroPoint: zp, clampMin: lo, clampMax: hi)
                    XCTAssertEqual(stage(v[i]), expected)
                    XCTAssertEqual(lanes[i], expected)
                }
            }
        }
    }

    // MARK: - Float rounding helpers (no libm)

    /// The quantizer's rounding, scalar and SIMD8, against Foundation's round
    /// (halves away from zero) on every quarter in ±10000, random values and the edges.
    func testQuantizeRoundingHelpers() {
        var values: [Float] = (-40_000 ... 40_000).map { Float($0) / 4 }
        var rng = SeededRNG(seed: 8)
        values += rng.floats(20_000, in: -5_000_000 ... 5_000_000) + rng.floats(20_000, in: -3 ... 3)
        values += [.nan, .infinity, -.infinity, 4_194_304, -4_194_304, 4_194_304.5, 4_194_303.5, -4_194_303.5,
                   1e30, -1e30, 0.49999997, -0.49999997, 0.5, -0.5, 8_388_607.5, .leastNonzeroMagnitude, -0.0]
        while values.count % 8 != 0 { values.append(0.5) }
        func expected(_ v: Float) -> Int32 {
            if v.isNaN { return 0 }
            let clamped = min(max(v, -4_194_304), 4_194_304)
            return Int32(Foundation.round(Double(clamped)))
        }
        var failures = 0
        for start in stride(from: 0, to: values.count, by: 8) {
            let v = SIMD8<Float>(values[start ..< start + 8])
            let lanes = roundQuotientsQ8(v)
            for i in 0 ..< 8 where lanes[i] != expected(v[i]) || roundQuotientQ8(v[i]) != expected(v[i]) {
                failures += 1
                if failures < 5 { XCTFail("round(\(v[i])) = \(lanes[i]) / \(roundQuotientQ8(v[i])), expected \(expected(v[i]))") }
            }
        }
        XCTAssertEqual(failures, 0)
        XCTAssertEqual(roundHalfAwayFromZero(2.5), 3)
        XCTAssertEqual(roundHalfAwayFromZero(-2.5), -3)
        XCTAssertEqual(roundHalfAwayFromZero(-2.49), -2)
        XCTAssertEqual(roundHalfAwayFromZero(16_777_216), 16_777_216)
        for k in -4000 ... 4000 {
            let v = Float(k) / 8
            XCTAssertEqual(roundHalfAwayFromZero(v), Int32(Foundation.round(Double(v))))
        }
    }
}
