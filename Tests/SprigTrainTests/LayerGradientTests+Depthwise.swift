// DepthwiseConv2D and ReLU6: finite-difference checks of backward (with LayerGradientTests.check),
// the fast kernels against the plain-loop references on odd shapes, and accumulation.

import XCTest
@testable import SprigTrain
import SprigTestSupport

extension LayerGradientTests {
    func testDepthwiseConv2DGradients() {
        var rng = SprigRNG(seed: 41)
        // (kernel, stride, padding, bias, H, W, C): channels hit the SIMD16, SIMD8 and scalar paths.
        let cases: [(Int, Int, Int, Bool, Int, Int, Int)] = [
            (3, 1, 1, false, 5, 5, 3),
            (3, 2, 1, true, 6, 5, 7),
            (5, 1, 2, true, 5, 6, 19),
            (3, 2, 0, true, 7, 4, 11),
        ]
        for (k, s, pad, bias, h, w, c) in cases {
            let dw = DepthwiseConv2D(channels: c, kernelSize: k, stride: s, padding: pad, bias: bias, rng: &rng)
            dw.bias?.value = randomTensor([c], &rng)
            check(dw, input: randomTensor([2, h, w, c], &rng), epsilon: 1e-2, tolerance: smooth)
        }
    }

    func testReLU6SkipsKinks() {
        var rng = SprigRNG(seed: 42)
        var x = randomTensor([4, 8], &rng, scale: 4)
        x.storage[0] += 3  // spread over (−∞, 0), (0, 6) and (6, ∞)
        let epsilon: Float = 1e-3
        x.storage[0] = 0
        x.storage[1] = 6
        x.storage[2] = epsilon / 2
        x.storage[3] = 6 - epsilon / 3
        x.storage[4] = 7.5
        x.storage[5] = 2.5
        let report = check(ReLU6(), input: x, epsilon: epsilon, tolerance: smooth,
                           inputSkip: { abs(x.storage[$0]) <= 1.5 * epsilon || abs(x.storage[$0] - 6) <= 1.5 * epsilon })
        XCTAssertGreaterThanOrEqual(report.skipped, 4)
        XCTAssertGreaterThan(report.checked, 24)

        // The documented side at the kinks: 0 at exactly 0 and exactly 6, dy strictly inside.
        let relu6 = ReLU6()
        let y = relu6.forward(Tensor(shape: [5], storage: [-1, 0, 3, 6, 9]), training: true)
        XCTAssertEqual(y.storage, [0, 0, 3, 6, 6])
        XCTAssertEqual(relu6.backward(Tensor(shape: [5], storage: [1, 2, 3, 4, 5])).storage, [0, 0, 3, 0, 0])
    }

    /// The fast forward and backward equal the naive loops on odd shapes, single- and multi-threaded.
    func testDepthwiseFastMatchesNaive() {
        var rng = SprigRNG(seed: 43)
        func relativeError(_ a: [Float], _ b: [Float]) -> Float {
            let scale = max(1, b.map { abs($0) }.max() ?? 0)
            return (zip(a, b).map { abs($0 - $1) }.max() ?? 0) / scale
        }
        let savedThreshold = ParallelThresholds.values
        defer { ParallelThresholds.values = savedThreshold }
        var cases = 0
        for c in [1, 3, 7, 19] {
            for stride in [1, 2] {
                for padding in [0, 1] {
                    for k in [3, 5] {
                        for (h, w) in [(7, 5), (6, 9)] {
                            let dw = DepthwiseConv2D(channels: c, kernelSize: k, stride: stride, padding: padding,
                                                     bias: (c + k) % 2 == 0, rng: &rng)
                            dw.bias?.value = randomTensor([c], &rng)
                            let x = randomTensor([3, h, w, c], &rng)
                            let label = "C=\(c) s=\(stride) p=\(padding) k=\(k) \(h)×\(w)"
                            ParallelThresholds.values = savedThreshold
                            dw.threads = 1
                            let y = dw.forward(x, training: true)
                            let want = dw.naiveForward(x)
                            XCTAssertEqual(y.shape, want.shape, label)
                            XCTAssertLessThan(relativeError(y.storage, want.storage), 1e-5, label)

                            let dy = randomTensor(y.shape, &rng)
                            dw.zeroGrad()
                            let dx = dw.backward(dy)
                            let ref = dw.naiveBackward(x, dy)
                            XCTAssertLessThan(relativeError(dx.storage, ref.dx.storage), 1e-5, "dx \(label)")
                            XCTAssertLessThan(relativeError(dw.weight.grad.storage, ref.weight), 1e-5, "dW \(label)")
                            if let b = dw.bias { XCTAssertLessThan(relativeError(b.grad.storage, ref.bias), 1e-5, "db \(label)") }

                            // Threaded: bit-identical to one thread.
                            let oneThreadGrad = dw.weight.grad.storage
                            ParallelThresholds.values = 0
                            dw.threads = 2
                            XCTAssertEqual(dw.forward(x, training: true).storage, y.storage, "threaded y \(label)")
                            dw.zeroGrad()
                            XCTAssertEqual(dw.backward(dy).storage, dx.storage, "threaded dx \(label)")
                            XCTAssertEqual(dw.weight.grad.storage, oneThreadGrad, "threaded dW \(label)")
                            cases += 1
                        }
                    }
                }
            }
        }
        XCTAssertEqual(cases, 64)
    }

    func testDepthwiseBackwardAccumulates() {
        var rng = SprigRNG(seed: 44)
        let dw = DepthwiseConv2D(channels: 5, kernelSize: 3, stride: 1, padding: 1, rng: &rng)
        let x = randomTensor([2, 4, 4, 5], &rng)
        let y = dw.forward(x, training: true)
        let dy = randomTensor(y.shape, &rng)
        dw.zeroGrad()
        _ = dw.backward(dy)
        let once = dw.weight.grad.storage, onceBias = dw.bias!.grad.storage
        _ = dw.backward(dy)
        for i in once.indices { XCTAssertEqual(dw.weight.grad.storage[i], 2 * once[i], accuracy: 1e-5 * max(1, abs(once[i]))) }
        for i in onceBias.indices { XCTAssertEqual(dw.bias!.grad.storage[i], 2 * onceBias[i], accuracy: 1e-5 * max(1, abs(onceBias[i]))) }
        dw.zeroGrad()
        XCTAssertTrue(dw.weight.grad.storage.allSatisfy { $0 == 0 })
        dw.computesInputGradient = false
        XCTAssertEqual(dw.backward(dy).shape, [0])
        XCTAssertEqual(dw.weight.grad.storage, once)
    }
}
