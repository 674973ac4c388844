// Float32 kernels: hand-checkable goldens, then random shapes against the
// naive Double references of SprigTestSupport (relative error < 1e-5), with
// every buffer fenced by guard pages and outputs pre-filled with NaN (an
// element the kernel fails to write shows up as NaN).
import Foundation
import XCTest
import SprigRuntime
import SprigTestSupport

// MARK: - Runners: copy to guarded buffers, call the kernel, read back

func runDenseF32(_ input: [Float], _ weights: [Float], _ bias: [Float]?, inputCount: Int, outputCount: Int,
                 clamp: ClampF32, placement p: GuardedBuffer<Float>.Placement = .end) -> [Float] {
    let x = GuardedBuffer(input, placement: p), k = GuardedBuffer(weights, placement: p)
    let b = bias.map { GuardedBuffer($0, placement: p) }
    let out = GuardedBuffer(repeating: Float.nan, count: outputCount, placement: p)
    denseF32(input: x.readOnly, weights: k.readOnly, bias: b?.readOnly, output: out.pointer,
             inputCount: inputCount, outputCount: outputCount, clamp: clamp)
    return out.array
}

func runConv2dF32(_ input: [Float], _ weights: [Float], _ bias: [Float]?, _ window: Window2D, clamp: ClampF32,
                  depthwise: Bool = false, placement p: GuardedBuffer<Float>.Placement = .end) -> [Float] {
    let x = GuardedBuffer(input, placement: p), k = GuardedBuffer(weights, placement: p)
    let b = bias.map { GuardedBuffer($0, placement: p) }
    let out = GuardedBuffer(repeating: Float.nan, count: window.outputCount, placement: p)
    if depthwise {
        depthwiseConv2dF32(input: x.readOnly, weights: k.readOnly, bias: b?.readOnly, output: out.pointer,
                           window: window, clamp: clamp)
    } else {
        conv2dF32(input: x.readOnly, weights: k.readOnly, bias: b?.readOnly, output: out.pointer,
                  window: window, clamp: clamp)
    }
    return out.array
}

enum PoolKind { case max, average }

func runPoolF32(_ kind: PoolKind, _ input: [Float], _ window: Window2D,
                placement p: GuardedBuffer<Float>.Placement = .end) -> [Float] {
    let x = GuardedBuffer(input, placement: p)
    let out = GuardedBuffer(repeating: Float.nan, count: window.outputCount, placement: p)
    switch kind {
    case .max: maxPool2dF32(input: x.readOnly, output: out.pointer, window: window)
    case .average: avgPool2dF32(input: x.readOnly, output: out.pointer, window: window)
    }
    return out.array
}

func runGlobalAveragePoolF32(_ input: [Float], height: Int, width: Int, channels: Int,
                             placement p: GuardedBuffer<Float>.Placement = .end) -> [Float] {
    let x = GuardedBuffer(input, placement: p)
    let out = GuardedBuffer(repeating: Float.nan, count: channels, placement: p)
    globalAveragePoolF32(input: x.readOnly, output: out.pointer, height: height, width: width, channels: channels)
    return out.array
}

func runAddF32(_ a: [Float], _ b: [Float], clamp: ClampF32, placement p: GuardedBuffer<Float>.Placement = .end) -> [Float] {
    let x = GuardedBuffer(a, placement: p), y = GuardedBuffer(b, placement: p)
    let out = GuardedBuffer(repeating: Float.nan, count: a.count, placement: p)
    addF32(a: x.readOnly, b: y.readOnly, output: out.pointer, count: a.count, clamp: clamp)
    return out.array
}

func runSoftmaxF32(_ input: [Float], placement p: GuardedBuffer<Float>.Placement = .end) -> [Float] {
    let x = GuardedBuffer(input, placement: p)
    let out = GuardedBuffer(repeating: Float.nan, count: input.count, placement: p)
    softmaxF32(input: x.readOnly, output: out.pointer, count: input.count)
    return out.array
}

final class KernelF32Tests: XCTestCase {
    // MARK: - Goldens (the same numbers are reused, quantized, in KernelQ8Tests)

    /// in [1, 2, 3], W = [[1, 0, −1], [2, 2, 2]], bias [0.5, −1]:
    /// out0 = 1 − 3 + 0.5 = −1.5, out1 = 2 + 4 + 6 − 1 = 11.
    func testDenseGolden() {
        let x: [Float] = [1, 2, 3], w: [Float] = [1, 0, -1, 2, 2, 2], b: [Float] = [0.5, -1]
        XCTAssertEqual(runDenseF32(x, w, b, inputCount: 3, outputCount: 2, clamp: .none), [-1.5, 11])
        XCTAssertEqual(runDenseF32(x, w, b, inputCount: 3, outputCount: 2, clamp: reluF32), [0, 11])
        XCTAssertEqual(runDenseF32(x, w, b, inputCount: 3, outputCount: 2, clamp: relu6F32), [0, 6])
        XCTAssertEqual(runDenseF32(x, w, nil, inputCount: 3, outputCount: 2, clamp: .none), [-2, 12])
    }

    /// input 3×3×1 = 1…9, two 2×2 filters: A = [1 2; 3 4] bias 1, B = [1 0; 0 −1] bias −1.
    /// A at (0,0): 1·1 + 2·2 + 4·3 + 5·4 + 1 = 38; (0,1): 2 + 6 + 15 + 24 + 1 = 48;
    /// (1,0): 4 + 10 + 21 + 32 + 1 = 68; (1,1): 5 + 12 + 24 + 36 + 1 = 78.
    /// B anywhere: x − x(+1,+1) − 1 = −4 − 1 = −5 (ReLU: 0).
    func testConv2dGolden() {
        let x: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        // HWIO: w[ky][kx][0][co] for co = A, B.
        let w: [Float] = [1, 1, 2, 0, 3, 0, 4, -1]
        let win = makeWindow(height: 3, width: 3, inputChannels: 1, outputChannels: 2, kernelHeight: 2, kernelWidth: 2)
        XCTAssertEqual(runConv2dF32(x, w, [1, -1], win, clamp: .none), [38, -5, 48, -5, 68, -5, 78, -5])
        XCTAssertEqual(runConv2dF32(x, w, [1, -1], win, clamp: reluF32), [38, 0, 48, 0, 68, 0, 78, 0])
    }

    /// Filter A only, padding 1 on top and left, stride 2 (output 2×2); window
    /// origins (−1,−1), (−1,1), (1,−1), (1,1):
    /// (0,0) only tap (0,0)·4 = 4; (0,1) 2·3 + 3·4 = 18; (1,0) 4·2 + 7·4 = 36; (1,1) 5 + 12 + 24 + 36 = 77.
    func testConv2dPaddingStrideGolden() {
        let x: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        let win = makeWindow(height: 3, width: 3, inputChannels: 1, outputChannels: 1, kernelHeight: 2, kernelWidth: 2,
                             strideHeight: 2, strideWidth: 2, padTop: 1, padLeft: 1)
        XCTAssertEqual(win.outputHeight, 2)
        XCTAssertEqual(runConv2dF32(x, [1, 2, 3, 4], nil, win, clamp: .none), [4, 18, 36, 77])
    }

    /// Channel 0 = 1…9 with filter [1 2; 3 4] (→ 37, 47, 67, 77), channel 1 = −(1…9)
    /// with filter of ones (→ −12, −16, −24, −28), bias 0.
    func testDepthwiseConv2dGolden() {
        var x: [Float] = []
        for v in 1 ... 9 { x += [Float(v), -Float(v)] }
        let w: [Float] = [1, 1, 2, 1, 3, 1, 4, 1]                  // [ky][kx][c]
        let win = makeWindow(height: 3, width: 3, inputChannels: 2, outputChannels: 2, kernelHeight: 2, kernelWidth: 2)
        XCTAssertEqual(runConv2dF32(x, w, nil, win, clamp: .none, depthwise: true),
                       [37, -12, 47, -16, 67, -24, 77, -28])
        XCTAssertEqual(runConv2dF32(x, w, [0, 30], win, clamp: relu6F32, depthwise: true), [6, 6, 6, 6, 6, 6, 6, 2])
    }

    /// 2×2 windows over 1…9: no padding, stride 1 → max 5, 6, 8, 9 and means 3, 4, 6, 7.
    /// Padding 1 top/left, stride 2 → windows {1}, {2, 3}, {4, 7}, {5, 6, 8, 9}:
    /// max 1, 3, 7, 9 and means over valid taps only 1, 2.5, 5.5, 7.
    func testPoolGoldens() {
        let x: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        let plain = makeWindow(height: 3, width: 3, inputChannels: 1, outputChannels: 1, kernelHeight: 2, kernelWidth: 2)
        let padded = makeWindow(height: 3, width: 3, inputChannels: 1, outputChannels: 1, kernelHeight: 2, kernelWidth: 2,
                                strideHeight: 2, strideWidth: 2, padTop: 1, padLeft: 1)
        XCTAssertEqual(runPoolF32(.max, x, plain), [5, 6, 8, 9])
        XCTAssertEqual(runPoolF32(.average, x, plain), [3, 4, 6, 7])
        XCTAssertEqual(runPoolF32(.max, x, padded), [1, 3, 7, 9])
        XCTAssertEqual(runPoolF32(.average, x, padded), [1, 2.5, 5.5, 7])
        // Negative values: max of {−5, −2} is −2 (padding is not a 0).
        let neg = makeWindow(height: 1, width: 2, inputChannels: 1, outputChannels: 1, kernelHeight: 2, kernelWidth: 2,
                             padTop: 1)
        XCTAssertEqual(runPoolF32(.max, [-5, -2], neg), [-2])
    }

    /// channel 0: 1, 2, 3, 4 → 2.5; channel 1: −1, 0, 0, 5 → 1.
    func testGlobalAveragePoolGolden() {
        XCTAssertEqual(runGlobalAveragePoolF32([1, -1, 2, 0, 3, 0, 4, 5], height: 2, width: 2, channels: 2), [2.5, 1])
    }

    /// [1, −2, 3] + [0.5, 0.5, 4] = [1.5, −1.5, 7]; ReLU6 → [1.5, 0, 6].
    func testAddGolden() {
        XCTAssertEqual(runAddF32([1, -2, 3], [0.5, 0.5, 4], clamp: .none), [1.5, -1.5, 7])
        XCTAssertEqual(runAddF32([1, -2, 3], [0.5, 0.5, 4], clamp: relu6F32), [1.5, 0, 6])
    }

    /// [0, ln 2, ln 5] + 7 → e^x ∝ 1, 2, 5 → [1/8, 2/8, 5/8].
    func testSoftmaxGolden() {
        let got = runSoftmaxF32([7, 7 + Float(M_LN2), 7 + Float(log(5.0))])
        assertClose(got, [0.125, 0.25, 0.625], tolerance: 1e-6, "softmax golden")
        XCTAssertEqual(runSoftmaxF32([3]), [1])
    }

    /// scale 0.5, zero point −10: 1.25 → 2.5 → 3 → −7; −1.25 → −13; 100 → 127;
    /// NaN → −10; +∞ → 127; −∞ → −128; 0.24 → 0.48 → 0 → −10.
    func testQuantizeGolden() {
        let x: [Float] = [1.25, -1.25, 100, .nan, .infinity, -.infinity, 0.24, 3e38, -3e38]
        var q = [Int8](repeating: 0, count: x.count)
        quantizeF32ToQ8(input: x, output: &q, count: x.count, scale: 0.5, zeroPoint: -10)
        XCTAssertEqual(q, [-7, -13, 127, -10, 127, -128, -10, 127, -128])
        var back = [Float](repeating: 0, count: 3)
        dequantizeQ8ToF32(input: [-7, -128, 127], output: &back, count: 3, scale: 0.5, zeroPoint: -10)
        XCTAssertEqual(back, [1.5, -59, 68.5])
    }

    func testExpF32WorkedExampleAndSpecialValues() {
        XCTAssertEqual(expF32(0), 1)
        XCTAssertEqual(Double(expF32(-1)), Foundation.exp(-1.0), accuracy: 1e-7 * 0.368)
        XCTAssertEqual(expF32(-200), 0)
        XCTAssertEqual(expF32(100), .infinity)
        XCTAssertTrue(expF32(.nan).isNaN)
        XCTAssertGreaterThan(expF32(-103), 0)                 // subnormal result, not flushed
        XCTAssertTrue(expF32(88.72).isFinite)
    }

    /// Relative error < 2e-7 against Foundation's exp (in Double) over [-87, 0]:
    /// a uniform grid of 400,000 points plus every Float in [-2^-20, 0] step 2^-30 … and near the ends.
    func testExpF32AgainstFoundation() {
        var worst = 0.0, worstX: Float = 0
        func check(_ x: Float) {
            let ref = Foundation.exp(Double(x))
            let rel = abs(Double(expF32(x)) - ref) / ref
            if rel > worst { worst = rel; worstX = x }
        }
        for i in 0 ... 400_000 { check(-87 * Float(i) / 400_000) }
        var rng = SeededRNG(seed: 7)
        for _ in 0 ..< 100_000 { check(-rng.float(in: 0 ... 87)) }
        for _ in 0 ..< 20_000 { check(-rng.float(in: 0 ... 1e-3)) }
        for x in [Float(-87), -86.99999, -0.34657359, 0.34657359, -0.6931472, -1e-30, -Float.leastNormalMagnitude] { check(x) }
        XCTAssertLessThan(worst, 2e-7, "worst relative error at x = \(worstX)")
        // Over the whole finite range with normal results: still ≤ 2e-7.
        for i in 0 ... 20_000 { check(-87.3 + 175.9 * Float(i) / 20_000) }
        XCTAssertLessThan(worst, 2e-7, "worst relative error at x = \(worstX)")
    }

    // MARK: - Random shapes against the naive references

    func testDenseRandomShapes() {
        var rng = SeededRNG(seed: 11)
        for trial in 0 ..< 60 {
            let n = rng.int(in: 1 ... 150), m = rng.int(in: 1 ... 23)
            let x = rng.floats(n, in: -3 ... 3), w = rng.floats(n * m), b = rng.chance(0.8) ? rng.floats(m) : nil
            let clamp = randomClamp(&rng)
            let got = runDenseF32(x, w, b, inputCount: n, outputCount: m, clamp: clamp, placement: placement(trial))
            assertClose(got, Naive.dense(input: x, weights: w, bias: b, inputCount: n, outputCount: m, clamp: clamp),
                        "dense \(n)→\(m)",
                        unclamped: Naive.dense(input: x, weights: w, bias: b, inputCount: n, outputCount: m, clamp: .none))
        }
    }

    func testConv2dRandomShapes() {
        var rng = SeededRNG(seed: 12)
        let outputChannelChoices = [1, 3, 7, 8, 9, 15, 16, 17, 24, 31, 33, 40, 64, 71]
        for trial in 0 ..< 70 {
            let cin = rng.int(in: 1 ... 19)
            let cout = outputChannelChoices[rng.int(in: 0 ... outputChannelChoices.count - 1)]
            let win = randomWindow(&rng, maxExtent: 11, inputChannels: cin, outputChannels: cout)
            let x = rng.floats(win.inputCount), w = rng.floats(win.kernelHeight * win.kernelWidth * cin * cout)
            let b = rng.chance(0.8) ? rng.floats(cout) : nil
            let clamp = randomClamp(&rng)
            let got = runConv2dF32(x, w, b, win, clamp: clamp, placement: placement(trial))
            assertClose(got, Naive.conv2d(input: x, weights: w, bias: b, window: win, clamp: clamp), "conv " + win.label,
                        unclamped: Naive.conv2d(input: x, weights: w, bias: b, window: win, clamp: .none))
        }
    }

    /// Mostly stride 1, wide rows and tall columns, so that most pixels go
    /// through the 4-pixel tiles (horizontal and vertical, 16-channel blocks)
    /// and their edges.
    func testConv2dTilePath() {
        var rng = SeededRNG(seed: 13)
        for trial in 0 ..< 24 {
            let k = rng.int(in: 1 ... 5), pad = rng.int(in: 0 ... k / 2)
            let cin = rng.int(in: 1 ... 9), cout = [16, 32, 48, 19, 35, 64][trial % 6]
            let win = makeWindow(height: rng.int(in: k ... 13), width: rng.int(in: max(k, 4) ... 21),
                                 inputChannels: cin, outputChannels: cout, kernelHeight: k, kernelWidth: k,
                                 strideHeight: trial % 4 == 3 ? 2 : 1, strideWidth: trial % 5 == 4 ? 2 : 1,
                                 padTop: pad, padBottom: pad, padLeft: pad, padRight: pad)
            let x = rng.floats(win.inputCount), w = rng.floats(k * k * cin * cout), b = rng.floats(cout)
            let got = runConv2dF32(x, w, b, win, clamp: reluF32, placement: placement(trial))
            assertClose(got, Naive.conv2d(input: x, weights: w, bias: b, window: win, clamp: reluF32), "tile " + win.label,
                        unclamped: Naive.conv2d(input: x, weights: w, bias: b, window: win, clamp: .none))
        }
    }

    /// Dense with every count of `oddChannelCounts` as outputs (the last group
    /// of 4 rows moved back) and as inputs (vector and scalar tails), and wide inputs.
    func testDenseOddCounts() {
        var rng = SeededRNG(seed: 18)
        for (i, m) in oddChannelCounts.enumerated() {
            for n in oddChannelCounts + [64, 150] {
                let x = rng.floats(n, in: -3 ... 3), w = rng.floats(n * m), b = n % 2 == 0 ? nil : rng.floats(m)
                let got = runDenseF32(x, w, b, inputCount: n, outputCount: m, clamp: reluF32, placement: placement(i + n))
                assertClose(got, Naive.dense(input: x, weights: w, bias: b, inputCount: n, outputCount: m, clamp: reluF32),
                            "dense \(n)→\(m)",
                            unclamped: Naive.dense(input: x, weights: w, bias: b, inputCount: n, outputCount: m, clamp: .none))
            }
        }
    }

    /// Every output channel count of `oddChannelCounts` (so the 16-, 8- and 4-wide
    /// tiles with their last block moved back, and the pixel path below 4), odd
    /// and even input channel counts (an odd last tap), every shape of
    /// `oddChannelShapes`, against the naive reference.
    func testConv2dOddChannelCounts() {
        var rng = SeededRNG(seed: 16)
        for (i, cout) in oddChannelCounts.enumerated() {
            for (s, shape) in oddChannelShapes.enumerated() {
                let cin = [1, 3, 19, 28][(i + s) % 4]
                let win = oddChannelWindow(height: 9 + s, width: 13 - s, inputChannels: cin, outputChannels: cout,
                                           shape: shape)
                let x = rng.floats(win.inputCount), w = rng.floats(shape.kernel * shape.kernel * cin * cout)
                let b = s == 4 ? nil : rng.floats(cout)
                let clamp = s % 2 == 0 ? reluF32 : .none
                let got = runConv2dF32(x, w, b, win, clamp: clamp, placement: placement(i + s))
                assertClose(got, Naive.conv2d(input: x, weights: w, bias: b, window: win, clamp: clamp),
                            "odd channels " + win.label,
                            unclamped: Naive.conv2d(input: x, weights: w, bias: b, window: win, clamp: .none))
            }
        }
    }

    /// Depthwise with every channel count of `oddChannelCounts` and every shape.
    func testDepthwiseConv2dOddChannelCounts() {
        var rng = SeededRNG(seed: 17)
        for (i, c) in oddChannelCounts.enumerated() {
            for (s, shape) in oddChannelShapes.enumerated() {
                let win = oddChannelWindow(height: 8 + s, width: 11 - s, inputChannels: c, outputChannels: c, shape: shape)
                let x = rng.floats(win.inputCount), w = rng.floats(shape.kernel * shape.kernel * c)
                let b = s == 4 ? nil : rng.floats(c)
                let got = runConv2dF32(x, w, b, win, clamp: relu6F32, depthwise: true, placement: placement(i + s))
                assertClose(got, Naive.depthwiseConv2d(input: x, weights: w, bias: b, window: win, clamp: relu6F32),
                            "odd channels depthwise " + win.label,
                            unclamped: Naive.depthwiseConv2d(input: x, weights: w, bias: b, window: win, clamp: .none))
            }
        }
    }

    /// The three conv layers of the reference CNN (3×3, 'same', ReLU).
    func testConv2dReferenceNetworkLayers() {
        var rng = SeededRNG(seed: 14)
        for (size, cin, cout) in [(28, 1, 16), (14, 16, 32), (7, 32, 64)] {
            let win = makeWindow(height: size, width: size, inputChannels: cin, outputChannels: cout,
                                 kernelHeight: 3, kernelWidth: 3, padTop: 1, padBottom: 1, padLeft: 1, padRight: 1)
            let x = rng.floats(win.inputCount, in: 0 ... 2), w = rng.floats(9 * cin * cout), b = rng.floats(cout)
            let got = runConv2dF32(x, w, b, win, clamp: reluF32)
            assertClose(got, Naive.conv2d(input: x, weights: w, bias: b, window: win, clamp: reluF32), win.label)
        }
    }

    func testDepthwiseConv2dRandomShapes() {
        var rng = SeededRNG(seed: 15)
        for trial in 0 ..< 60 {
            let c = [1, 2, 5, 8, 13, 16, 17, 24, 33, 40][trial % 10]
            let win = randomWindow(&rng, maxExtent: 12, inputChannels: c, outputChannels: c)
            let x = rng.floats(win.inputCount), w = rng.floats(win.kernelHeight * win.kernelWidth * c)
            let b = rng.chance(0.8) ? rng.floats(c) : nil
            let clamp = randomClamp(&rng)
            let got = runConv2dF32(x, w, b, win, clamp: clamp, depthwise: true, placement: placement(trial))
            assertClose(got, Naive.depthwiseConv2d(input: x, weights: w, bias: b, window: win, clamp: clamp),
                        "depthwise " + win.label,
                        unclamped: Naive.depthwiseConv2d(input: x, weights: w, bias: b, window: win, clamp: .none))
        }
    }

    /// The Float32 paths of 3×3 depthwise ops (DepthwiseRuns.swift: rows as runs of lanes where
    /// `runsPay`, channel blocks with their weights held for C ≥ 16, the per-channel loops between)
    /// compute what the per-pixel kernel does, bit for bit: for each output, the bias, then
    /// the valid taps row by row, fused multiply-adds for C ≥ 8 and a multiply then an add
    /// below, then the clamp. That loop is written out here and compared exactly.
    func testDepthwiseConv2d3x3PathsAreThePerPixelArithmetic() {
        var rng = SeededRNG(seed: 18)
        var trial = 0
        for c in Array(1 ... 17) + [24, 31, 32, 33, 40] {
            for (width, pads, stride) in [(3, (1, 1, 1, 1), (1, 1)), (9, (0, 0, 0, 0), (1, 1)), (33, (1, 1, 1, 1), (1, 1)),
                                          (40, (1, 0, 0, 2), (2, 1)), (70, (0, 1, 2, 0), (1, 2)),
                                          (5, (3, 3, 3, 3), (3, 1))] {   // rows with no valid kernel row
                let height = 2 + trial % 5
                let win = makeWindow(height: height, width: width, inputChannels: c, outputChannels: c,
                                     kernelHeight: 3, kernelWidth: 3, strideHeight: stride.0, strideWidth: stride.1,
                                     padTop: pads.0, padBottom: pads.1, padLeft: pads.2, padRight: pads.3)
                let x = rng.floats(win.inputCount), w = rng.floats(9 * c)
                let b = trial % 7 == 3 ? nil : rng.floats(c)
                let clamp = trial % 2 == 0 ? relu6F32 : ClampF32(lower: -.infinity, upper: .infinity)
                let got = runConv2dF32(x, w, b, win, clamp: clamp, depthwise: true, placement: placement(trial))
                var want = [Float](repeating: 0, count: win.outputCount)
                for oy in 0 ..< win.outputHeight {
                    for ox in 0 ..< win.outputWidth {
                        for ch in 0 ..< c {
                            var acc: Float = b?[ch] ?? 0
                            for ky in 0 ..< 3 {
                                let iy = oy * win.strideHeight - win.padTop + ky
                                guard iy >= 0 && iy < win.inputHeight else { continue }
                                for kx in 0 ..< 3 {
                                    let ix = ox * win.strideWidth - win.padLeft + kx
                                    guard ix >= 0 && ix < win.inputWidth else { continue }
                                    let v = x[(iy * win.inputWidth + ix) * c + ch], k = w[(ky * 3 + kx) * c + ch]
                                    acc = c >= 8 ? acc.addingProduct(v, k) : acc + v * k
                                }
                            }
                            want[(oy * win.outputWidth + ox) * c + ch] = min(max(acc, clamp.lower), clamp.upper)
                        }
                    }
                }
                XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "depthwise 3x3 " + win.label)
                trial += 1
            }
        }
    }

    func testPoolsRandomShapes() {
        var rng = SeededRNG(seed: 16)
        for trial in 0 ..< 80 {
            let c = [1, 3, 5, 8, 9, 14, 16, 17, 29, 32][trial % 10]
            let win = randomWindow(&rng, maxExtent: 12, inputChannels: c, outputChannels: c)
            let x = rng.floats(win.inputCount, in: -5 ... 5)
            assertClose(runPoolF32(.max, x, win, placement: placement(trial)), Naive.maxPool2d(input: x, window: win),
                        "max " + win.label)
            assertClose(runPoolF32(.average, x, win, placement: placement(trial)), Naive.avgPool2d(input: x, window: win),
                        "avg " + win.label)
        }
    }

    func testGlobalAveragePoolRandomShapes() {
        var rng = SeededRNG(seed: 17)
        for trial in 0 ..< 40 {
            let h = rng.int(in: 1 ... 9), w = rng.int(in: 1 ... 9), c = rng.int(in: 1 ... 70)
            let x = rng.floats(h * w * c, in: -4 ... 4)
            assertClose(runGlobalAveragePoolF32(x, height: h, width: w, channels: c, placement: placement(trial)),
                        Naive.globalAveragePool(input: x, height: h, width: w, channels: c), "gap \(h)x\(w)x\(c)")
        }
    }

    func testAddRandomCounts() {
        var rng = SeededRNG(seed: 18)
        for trial in 0 ..< 40 {
            let n = rng.int(in: 0 ... 300)
            let a = rng.floats(n, in: -8 ... 8), b = rng.floats(n, in: -8 ... 8)
            let clamp = randomClamp(&rng)
            assertClose(runAddF32(a, b, clamp: clamp, placement: placement(trial)), Naive.add(a: a, b: b, clamp: clamp),
                        "add \(n)")
        }
        // In place: output is a.
        var a: [Float] = [1, 2, 3], b: [Float] = [4, 5, 6]
        a.withUnsafeMutableBufferPointer { pa in
            addF32(a: pa.baseAddress!, b: &b, output: pa.baseAddress!, count: 3, clamp: .none)
        }
        XCTAssertEqual(a, [5, 7, 9])
    }

    func testSoftmaxRandom() {
        var rng = SeededRNG(seed: 19)
        for trial in 0 ..< 40 {
            let n = rng.int(in: 1 ... 100)
            let x = rng.floats(n, in: -30 ... 30)
            let got = runSoftmaxF32(x, placement: placement(trial))
            assertClose(got, Naive.softmax(x), tolerance: 2e-6, "softmax \(n)")
            XCTAssertEqual(got.reduce(0, +), 1, accuracy: 1e-5)
        }
        // Large spread: tiny probabilities stay finite and non-negative.
        let got = runSoftmaxF32([0, -80, -200, 50])
        assertClose(got, Naive.softmax([0, -80, -200, 50]), tolerance: 1e-6, "softmax spread")
    }

    func testQuantizeDequantizeRandom() {
        var rng = SeededRNG(seed: 20)
        for _ in 0 ..< 40 {
            let n = rng.int(in: 0 ... 200)
            let scale = rng.float(in: 0.001 ... 0.5), zp = rng.int32(in: -128 ... 127)
            var x = rng.floats(n, in: -100 ... 100)
            // Exact halves: x = (k + 0.5)·scale rounds away from zero.
            for i in stride(from: 0, to: n, by: 7) { x[i] = (Float(rng.int(in: -60 ... 60)) + 0.5) * scale }
            var q = [Int8](repeating: 0, count: n)
            quantizeF32ToQ8(input: x, output: &q, count: n, scale: scale, zeroPoint: zp)
            assertSame(q, Naive.quantize(x, scale: scale, zeroPoint: zp), "quantize")
            var back = [Float](repeating: .nan, count: n)
            dequantizeQ8ToF32(input: q, output: &back, count: n, scale: scale, zeroPoint: zp)
            assertClose(back, Naive.dequantize(q, scale: scale, zeroPoint: zp), tolerance: 1e-6, "dequantize")
        }
    }
}
