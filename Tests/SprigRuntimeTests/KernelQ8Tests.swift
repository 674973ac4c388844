// int8 kernels: the Float32 goldens reused by quantizing, then random shapes,
// zero points and multipliers against the naive Int64 references with EXACT
// equality, and extreme values (−128/127 everywhere, biases near the Int32
// limits, every shift). Buffers are fenced by guard pages; outputs are
// pre-filled with a sentinel that the references cannot all produce.
import XCTest
import SprigRuntime
import SprigTestSupport

// MARK: - Runners

/// Requantization parameters in guarded buffers, as the kernels receive them.
final class GuardedRequant {
    let multipliers: GuardedBuffer<Int32>
    let shifts: GuardedBuffer<Int32>
    let naive: NaiveRequant
    var runtime: RequantQ8 {
        RequantQ8(multipliers: multipliers.readOnly, shifts: shifts.readOnly, outputZeroPoint: naive.outputZeroPoint,
                  clampMin: naive.clampMin, clampMax: naive.clampMax)
    }

    init(_ naive: NaiveRequant, placement: GuardedBuffer<Int32>.Placement = .end) {
        self.naive = naive
        multipliers = GuardedBuffer(naive.multipliers, placement: placement)
        shifts = GuardedBuffer(naive.shifts, placement: placement)
    }
}

func q8Placement(_ trial: Int) -> GuardedBuffer<Int8>.Placement { trial % 2 == 0 ? .end : .start }
func i32Placement(_ trial: Int) -> GuardedBuffer<Int32>.Placement { trial % 2 == 0 ? .end : .start }

func runDenseQ8(_ input: [Int8], zeroPoint: Int32, _ weights: [Int8], _ bias: [Int32]?, inputCount: Int,
                outputCount: Int, _ requant: NaiveRequant, trial: Int = 0) -> [Int8] {
    let x = GuardedBuffer(input, placement: q8Placement(trial)), k = GuardedBuffer(weights, placement: q8Placement(trial))
    let b = bias.map { GuardedBuffer($0, placement: i32Placement(trial)) }
    let q = GuardedRequant(requant, placement: i32Placement(trial))
    let out = GuardedBuffer(repeating: Int8(99), count: outputCount, placement: q8Placement(trial))
    denseQ8(input: x.readOnly, inputZeroPoint: zeroPoint, weights: k.readOnly, bias: b?.readOnly, output: out.pointer,
            inputCount: inputCount, outputCount: outputCount, requant: q.runtime)
    return out.array
}

func runConv2dQ8(_ input: [Int8], zeroPoint: Int32, _ weights: [Int8], _ bias: [Int32]?, _ window: Window2D,
                 _ requant: NaiveRequant, depthwise: Bool = false, trial: Int = 0) -> [Int8] {
    let x = GuardedBuffer(input, placement: q8Placement(trial)), k = GuardedBuffer(weights, placement: q8Placement(trial))
    let b = bias.map { GuardedBuffer($0, placement: i32Placement(trial)) }
    let q = GuardedRequant(requant, placement: i32Placement(trial))
    let out = GuardedBuffer(repeating: Int8(99), count: window.outputCount, placement: q8Placement(trial))
    if depthwise {
        depthwiseConv2dQ8(input: x.readOnly, inputZeroPoint: zeroPoint, weights: k.readOnly, bias: b?.readOnly,
                          output: out.pointer, window: window, requant: q.runtime)
    } else {
        conv2dQ8(input: x.readOnly, inputZeroPoint: zeroPoint, weights: k.readOnly, bias: b?.readOnly,
                 output: out.pointer, window: window, requant: q.runtime)
    }
    return out.array
}

func runPoolQ8(_ kind: PoolKind, _ input: [Int8], _ window: Window2D, trial: Int = 0) -> [Int8] {
    let x = GuardedBuffer(input, placement: q8Placement(trial))
    let out = GuardedBuffer(repeating: Int8(99), count: window.outputCount, placement: q8Placement(trial))
    switch kind {
    case .max: maxPool2dQ8(input: x.readOnly, output: out.pointer, window: window)
    case .average: avgPool2dQ8(input: x.readOnly, output: out.pointer, window: window)
    }
    return out.array
}

func runGlobalAveragePoolQ8(_ input: [Int8], height: Int, width: Int, channels: Int, trial: Int = 0) -> [Int8] {
    let x = GuardedBuffer(input, placement: q8Placement(trial))
    let out = GuardedBuffer(repeating: Int8(99), count: channels, placement: q8Placement(trial))
    globalAveragePoolQ8(input: x.readOnly, output: out.pointer, height: height, width: width, channels: channels)
    return out.array
}

func runAddQ8(_ a: [Int8], _ b: [Int8], _ params: AddQ8Params, trial: Int = 0) -> [Int8] {
    let x = GuardedBuffer(a, placement: q8Placement(trial)), y = GuardedBuffer(b, placement: q8Placement(trial))
    let out = GuardedBuffer(repeating: Int8(99), count: a.count, placement: q8Placement(trial))
    addQ8(a: x.readOnly, b: y.readOnly, output: out.pointer, count: a.count, params: params)
    return out.array
}

func runSoftmaxQ8(_ input: [Int8], table: [Int32], trial: Int = 0) -> [Int8] {
    let x = GuardedBuffer(input, placement: q8Placement(trial))
    let t = GuardedBuffer(table, placement: i32Placement(trial))
    let out = GuardedBuffer(repeating: Int8(99), count: input.count, placement: q8Placement(trial))
    softmaxQ8(input: x.readOnly, output: out.pointer, count: input.count, expTable: t.readOnly)
    return out.array
}

/// Per-channel requantization from random real multipliers in (1e-4, 2), a
/// random output zero point and a random activation (none, ReLU, ReLU6-like, band).
func randomRequant(_ rng: inout SeededRNG, channels: Int) -> NaiveRequant {
    var multipliers: [Int32] = [], shifts: [Int32] = []
    for _ in 0 ..< channels {
        let (m, s) = quantizeMultiplier(exp(rng.double(in: log(1e-4) ... log(2.0))))
        multipliers.append(m)
        shifts.append(s)
    }
    let zp = rng.int32(in: -128 ... 127)
    var lo: Int32 = -128, hi: Int32 = 127
    switch rng.int(in: 0 ... 3) {
    case 0: break
    case 1: lo = zp                                        // ReLU
    case 2: lo = zp; hi = min(127, zp + rng.int32(in: 0 ... 60))  // ReLU6-like
    default: lo = rng.int32(in: -128 ... 0); hi = rng.int32(in: lo ... 127)
    }
    return NaiveRequant(multipliers: multipliers, shifts: shifts, outputZeroPoint: zp, clampMin: lo, clampMax: hi)
}

/// Requantization that covers the extremes: any multiplier in [2^30, 2^31), any shift −31...30.
func extremeRequant(_ rng: inout SeededRNG, channels: Int) -> NaiveRequant {
    NaiveRequant(multipliers: (0 ..< channels).map { _ in rng.chance(0.2) ? Int32.max : rng.int32(in: 1 << 30 ... Int32.max) },
                 shifts: (0 ..< channels).map { _ in rng.chance(0.2) ? [-31, 30, 0][rng.int(in: 0 ... 2)] : rng.int32(in: -31 ... 30) },
                 outputZeroPoint: rng.chance(0.5) ? -128 : 127, clampMin: -128, clampMax: 127)
}

/// Biases mostly moderate, sometimes at the Int32 extremes (the accumulator then wraps, by contract).
func randomBias(_ rng: inout SeededRNG, _ count: Int, extremes: Bool = false) -> [Int32] {
    (0 ..< count).map { _ in
        if extremes && rng.chance(0.3) { return [Int32.max, Int32.min, Int32.max - 1000, Int32.min + 1000][rng.int(in: 0 ... 3)] }
        return rng.int32(in: -20_000 ... 20_000)
    }
}

final class KernelQ8Tests: XCTestCase {
    // MARK: - Goldens: the Float32 ones, quantized

    /// Dense golden of KernelF32Tests: x = [1, 2, 3] at scale 0.5, zp 1 → q = 2x + 1 = [3, 5, 7];
    /// weights at scale 1; bias [0.5, −1] at scale 0.5 → [1, −2]; y = [−1.5, 11] at scale 0.5, zp 0
    /// → [−3, 22]; multiplier 0.5·1/0.5 = 1. Check: acc0 = 1 + (2·1 + 4·0 + 6·(−1)) = −3.
    func testDenseGolden() {
        let one = quantizeMultiplier(1.0)
        let none = NaiveRequant(multipliers: [one.multiplier, one.multiplier], shifts: [one.shift, one.shift],
                                outputZeroPoint: 0, clampMin: -128, clampMax: 127)
        var relu6 = none
        relu6.clampMin = 0; relu6.clampMax = 12                // 6 / 0.5
        XCTAssertEqual(runDenseQ8([3, 5, 7], zeroPoint: 1, [1, 0, -1, 2, 2, 2], [1, -2], inputCount: 3, outputCount: 2, none),
                       [-3, 22])
        XCTAssertEqual(runDenseQ8([3, 5, 7], zeroPoint: 1, [1, 0, -1, 2, 2, 2], [1, -2], inputCount: 3, outputCount: 2, relu6),
                       [0, 12])
    }

    /// Conv2D golden: input 1…9 at scale 0.5, zp −3 → q = 2x − 3; filter A = [1 2; 3 4] at
    /// scale 0.25 → [4 8; 12 16], bias 1 at 0.125 → 8; filter B = [1 0; 0 −1] at scale 0.5
    /// (per channel) → [2 0; 0 −2], bias −1 at 0.25 → −4. Output scale 1, zp −100, so
    /// A → 38, 48, 68, 78 − 100 and B → −5 − 100. Multipliers 0.125 and 0.25.
    /// Check A(0,0): Σ (q + 3)·w = 8·(1·1 + 2·2 + 4·3 + 5·4) = 296; + 8 = 304; ·0.125 = 38.
    func testConv2dGolden() {
        let x: [Int8] = [-1, 1, 3, 5, 7, 9, 11, 13, 15]
        let w: [Int8] = [4, 2, 8, 0, 12, 0, 16, -2]               // HWIO, channels A, B
        let a = quantizeMultiplier(0.125), b = quantizeMultiplier(0.25)
        var q = NaiveRequant(multipliers: [a.multiplier, b.multiplier], shifts: [a.shift, b.shift],
                             outputZeroPoint: -100, clampMin: -128, clampMax: 127)
        let win = makeWindow(height: 3, width: 3, inputChannels: 1, outputChannels: 2, kernelHeight: 2, kernelWidth: 2)
        XCTAssertEqual(runConv2dQ8(x, zeroPoint: -3, w, [8, -4], win, q), [-62, -105, -52, -105, -32, -105, -22, -105])
        q.clampMin = -100                                          // ReLU
        XCTAssertEqual(runConv2dQ8(x, zeroPoint: -3, w, [8, -4], win, q), [-62, -100, -52, -100, -32, -100, -22, -100])
    }

    /// Padding/stride golden (filter A only, scale 1 everywhere, zp 0): [4, 18, 36, 77].
    /// Padding taps are skipped, not read as the zero point: with input zp 5 and
    /// the input shifted by 5 the answer is the same.
    func testConv2dPaddingStrideGolden() {
        let win = makeWindow(height: 3, width: 3, inputChannels: 1, outputChannels: 1, kernelHeight: 2, kernelWidth: 2,
                             strideHeight: 2, strideWidth: 2, padTop: 1, padLeft: 1)
        let one = quantizeMultiplier(1.0)
        let q = NaiveRequant(multipliers: [one.multiplier], shifts: [one.shift], outputZeroPoint: 0,
                             clampMin: -128, clampMax: 127)
        XCTAssertEqual(runConv2dQ8([1, 2, 3, 4, 5, 6, 7, 8, 9], zeroPoint: 0, [1, 2, 3, 4], nil, win, q), [4, 18, 36, 77])
        XCTAssertEqual(runConv2dQ8([6, 7, 8, 9, 10, 11, 12, 13, 14], zeroPoint: 5, [1, 2, 3, 4], nil, win, q), [4, 18, 36, 77])
    }

    /// Depthwise golden at scale 1, zp 0: [37, −12, 47, −16, 67, −24, 77, −28].
    func testDepthwiseConv2dGolden() {
        var x: [Int8] = []
        for v in Int8(1) ... 9 { x += [v, -v] }
        let one = quantizeMultiplier(1.0)
        let q = NaiveRequant(multipliers: [one.multiplier, one.multiplier], shifts: [one.shift, one.shift],
                             outputZeroPoint: 0, clampMin: -128, clampMax: 127)
        let win = makeWindow(height: 3, width: 3, inputChannels: 2, outputChannels: 2, kernelHeight: 2, kernelWidth: 2)
        XCTAssertEqual(runConv2dQ8(x, zeroPoint: 0, [1, 1, 2, 1, 3, 1, 4, 1], nil, win, q, depthwise: true),
                       [37, -12, 47, -16, 67, -24, 77, -28])
    }

    /// Pool goldens on 1…9 (scale 1, zp 0). The averages 2.5 and 5.5 round away
    /// from zero to 3 and 6: (5 + 1) / 2 = 3, (11 + 1) / 2 = 6. Negative: {−2, −3} → −2.5 → −3.
    func testPoolGoldens() {
        let x: [Int8] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        let plain = makeWindow(height: 3, width: 3, inputChannels: 1, outputChannels: 1, kernelHeight: 2, kernelWidth: 2)
        let padded = makeWindow(height: 3, width: 3, inputChannels: 1, outputChannels: 1, kernelHeight: 2, kernelWidth: 2,
                                strideHeight: 2, strideWidth: 2, padTop: 1, padLeft: 1)
        XCTAssertEqual(runPoolQ8(.max, x, plain), [5, 6, 8, 9])
        XCTAssertEqual(runPoolQ8(.average, x, plain), [3, 4, 6, 7])
        XCTAssertEqual(runPoolQ8(.max, x, padded), [1, 3, 7, 9])
        XCTAssertEqual(runPoolQ8(.average, x, padded), [1, 3, 6, 7])
        let pair = makeWindow(height: 1, width: 2, inputChannels: 1, outputChannels: 1, kernelHeight: 1, kernelWidth: 2)
        XCTAssertEqual(runPoolQ8(.average, [-2, -3], pair), [-3])
        XCTAssertEqual(runPoolQ8(.average, [-1, 0], pair), [-1])   // −0.5 → −1
        XCTAssertEqual(runPoolQ8(.max, [-128, -127], pair), [-127])
    }

    /// channel 0: 1, 2, 3, 4 → 2.5 → 3; channel 1: −1, 0, 0, 5 → 1.
    func testGlobalAveragePoolGolden() {
        XCTAssertEqual(runGlobalAveragePoolQ8([1, -1, 2, 0, 3, 0, 4, 5], height: 2, width: 2, channels: 2), [3, 1])
    }

    /// Add golden: [1, −2, 3] + [0.5, 0.5, 4] = [1.5, −1.5, 7], all at scale 0.5, zp 0:
    /// [2, −4, 6] + [1, 1, 8] → [3, −3, 14]. TFLite parameters: leftShift 20, twice the
    /// larger input scale = 1, so a, b multipliers 0.5 and output multiplier 1/(2^20·0.5) = 2^−19.
    /// Check: (2·2^20)·0.5 + (1·2^20)·0.5 = 1.5·2^20; ·2^−19 = 3.
    func testAddGolden() {
        let half = quantizeMultiplier(0.5), out = quantizeMultiplier(pow(2, -19))
        XCTAssertTrue(out == (1 << 30, -18))
        let p = AddQ8Params(aZeroPoint: 0, bZeroPoint: 0, outputZeroPoint: 0, leftShift: 20,
                            aMultiplier: half.multiplier, aShift: half.shift, bMultiplier: half.multiplier, bShift: half.shift,
                            outputMultiplier: out.multiplier, outputShift: out.shift, clampMin: -128, clampMax: 127)
        XCTAssertEqual(runAddQ8([2, -4, 6], [1, 1, 8], p), [3, -3, 14])
        var relu = p
        relu.clampMin = 0
        XCTAssertEqual(runAddQ8([2, -4, 6], [1, 1, 8], relu), [3, 0, 14])
        // The doc example: 3 + 4 → 7.
        XCTAssertEqual(runAddQ8([3], [4], p), [7])
    }

    /// Table 2^24, 2^23, 2^22, … (inputScale ln 2); input [5, 4, 4] → e = [2^24, 2^23, 2^23],
    /// s = 2^25 → (2^32 + 2^24) / 2^25 − 128 = 0 and (2^31 + 2^24) / 2^25 − 128 = −64:
    /// probabilities 0.5, 0.25, 0.25 at scale 1/256, zp −128.
    func testSoftmaxGolden() {
        let table: [Int32] = (0 ..< 256).map { d in d < 25 ? Int32(1 << (24 - d)) : 0 }
        XCTAssertEqual(runSoftmaxQ8([5, 4, 4], table: table), [0, -64, -64])
        XCTAssertEqual(runSoftmaxQ8([-7], table: table), [127])       // probability 1 = 256/256 → clamps to 127
        XCTAssertEqual(runSoftmaxQ8([127, -128], table: table), [127, -128])
    }

    func testSoftmaxExpTable() {
        var t = [Int32](repeating: -1, count: 256)
        makeSoftmaxExpTable(inputScale: 0.1, into: &t)
        XCTAssertEqual(t[0], 16_777_216)
        XCTAssertEqual(t[1], 15_180_653)
        XCTAssertEqual(t[10], 6_171_993)
        var rng = SeededRNG(seed: 30)
        for _ in 0 ..< 50 {
            let scale = rng.float(in: 0.001 ... 1)
            makeSoftmaxExpTable(inputScale: scale, into: &t)
            let reference = Naive.softmaxExpTable(inputScale: scale)
            XCTAssertEqual(t[0], 1 << 24)
            for d in 0 ..< 256 {
                XCTAssertLessThanOrEqual(abs(Double(t[d]) - reference[d]), 0.5 + 2e-7 * reference[d], "d \(d) scale \(scale)")
                if d > 0 { XCTAssertLessThanOrEqual(t[d], t[d - 1]) }
            }
        }
    }

    // MARK: - Random shapes, exact against the Int64 references

    func testDenseRandom() {
        var rng = SeededRNG(seed: 31)
        for trial in 0 ..< 80 {
            let n = rng.int(in: 1 ... 150), m = rng.int(in: 1 ... 23)
            let extreme = trial % 4 == 3
            let x = extreme ? rng.int8sWithExtremes(n) : rng.int8s(n)
            let w = extreme ? rng.int8sWithExtremes(n * m) : rng.int8s(n * m)
            let zp = extreme ? [Int32(-128), 127][trial % 2] : rng.int32(in: -128 ... 127)
            let b = rng.chance(0.8) ? randomBias(&rng, m, extremes: extreme) : nil
            let q = extreme ? extremeRequant(&rng, channels: m) : randomRequant(&rng, channels: m)
            assertSame(runDenseQ8(x, zeroPoint: zp, w, b, inputCount: n, outputCount: m, q, trial: trial),
                       Naive.denseQ8(input: x, inputZeroPoint: zp, weights: w, bias: b, inputCount: n, outputCount: m, requant: q),
                       "dense \(n)→\(m)")
        }
    }

    func testConv2dRandom() {
        var rng = SeededRNG(seed: 32)
        let outputChannelChoices = [1, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40, 64, 71]
        for trial in 0 ..< 80 {
            let cin = rng.int(in: 1 ... 19)
            let cout = outputChannelChoices[rng.int(in: 0 ... outputChannelChoices.count - 1)]
            let win = randomWindow(&rng, maxExtent: 11, inputChannels: cin, outputChannels: cout)
            let extreme = trial % 4 == 3
            let x = extreme ? rng.int8sWithExtremes(win.inputCount) : rng.int8s(win.inputCount)
            let wCount = win.kernelHeight * win.kernelWidth * cin * cout
            let w = extreme ? rng.int8sWithExtremes(wCount) : rng.int8s(wCount)
            let zp = extreme ? [Int32(-128), 127][trial % 2] : rng.int32(in: -128 ... 127)
            let b = rng.chance(0.8) ? randomBias(&rng, cout, extremes: extreme) : nil
            let q = extreme ? extremeRequant(&rng, channels: cout) : randomRequant(&rng, channels: cout)
            assertSame(runConv2dQ8(x, zeroPoint: zp, w, b, win, q, trial: trial),
                       Naive.conv2dQ8(input: x, inputZeroPoint: zp, weights: w, bias: b, window: win, requant: q),
                       "conv " + win.label)
        }
    }

    /// Mostly stride 1, wide rows and tall columns: the 4-pixel × 16-channel
    /// tiles (horizontal and vertical) and their edges.
    func testConv2dTilePath() {
        var rng = SeededRNG(seed: 33)
        for trial in 0 ..< 24 {
            let k = rng.int(in: 1 ... 5), pad = rng.int(in: 0 ... k / 2)
            let cin = rng.int(in: 1 ... 9), cout = [16, 32, 48, 19, 35, 64][trial % 6]
            let win = makeWindow(height: rng.int(in: k ... 13), width: rng.int(in: max(k, 4) ... 21),
                                 inputChannels: cin, outputChannels: cout, kernelHeight: k, kernelWidth: k,
                                 strideHeight: trial % 4 == 3 ? 2 : 1, strideWidth: trial % 5 == 4 ? 2 : 1,
                                 padTop: pad, padBottom: pad, padLeft: pad, padRight: pad)
            let x = trial % 3 == 2 ? rng.int8sWithExtremes(win.inputCount, extremes: 0.5) : rng.int8s(win.inputCount)
            let w = rng.int8s(k * k * cin * cout)
            let zp = rng.int32(in: -128 ... 127)
            let b = randomBias(&rng, cout, extremes: trial % 3 == 2)
            let q = trial % 3 == 2 ? extremeRequant(&rng, channels: cout) : randomRequant(&rng, channels: cout)
            assertSame(runConv2dQ8(x, zeroPoint: zp, w, b, win, q, trial: trial),
                       Naive.conv2dQ8(input: x, inputZeroPoint: zp, weights: w, bias: b, window: win, requant: q),
                       "tile " + win.label)
        }
    }

    /// Dense with every count of `oddChannelCounts` as outputs (the last group
    /// of 4 rows moved back) and as inputs (the vpmaddwd, 8-lane and scalar
    /// tails), and wide inputs; exact, every third case with extreme values.
    func testDenseOddCounts() {
        var rng = SeededRNG(seed: 40)
        for (i, m) in oddChannelCounts.enumerated() {
            for (k, n) in (oddChannelCounts + [64, 150]).enumerated() {
                let extreme = (i + k) % 3 == 2
                let x = extreme ? rng.int8sWithExtremes(n, extremes: 0.5) : rng.int8s(n)
                let w = extreme ? rng.int8sWithExtremes(n * m, extremes: 0.5) : rng.int8s(n * m)
                let zp = extreme ? [Int32(-128), 127][k % 2] : rng.int32(in: -128 ... 127)
                let b = k % 4 == 3 ? nil : randomBias(&rng, m, extremes: extreme)
                let q = extreme ? extremeRequant(&rng, channels: m) : randomRequant(&rng, channels: m)
                assertSame(runDenseQ8(x, zeroPoint: zp, w, b, inputCount: n, outputCount: m, q, trial: i + k),
                           Naive.denseQ8(input: x, inputZeroPoint: zp, weights: w, bias: b, inputCount: n,
                                         outputCount: m, requant: q),
                           "dense \(n)→\(m)")
            }
        }
    }

    /// Every output channel count of `oddChannelCounts` (the 16-, 8- and 4-wide
    /// tiles with their last block moved back, and the pixel path below 4),
    /// odd and even input channel counts (an odd last tap of the vpmaddwd
    /// pairs), every shape of `oddChannelShapes`, exactly equal to the naive
    /// reference; every third case with extreme values and zero points.
    func testConv2dOddChannelCounts() {
        var rng = SeededRNG(seed: 38)
        for (i, cout) in oddChannelCounts.enumerated() {
            for (s, shape) in oddChannelShapes.enumerated() {
                let cin = [1, 3, 19, 28][(i + s) % 4]
                let win = oddChannelWindow(height: 9 + s, width: 13 - s, inputChannels: cin, outputChannels: cout,
                                           shape: shape)
                let extreme = (i + s) % 3 == 2
                let wCount = shape.kernel * shape.kernel * cin * cout
                let x = extreme ? rng.int8sWithExtremes(win.inputCount, extremes: 0.5) : rng.int8s(win.inputCount)
                let w = extreme ? rng.int8sWithExtremes(wCount, extremes: 0.5) : rng.int8s(wCount)
                let zp = extreme ? [Int32(-128), 127][s % 2] : rng.int32(in: -128 ... 127)
                let b = s == 4 ? nil : randomBias(&rng, cout, extremes: extreme)
                let q = extreme ? extremeRequant(&rng, channels: cout) : randomRequant(&rng, channels: cout)
                assertSame(runConv2dQ8(x, zeroPoint: zp, w, b, win, q, trial: i + s),
                           Naive.conv2dQ8(input: x, inputZeroPoint: zp, weights: w, bias: b, window: win, requant: q),
                           "odd channels " + win.label)
            }
        }
    }

    /// Depthwise with every channel count of `oddChannelCounts` and every shape, exact.
    func testDepthwiseConv2dOddChannelCounts() {
        var rng = SeededRNG(seed: 39)
        for (i, c) in oddChannelCounts.enumerated() {
            for (s, shape) in oddChannelShapes.enumerated() {
                let win = oddChannelWindow(height: 8 + s, width: 11 - s, inputChannels: c, outputChannels: c, shape: shape)
                let extreme = (i + s) % 3 == 2
                let wCount = shape.kernel * shape.kernel * c
                let x = extreme ? rng.int8sWithExtremes(win.inputCount, extremes: 0.5) : rng.int8s(win.inputCount)
                let w = extreme ? rng.int8sWithExtremes(wCount, extremes: 0.5) : rng.int8s(wCount)
                let zp = extreme ? [Int32(-128), 127][s % 2] : rng.int32(in: -128 ... 127)
                let b = s == 4 ? nil : randomBias(&rng, c, extremes: extreme)
                let q = extreme ? extremeRequant(&rng, channels: c) : randomRequant(&rng, channels: c)
                assertSame(runConv2dQ8(x, zeroPoint: zp, w, b, win, q, depthwise: true, trial: i + s),
                           Naive.depthwiseConv2dQ8(input: x, inputZeroPoint: zp, weights: w, bias: b, window: win,
                                                   requant: q),
                           "odd channels depthwise " + win.label)
            }
        }
    }

    /// The three conv layers of the reference CNN (3×3, 'same', ReLU).
    func testConv2dReferenceNetworkLayers() {
        var rng = SeededRNG(seed: 34)
        for (size, cin, cout) in [(28, 1, 16), (14, 16, 32), (7, 32, 64)] {
            let win = makeWindow(height: size, width: size, inputChannels: cin, outputChannels: cout,
                                 kernelHeight: 3, kernelWidth: 3, padTop: 1, padBottom: 1, padLeft: 1, padRight: 1)
            let x = rng.int8s(win.inputCount), w = rng.int8s(9 * cin * cout), b = randomBias(&rng, cout)
            var q = randomRequant(&rng, channels: cout)
            q.clampMin = q.outputZeroPoint
            q.clampMax = 127
            assertSame(runConv2dQ8(x, zeroPoint: -128, w, b, win, q),
                       Naive.conv2dQ8(input: x, inputZeroPoint: -128, weights: w, bias: b, window: win, requant: q),
                       win.label)
        }
    }

    func testDepthwiseConv2dRandom() {
        var rng = SeededRNG(seed: 35)
        for trial in 0 ..< 60 {
            let c = [1, 2, 5, 8, 13, 16, 17, 24, 33, 40][trial % 10]
            let win = randomWindow(&rng, maxExtent: 12, inputChannels: c, outputChannels: c)
            let extreme = trial % 4 == 3
            let x = extreme ? rng.int8sWithExtremes(win.inputCount) : rng.int8s(win.inputCount)
            let w = extreme ? rng.int8sWithExtremes(win.kernelHeight * win.kernelWidth * c)
                            : rng.int8s(win.kernelHeight * win.kernelWidth * c)
            let zp = extreme ? [Int32(-128), 127][trial % 2] : rng.int32(in: -128 ... 127)
            let b = rng.chance(0.8) ? randomBias(&rng, c, extremes: extreme) : nil
            let q = extreme ? extremeRequant(&rng, channels: c) : randomRequant(&rng, channels: c)
            assertSame(runConv2dQ8(x, zeroPoint: zp, w, b, win, q, depthwise: true, trial: trial),
                       Naive.depthwiseConv2dQ8(input: x, inputZeroPoint: zp, weights: w, bias: b, window: win, requant: q),
                       "depthwise " + win.label)
        }
    }

    func testPoolsRandom() {
        var rng = SeededRNG(seed: 36)
        for trial in 0 ..< 80 {
            let c = [1, 3, 5, 8, 9, 14, 16, 17, 29, 32][trial % 10]
            let win = randomWindow(&rng, maxExtent: 12, inputChannels: c, outputChannels: c)
            let x = trial % 3 == 0 ? rng.int8sWithExtremes(win.inputCount, extremes: 0.6) : rng.int8s(win.inputCount)
            assertSame(runPoolQ8(.max, x, win, trial: trial), Naive.maxPool2dQ8(input: x, window: win), "max " + win.label)
            assertSame(runPoolQ8(.average, x, win, trial: trial), Naive.avgPool2dQ8(input: x, window: win), "avg " + win.label)
        }
    }

    func testGlobalAveragePoolRandom() {
        var rng = SeededRNG(seed: 37)
        for trial in 0 ..< 40 {
            let h = rng.int(in: 1 ... 9), w = rng.int(in: 1 ... 9), c = rng.int(in: 1 ... 70)
            let x = trial % 3 == 0 ? rng.int8sWithExtremes(h * w * c, extremes: 0.7) : rng.int8s(h * w * c)
            assertSame(runGlobalAveragePoolQ8(x, height: h, width: w, channels: c, trial: trial),
                       Naive.globalAveragePoolQ8(input: x, height: h, width: w, channels: c), "gap \(h)x\(w)x\(c)")
        }
    }

    func testAddRandom() {
        var rng = SeededRNG(seed: 38)
        for trial in 0 ..< 60 {
            let n = rng.int(in: 0 ... 200)
            let a = rng.int8sWithExtremes(n), b = rng.int8sWithExtremes(n)
            let p: AddQ8Params
            if trial % 3 == 2 {
                // Anything goes: any multiplier, shift and left shift (wrapping by contract).
                func m() -> Int32 { rng.int32(in: 1 << 30 ... Int32.max) }
                func s() -> Int32 { rng.int32(in: -31 ... 30) }
                p = AddQ8Params(aZeroPoint: rng.int32(in: -128 ... 127), bZeroPoint: rng.int32(in: -128 ... 127),
                                outputZeroPoint: rng.int32(in: -128 ... 127), leftShift: rng.int32(in: 0 ... 31),
                                aMultiplier: m(), aShift: s(), bMultiplier: m(), bShift: s(),
                                outputMultiplier: m(), outputShift: s(), clampMin: -128, clampMax: 127)
            } else {
                // TFLite's recipe from random scales.
                let sa = rng.double(in: 0.01 ... 1), sb = rng.double(in: 0.01 ... 1), so = rng.double(in: 0.01 ... 2)
                let twice = 2 * max(sa, sb)
                let qa = quantizeMultiplier(sa / twice), qb = quantizeMultiplier(sb / twice)
                let qo = quantizeMultiplier(twice / (Double(1 << 20) * so))
                let zo = rng.int32(in: -128 ... 127)
                p = AddQ8Params(aZeroPoint: rng.int32(in: -128 ... 127), bZeroPoint: rng.int32(in: -128 ... 127),
                                outputZeroPoint: zo, leftShift: 20,
                                aMultiplier: qa.multiplier, aShift: qa.shift, bMultiplier: qb.multiplier, bShift: qb.shift,
                                outputMultiplier: qo.multiplier, outputShift: qo.shift,
                                clampMin: rng.chance(0.5) ? zo : -128, clampMax: 127)
            }
            assertSame(runAddQ8(a, b, p, trial: trial), Naive.addQ8(a: a, b: b, params: p), "add \(n) \(p)")
        }
    }

    func testSoftmaxRandom() {
        var rng = SeededRNG(seed: 39)
        var table = [Int32](repeating: 0, count: 256)
        for trial in 0 ..< 60 {
            let n = rng.int(in: 1 ... 100)
            makeSoftmaxExpTable(inputScale: rng.float(in: 0.005 ... 0.5), into: &table)
            if trial % 5 == 4 {                     // any table the interpreter would accept
                table = (0 ..< 256).map { _ in rng.int32(in: 0 ... 1 << 24) }
                table[0] = max(table[0], 1)
            }
            let x = trial % 3 == 0 ? rng.int8sWithExtremes(n, extremes: 0.5) : rng.int8s(n)
            assertSame(runSoftmaxQ8(x, table: table, trial: trial), Naive.softmaxQ8(input: x, expTable: table), "softmax \(n)")
        }
    }

    /// Quantized probabilities track the Float32 softmax within a couple of steps of 1/256.
    func testSoftmaxQ8TracksFloat() {
        var rng = SeededRNG(seed: 40)
        var table = [Int32](repeating: 0, count: 256)
        for _ in 0 ..< 20 {
            let scale = rng.float(in: 0.02 ... 0.2)
            makeSoftmaxExpTable(inputScale: scale, into: &table)
            let x = rng.int8s(10)
            let q = runSoftmaxQ8(x, table: table)
            let p = Naive.softmax(x.map { Float($0) * scale })
            for (qi, pi) in zip(q, p) { XCTAssertEqual(Double(Int(qi) + 128) / 256, pi, accuracy: 2.5 / 256) }
        }
    }
}

// MARK: - The fast paths of DepthwiseConv2D, Add and GlobalAveragePool

extension KernelQ8Tests {
    /// GlobalAveragePool over pixel counts on both sides of 256 (Int16 sums, 32 channels a
    /// vector) and of 2^16 (the Float division), channel counts 1...70 (blocks of 16 and 32,
    /// the last moved back), inputs all −128, all 127 (sums ±128·n, ±127·n) or with
    /// rounding ties (sum = ±n/2 for even n).
    func testGlobalAveragePoolFastPaths() {
        var rng = SeededRNG(seed: 41)
        let shapes = [(1, 1), (2, 3), (7, 7), (16, 16), (1, 255), (257, 1), (16, 17), (3, 100), (256, 256), (257, 256)]
        for (t, (h, w)) in shapes.enumerated() {
            for c in [1, 7, 15, 16, 17, 31, 32, 33, 47, 64, 70] where h * w * c <= 200_000 {  // the 256×256 shapes at 1 and 2 channels
                let n = h * w * c
                var x: [Int8]
                switch (t + c) % 5 {
                case 0: x = [Int8](repeating: -128, count: n)
                case 1: x = [Int8](repeating: 127, count: n)
                case 2:
                    // Channel k sums to ±(pixels / 2) (+ k for k odd): rounding ties.
                    x = [Int8](repeating: 0, count: n)
                    for k in 0 ..< c {
                        var target = (h * w) / 2 * (k % 2 == 0 ? 1 : -1) + (k % 4 == 3 ? 1 : 0)
                        var p = 0
                        while target != 0 && p < h * w {
                            let step = max(-128, min(127, target))
                            x[p * c + k] = Int8(step)
                            target -= step
                            p += 1
                        }
                    }
                case 3: x = rng.int8sWithExtremes(n, extremes: 0.9)
                default: x = rng.int8s(n)
                }
                assertSame(runGlobalAveragePoolQ8(x, height: h, width: w, channels: c, trial: t + c),
                           Naive.globalAveragePoolQ8(input: x, height: h, width: w, channels: c), "gap \(h)x\(w)x\(c)")
            }
        }
    }

    /// Depthwise with every channel count 1...40 (blocks of 16 and 32 channels, the last
    /// moved back; 8 for 8...15; below 8 the Int32 loop), kernels 3×3 and 5×5 (and 3×5), strides 1 and 2,
    /// paddings that clip rows and columns on either side, widths that leave 0...3
    /// pixels after the tiles of 4, input zero points −128 and 127 (|x − zp| = 255),
    /// weights at ±127 and −128, extreme multipliers and shifts; a zero point outside
    /// the int8 range takes the Int32 loop.
    func testDepthwiseConv2dInt16Paths() {
        var rng = SeededRNG(seed: 42)
        var trial = 0
        for c in 1 ... 40 {
            for (kh, kw, stride, pad) in [(3, 3, 1, 1), (3, 3, 2, 1), (5, 5, 1, 2), (5, 5, 2, 0), (3, 5, 1, 0), (3, 3, 2, 0)] {
                let width = 5 + (trial * 7) % 9, height = 3 + (trial % 5)
                var win = makeWindow(height: height, width: width, inputChannels: c, outputChannels: c,
                                     kernelHeight: kh, kernelWidth: kw, strideHeight: stride, strideWidth: stride,
                                     padTop: pad, padBottom: (pad + trial) % 3, padLeft: pad, padRight: (pad + trial + 1) % 3)
                if win.outputWidth < 1 || win.outputHeight < 1 {
                    win = makeWindow(height: 6, width: 9, inputChannels: c, outputChannels: c, kernelHeight: kh,
                                     kernelWidth: kw, padTop: kh / 2, padBottom: kh / 2, padLeft: kw / 2, padRight: kw / 2)
                }
                let extreme = trial % 3 != 0
                let wCount = kh * kw * c
                let x = extreme ? rng.int8sWithExtremes(win.inputCount, extremes: 0.6) : rng.int8s(win.inputCount)
                var w = extreme ? rng.int8sWithExtremes(wCount, extremes: 0.6) : rng.int8s(wCount)
                if trial % 5 == 1 { w = w.map { $0 < 0 ? -127 : 127 } }
                let zp: Int32 = [-128, 127, rng.int32(in: -128 ... 127), -128, 127, 300][trial % 6]
                let b = trial % 7 == 3 ? nil : randomBias(&rng, c, extremes: extreme)
                let q = extreme ? extremeRequant(&rng, channels: c) : randomRequant(&rng, channels: c)
                assertSame(runConv2dQ8(x, zeroPoint: zp, w, b, win, q, depthwise: true, trial: trial),
                           Naive.depthwiseConv2dQ8(input: x, inputZeroPoint: zp, weights: w, bias: b, window: win,
                                                   requant: q),
                           "depthwise int16 zp \(zp) " + win.label)
                trial += 1
            }
        }
    }
}

extension KernelQ8Tests {
    /// The x86-64 paths of 3×3 depthwise ops (DepthwiseRuns.swift): with stride 1 along the
    /// width and C < 16, output rows as runs of 64, 32 and 16 lanes where `runsPay`, the rest
    /// pixel by pixel; with C ≥ 16, channel blocks with their weights held; between them, the
    /// per-channel loops. Against the naive loop: every C 1...15
    /// and some above, rows from narrower than one block to many blocks, 'same' and 'valid'
    /// and uneven padding, stride 1 and 2 (along the width too for C ≥ 16), zero points at
    /// the ends, requantizations at their extremes, lower bounds ≥ 0 (the skipped negative
    /// rounding) and none, and inputs whose last pixels end the buffer.
    func testDepthwiseConv2dRunsPath() {
        var rng = SeededRNG(seed: 44)
        var trial = 0
        for c in Array(1 ... 15) + [16, 17, 31, 32, 33, 40] {
            for (width, pads, strideHeight) in [(3, (1, 1, 1, 1), 1), (9, (0, 0, 0, 0), 1), (33, (1, 1, 1, 1), 1),
                                                 (40, (1, 0, 0, 2), 2), (70, (0, 1, 2, 0), 1),
                                                 (5, (3, 3, 3, 3), 3)] {   // rows with no valid kernel row
                let height = 2 + trial % 5
                let strideWidth = c >= 8 && trial % 2 == 1 ? 2 : 1   // (C ≥ 9: padded or whole channel blocks)
                let win = makeWindow(height: height, width: width, inputChannels: c, outputChannels: c,
                                     kernelHeight: 3, kernelWidth: 3, strideHeight: strideHeight, strideWidth: strideWidth,
                                     padTop: pads.0, padBottom: pads.1, padLeft: pads.2, padRight: pads.3)
                let extreme = trial % 3 != 0
                let x = extreme ? rng.int8sWithExtremes(win.inputCount, extremes: 0.6) : rng.int8s(win.inputCount)
                let w = extreme ? rng.int8sWithExtremes(9 * c, extremes: 0.6) : rng.int8s(9 * c)
                let zp: Int32 = [-128, 127, rng.int32(in: -128 ... 127)][trial % 3]
                let b = trial % 7 == 3 ? nil : randomBias(&rng, c, extremes: extreme)
                var q = extreme ? extremeRequant(&rng, channels: c) : randomRequant(&rng, channels: c)
                if trial % 2 == 0 {
                    q.clampMin = max(q.outputZeroPoint, q.clampMin)
                    q.clampMax = max(q.clampMin, q.clampMax)
                }
                assertSame(runConv2dQ8(x, zeroPoint: zp, w, b, win, q, depthwise: true, trial: trial),
                           Naive.depthwiseConv2dQ8(input: x, inputZeroPoint: zp, weights: w, bias: b, window: win,
                                                   requant: q),
                           "depthwise runs zp \(zp) " + win.label)
                trial += 1
            }
        }
    }

    /// Add over counts that leave 0...15 elements after the blocks of 16, every left shift
    /// 0...31, multipliers 2^30...Int32.max and every shift −31...30 of each of the three
    /// requantizations (the 64-bit one-shift path), zero points at −128 and 127, inputs at
    /// −128 and 127; a multiplier of Int32.min takes the 8-lane path.
    func testAddOneShiftPaths() {
        var rng = SeededRNG(seed: 43)
        let shifts: [Int32] = [-31, -30, -20, -1, 0, 1, 2, 15, 30]
        for trial in 0 ..< 400 {
            let n = [16, 17, 31, 32, 33, 47, 100, 255, 256, 1000][trial % 10]
            let a = rng.int8sWithExtremes(n, extremes: 0.5), b = rng.int8sWithExtremes(n, extremes: 0.5)
            func m() -> Int32 { rng.chance(0.2) ? [Int32(1 << 30), Int32.max][rng.int(in: 0 ... 1)] : rng.int32(in: 1 << 30 ... Int32.max) }
            func s() -> Int32 { rng.chance(0.5) ? shifts[rng.int(in: 0 ... shifts.count - 1)] : rng.int32(in: -31 ... 30) }
            func zp() -> Int32 { rng.chance(0.5) ? [Int32(-128), 127][rng.int(in: 0 ... 1)] : rng.int32(in: -128 ... 127) }
            var p = AddQ8Params(aZeroPoint: zp(), bZeroPoint: zp(), outputZeroPoint: zp(),
                                leftShift: trial % 4 == 0 ? 20 : rng.int32(in: 0 ... 31),
                                aMultiplier: m(), aShift: s(), bMultiplier: m(), bShift: s(),
                                outputMultiplier: m(), outputShift: s(),
                                clampMin: rng.chance(0.5) ? -128 : rng.int32(in: -128 ... 0),
                                clampMax: rng.chance(0.5) ? 127 : rng.int32(in: 0 ... 127))
            switch trial % 40 {
            case 7: p.aMultiplier = Int32.min; p.aShift = 0; p.leftShift = 0   // the 8-lane path
            case 10: p.aMultiplier = 0; p.bMultiplier = 0
            default: break
            }
            assertSame(runAddQ8(a, b, p, trial: trial), Naive.addQ8(a: a, b: b, params: p), "add \(n) \(p)")
        }
    }
}

extension KernelQ8Tests {
    /// The one-shift requantization at its boundaries: products x'·M at and around −2^30
    /// (where the doubling high multiply turns from 0 to −1) and the ties of the rounding
    /// shift on both signs, with the multiplier 2^30 and small right shifts. Add: every input byte against every zero point;
    /// depthwise (1×1, weights ±1): accumulators −6...6 in every block width.
    func testOneShiftRequantBoundaries() {
        var rng = SeededRNG(seed: 44)
        let all = (-128 ... 127).map { Int8($0) }
        for zp in stride(from: -128, through: 127, by: 5) {
            for (shift, left) in [(Int32(-1), Int32(0)), (-2, 0), (-3, 1), (0, 0), (-31, 0), (1, 0)] {
                let p = AddQ8Params(aZeroPoint: Int32(zp), bZeroPoint: 0, outputZeroPoint: 0, leftShift: left,
                                    aMultiplier: 1 << 30, aShift: shift, bMultiplier: 1 << 30, bShift: -1,
                                    outputMultiplier: 1 << 30, outputShift: shift, clampMin: -128, clampMax: 127)
                let b = (0 ..< 256).map { _ in Int8(rng.int(in: -3 ... 3)) }
                assertSame(runAddQ8(all, b, p), Naive.addQ8(a: all, b: b, params: p), "add boundary \(zp) \(shift)")
            }
        }
        for c in [8, 12, 16, 24, 32, 40] {
            for shift in [Int32(-1), -2, -3, 0] {
                let win = makeWindow(height: 3, width: 9, inputChannels: c, outputChannels: c, kernelHeight: 1, kernelWidth: 1)
                let x = (0 ..< win.inputCount).map { _ in Int8(rng.int(in: -3 ... 3)) }
                let w = (0 ..< c).map { _ in Int8(rng.chance(0.5) ? 1 : -1) }
                let b = (0 ..< c).map { _ in rng.int32(in: -3 ... 3) }
                let q = NaiveRequant(multipliers: [Int32](repeating: 1 << 30, count: c),
                                     shifts: [Int32](repeating: shift, count: c), outputZeroPoint: 0,
                                     clampMin: -128, clampMax: 127)
                assertSame(runConv2dQ8(x, zeroPoint: 0, w, b, win, q, depthwise: true),
                           Naive.depthwiseConv2dQ8(input: x, inputZeroPoint: 0, weights: w, bias: b, window: win, requant: q),
                           "depthwise boundary \(c) \(shift)")
            }
        }
    }
}

extension KernelQ8Tests {
    /// The 32-bit rescaling of Add's inputs (`AddInputRescale32`), against gemmlowp's
    /// definitions written out here in Int64 (not the runtime's scalar functions): every
    /// pair of input bytes (65,536 elements, so every block and the tail), left shifts 8...20,
    /// right shifts on both sides of the domain's edge S = 31 + r − L ≤ 22, multipliers at
    /// 2^(30 − L) and just above it, 2^30, Int32.max and random, zero points at the ends.
    func testAddInputRescale32AllPairs() {
        /// gemmlowp SaturatingRoundingDoublingHighMul, C division (truncation) and all.
        func srdhm(_ a: Int32, _ b: Int32) -> Int32 {
            if a == Int32.min && b == Int32.min { return Int32.max }
            let ab = Int64(a) * Int64(b)
            let nudge: Int64 = ab >= 0 ? 1 << 30 : 1 - (1 << 30)
            return Int32(truncatingIfNeeded: (ab + nudge) / (1 << 31))
        }
        /// gemmlowp RoundingDivideByPOT.
        func rdbpot(_ x: Int32, _ e: Int32) -> Int32 {
            let mask = Int64((1 as Int64) << Int64(e)) - 1
            let remainder = Int64(x) & mask
            let threshold = (mask >> 1) + (x < 0 ? 1 : 0)
            return Int32(truncatingIfNeeded: (Int64(x) >> Int64(e)) + (remainder > threshold ? 1 : 0))
        }
        func rescale(_ x: Int32, _ m: Int32, _ s: Int32) -> Int32 {
            let left = s > 0 ? s : 0, right = s > 0 ? 0 : -s
            return rdbpot(srdhm(Int32(truncatingIfNeeded: Int64(x) << Int64(left)), m), right)
        }
        func reference(_ a: [Int8], _ b: [Int8], _ p: AddQ8Params) -> [Int8] {
            zip(a, b).map { x, y in
                let l = Int64(p.leftShift)
                let xr = rescale(Int32(truncatingIfNeeded: (Int64(x) - Int64(p.aZeroPoint)) << l), p.aMultiplier, p.aShift)
                let yr = rescale(Int32(truncatingIfNeeded: (Int64(y) - Int64(p.bZeroPoint)) << l), p.bMultiplier, p.bShift)
                let o = Int64(rescale(xr &+ yr, p.outputMultiplier, p.outputShift)) + Int64(p.outputZeroPoint)
                let lo = max(Int64(p.clampMin), -128), hi = min(Int64(p.clampMax), 127)
                return Int8(min(max(o, lo), hi))
            }
        }
        var a: [Int8] = [], b: [Int8] = []
        for x in -128 ... 127 { for y in -128 ... 127 { a.append(Int8(x)); b.append(Int8(y)) } }
        var rng = SeededRNG(seed: 1616)
        for trial in 0 ..< 48 {
            let left = Int32([8, 9, 12, 20][trial % 4])
            // r with S = 31 + r − L around 22: inside, at the edge, one past it.
            func r() -> Int32 {
                let edge = left - 9
                return [0, 1, max(0, edge - 1), edge, edge + 1, rng.int32(in: 0 ... max(0, edge))][rng.int(in: 0 ... 5)]
            }
            func m() -> Int32 {
                let floor = Int32(1) << (30 - left)
                return [floor, floor + 1, 1 << 30, (1 << 30) + 1, Int32.max, rng.int32(in: 1 << 30 ... Int32.max)][rng.int(in: 0 ... 5)]
            }
            func zp() -> Int32 { [Int32(-128), 127, 0, rng.int32(in: -128 ... 127)][rng.int(in: 0 ... 3)] }
            let zo = zp()
            let p = AddQ8Params(aZeroPoint: zp(), bZeroPoint: zp(), outputZeroPoint: zo, leftShift: left,
                                aMultiplier: m(), aShift: -r(), bMultiplier: m(), bShift: trial % 7 == 3 ? 1 : -r(),
                                outputMultiplier: rng.chance(0.3) ? [Int32(1 << 30), Int32.max][rng.int(in: 0 ... 1)]
                                    : rng.int32(in: 1 << 30 ... Int32.max),
                                outputShift: rng.int32(in: -31 ... -10), clampMin: rng.chance(0.5) ? zo : -128,
                                clampMax: rng.chance(0.5) ? 127 : rng.int32(in: 0 ... 127))
            let got = runAddQ8(a, b, p, trial: trial)
            let want = reference(a, b, p)
            XCTAssertEqual(got, want, "add all pairs \(p)")
            XCTAssertEqual(want, Naive.addQ8(a: a, b: b, params: p), "the two references, \(p)")
        }
    }
}

/// gemmlowp's `MultiplyByQuantizedMultiplier` written out in Int64 from its definitions
/// (SaturatingRoundingDoublingHighMul with its nudge and truncating division, then
/// RoundingDivideByPOT), independent of the runtime's fixed-point code.
private func referenceRescale(_ x: Int32, _ m: Int32, _ s: Int32) -> Int32 {
    let left = s > 0 ? s : 0, right = s > 0 ? 0 : -s
    let a = Int32(truncatingIfNeeded: Int64(x) << Int64(left))
    var high = Int32.max
    if !(a == Int32.min && m == Int32.min) {
        let ab = Int64(a) * Int64(m)
        let nudge: Int64 = ab >= 0 ? 1 << 30 : 1 - (1 << 30)
        high = Int32(truncatingIfNeeded: (ab + nudge) / (1 << 31))
    }
    let mask = (Int64(1) << Int64(right)) - 1
    let remainder = Int64(high) & mask
    let threshold = (mask >> 1) + (high < 0 ? 1 : 0)
    return Int32(truncatingIfNeeded: (Int64(high) >> Int64(right)) + (remainder > threshold ? 1 : 0))
}

/// The output stage of the lower-bound tests (pointwise and depthwise below): a random output
/// zero point; per channel a multiplier (2^30 or Int32.max now and then) and a shift (now and then
/// anywhere in −31…30, else in `usualShifts`), or with `ties` 2^30 and 0…−3 so that rounding ties
/// of negative values come often; and a lower bound below the zero point, at it (a ReLU), just
/// above it or just below it, by `trial`.
func lowerBoundRequant(channels: Int, ties: Bool, usualShifts: ClosedRange<Int32>, trial: Int,
                       rng: inout SeededRNG) -> NaiveRequant {
    let zo = rng.int32(in: -128 ... 127)
    let multipliers = (0 ..< channels).map { _ in
        ties ? Int32(1 << 30) : rng.chance(0.2) ? [Int32(1 << 30), Int32.max][rng.int(in: 0 ... 1)]
            : rng.int32(in: 1 << 30 ... Int32.max)
    }
    let shifts = (0 ..< channels).map { _ in
        ties ? rng.int32(in: -3 ... 0) : rng.chance(0.1) ? rng.int32(in: -31 ... 30) : rng.int32(in: usualShifts)
    }
    let step = Int32(rng.int(in: 1 ... 3))
    let clampMin: Int32 = [-128, zo, min(127, zo + step), max(-128, zo - step)][trial % 4]
    let clampMax: Int32 = rng.chance(0.5) ? 127 : max(clampMin, rng.int32(in: 0 ... 127))
    return NaiveRequant(multipliers: multipliers, shifts: shifts, outputZeroPoint: zo, clampMin: clampMin, clampMax: clampMax)
}

extension NaiveRequant {
    /// The output byte of channel `channel` for the exact sum `acc`, written out in Int64.
    func reference(_ acc: Int64, channel: Int) -> Int8 {
        let r = Int64(referenceRescale(Int32(truncatingIfNeeded: acc), multipliers[channel], shifts[channel]))
            + Int64(outputZeroPoint)
        return Int8(min(max(r, max(Int64(clampMin), -128)), min(Int64(clampMax), 127)))
    }
}

extension KernelQ8Tests {
    /// Pointwise convs (1×1, stride 1, no padding: the packed path reads the input in place,
    /// and its last tiles from a padded copy) against a loop written here: odd input and output
    /// channel counts, pixel counts that leave 1–3 pixels after the tiles of 4, inputs at
    /// −128 and 127, zero points at the ends, multipliers 2^30 and Int32.max, shifts −31…30,
    /// and output stages whose lower bound is far below, just below, at and above the zero
    /// point (the epilogue without the correction of negative products takes the last two).
    func testPointwiseConvAgainstLoop() {
        var rng = SeededRNG(seed: 1617)
        for trial in 0 ..< 160 {
            let cin = [1, 3, 4, 5, 10, 13, 17, 21, 33, 40][trial % 10]
            let cout = [1, 7, 10, 15, 16, 17, 21, 26, 32, 37][(trial / 10) % 10]
            let h = rng.int(in: 1 ... 6), w = rng.int(in: 1 ... 9)
            let win = makeWindow(height: h, width: w, inputChannels: cin, outputChannels: cout, kernelHeight: 1, kernelWidth: 1)
            let zp: Int32 = [-128, 127, 0, rng.int32(in: -128 ... 127)][(trial / 4) % 4]
            // Every other run of 16 trials: small sums, ×0.5 and shifts 0…−3, so that the
            // rounding ties of negative values (where the correction matters) come often.
            let ties = (trial / 16) % 2 == 1
            let x = ties ? (0 ..< h * w * cin).map { _ in Int8(clamping: Int(zp) + rng.int(in: -3 ... 3)) }
                : rng.int8sWithExtremes(h * w * cin, extremes: 0.3)
            let weights = ties ? (0 ..< cin * cout).map { _ in Int8(rng.int(in: -1 ... 1)) }
                : rng.int8sWithExtremes(cin * cout, extremes: 0.3)
            let bias = (0 ..< cout).map { _ in
                ties ? rng.int32(in: -3 ... 3) : rng.chance(0.1) ? [Int32.min / 4, Int32.max / 4][rng.int(in: 0 ... 1)]
                    : rng.int32(in: -40_000 ... 40_000)
            }
            let q = lowerBoundRequant(channels: cout, ties: ties, usualShifts: -14 ... -4, trial: trial, rng: &rng)
            var want: [Int8] = []
            for p in 0 ..< h * w {
                for o in 0 ..< cout {
                    var acc = Int64(bias[o])
                    for i in 0 ..< cin { acc += (Int64(x[p * cin + i]) - Int64(zp)) * Int64(weights[i * cout + o]) }
                    want.append(q.reference(acc, channel: o))
                }
            }
            assertSame(runConv2dQ8(x, zeroPoint: zp, weights, bias, win, q, trial: trial), want,
                       "pointwise \(h)x\(w) \(cin)->\(cout) zp \(zp) clamp \(q.clampMin)...\(q.clampMax)")
        }
    }
}

extension KernelQ8Tests {
    /// Depthwise convs on the Int16 path (C ≥ 8: blocks of 8, 16 and 32 channels), whose
    /// requantization skips the correction of negative products when the output stage's lower
    /// bound is ≥ 0, against a loop written here: 3×3 with padding, strides 1 and 2, odd
    /// channel counts, lower bounds far below, just below, at and above the zero point,
    /// inputs at −128 and 127, multipliers 2^30 and Int32.max, shifts −31…30 (the ones
    /// outside `Requant16`'s domain never come, as `requantFitsOneShift` demands).
    func testDepthwiseLowerBoundAgainstLoop() {
        var rng = SeededRNG(seed: 1618)
        for trial in 0 ..< 120 {
            let c = [8, 9, 15, 16, 17, 21, 31, 32, 33, 40][trial % 10]
            let stride = trial % 3 == 2 ? 2 : 1
            let h = rng.int(in: 1 ... 9), w = rng.int(in: 1 ... 11)
            let win = makeWindow(height: h, width: w, inputChannels: c, outputChannels: c, kernelHeight: 3, kernelWidth: 3,
                                 strideHeight: stride, strideWidth: stride, padTop: 1, padBottom: 1, padLeft: 1, padRight: 1)
            let zp: Int32 = [-128, 127, 0, rng.int32(in: -128 ... 127)][(trial / 4) % 4]
            // Every other run of 16 trials: the rounding ties of negative values (as above).
            let ties = (trial / 16) % 2 == 1
            let x = ties ? (0 ..< h * w * c).map { _ in Int8(clamping: Int(zp) + rng.int(in: -3 ... 3)) }
                : rng.int8sWithExtremes(h * w * c, extremes: 0.3)
            let weights = ties ? (0 ..< 9 * c).map { _ in Int8(rng.int(in: -1 ... 1)) } : rng.int8sWithExtremes(9 * c, extremes: 0.3)
            let bias = (0 ..< c).map { _ in ties ? rng.int32(in: -3 ... 3) : rng.int32(in: -30_000 ... 30_000) }
            let q = lowerBoundRequant(channels: c, ties: ties, usualShifts: -12 ... -3, trial: trial, rng: &rng)
            var want: [Int8] = []
            for oy in 0 ..< win.outputHeight {
                for ox in 0 ..< win.outputWidth {
                    for ch in 0 ..< c {
                        var acc = Int64(bias[ch])
                        for ky in 0 ..< 3 {
                            for kx in 0 ..< 3 {
                                let iy = oy * stride - 1 + ky, ix = ox * stride - 1 + kx
                                guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                                acc += (Int64(x[(iy * w + ix) * c + ch]) - Int64(zp)) * Int64(weights[(ky * 3 + kx) * c + ch])
                            }
                        }
                        want.append(q.reference(acc, channel: ch))
                    }
                }
            }
            assertSame(runConv2dQ8(x, zeroPoint: zp, weights, bias, win, q, depthwise: true, trial: trial), want,
                       "depthwise \(h)x\(w)x\(c) stride \(stride) zp \(zp) clamp \(q.clampMin)...\(q.clampMax)")
        }
    }
}
