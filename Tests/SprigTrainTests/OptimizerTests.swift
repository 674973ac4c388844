// Optimizers, schedules and clipping against arithmetic written out by hand.
//
// Every optimizer test runs three steps on one weight p0 = 1 with learning rate 0.1 and the
// gradients 0.5, −0.25, 1.0 (the same at every step for every test), so the expected values
// below can be followed line by line.

import XCTest
@testable import SprigTrain

final class OptimizerTests: XCTestCase {
    private let gradients: [Float] = [0.5, -0.25, 1.0]

    /// Runs three steps on a single weight starting at 1, returning the weight after each.
    private func run(_ optimizer: Optimizer) -> [Double] {
        var store = ArrayParameterStore(values: [[1]])
        var trace: [Double] = []
        for g in gradients {
            store.gradients[0][0] = g
            optimizer.step(&store)
            trace.append(Double(store.values[0][0]))
        }
        return trace
    }

    private func assertClose(_ actual: [Double], _ expected: [Double], tolerance: Double = 2e-6,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, file: file, line: line)
        for (i, (a, e)) in zip(actual, expected).enumerated() {
            XCTAssertEqual(a, e, accuracy: tolerance * max(1, abs(e)), "step \(i + 1)", file: file, line: line)
        }
    }

    // MARK: SGD

    func testPlainSGD() {
        let p1 = 1 - 0.1 * 0.5
        let p2 = p1 - 0.1 * -0.25
        let p3 = p2 - 0.1 * 1.0
        assertClose(run(SGD(learningRate: 0.1)), [p1, p2, p3])  // 0.95, 0.975, 0.875
    }

    func testSGDMomentum() {
        // b1 = g1 (the first step copies the gradient), then b = 0.9·b + g.
        let b1 = 0.5, p1 = 1 - 0.1 * b1                 // 0.95
        let b2 = 0.9 * b1 + -0.25, p2 = p1 - 0.1 * b2   // b2 = 0.2, p2 = 0.93
        let b3 = 0.9 * b2 + 1.0, p3 = p2 - 0.1 * b3     // b3 = 1.18, p3 = 0.812
        let sgd = SGD(learningRate: 0.1, momentum: 0.9)
        assertClose(run(sgd), [p1, p2, p3])
        XCTAssertEqual(Double(sgd.momentumBuffer(parameter: 0)![0]), b3, accuracy: 1e-6)
    }

    func testSGDNesterov() {
        // Same buffers as plain momentum; the step uses d = g + 0.9·b.
        let b1 = 0.5, p1 = 1 - 0.1 * (0.5 + 0.9 * b1)           // 0.905
        let b2 = 0.9 * b1 - 0.25, p2 = p1 - 0.1 * (-0.25 + 0.9 * b2)  // 0.912
        let b3 = 0.9 * b2 + 1.0, p3 = p2 - 0.1 * (1.0 + 0.9 * b3)     // 0.7058
        assertClose(run(SGD(learningRate: 0.1, momentum: 0.9, nesterov: true)), [p1, p2, p3])
    }

    func testSGDCoupledWeightDecay() {
        // g' = g + 0.1·p enters the momentum buffer.
        let g1 = 0.5 + 0.1 * 1.0, b1 = g1, p1 = 1 - 0.1 * b1               // 0.94
        let g2 = -0.25 + 0.1 * p1, b2 = 0.9 * b1 + g2, p2 = p1 - 0.1 * b2  // 0.9016
        let g3 = 1.0 + 0.1 * p2, b3 = 0.9 * b2 + g3, p3 = p2 - 0.1 * b3    // 0.758024
        assertClose(run(SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.1)), [p1, p2, p3])
        // Without momentum: p ← p − 0.1·(g + 0.1·p).
        let q1 = 1 - 0.1 * (0.5 + 0.1 * 1.0)
        let q2 = q1 - 0.1 * (-0.25 + 0.1 * q1)
        let q3 = q2 - 0.1 * (1.0 + 0.1 * q2)
        assertClose(run(SGD(learningRate: 0.1, weightDecay: 0.1)), [q1, q2, q3])
    }

    /// A 37-value parameter (two 16-wide blocks and a scalar tail of 5) against the update
    /// written out element by element in Float, to the bit: momentum, Nesterov and weight decay,
    /// on one thread and split over two (the threshold lowered so that 37 values split).
    func testSGDVectorBlocksMatchScalarUpdateBitForBit() {
        var rng = SprigRNG(seed: 9)
        let start = (0..<37).map { _ in rng.nextFloat() * 2 - 1 }
        let steps = (0..<3).map { _ in (0..<37).map { _ in rng.nextFloat() - 0.5 } }
        let (savedValues, savedThreads) = (ParallelThresholds.values, GEMM.defaultThreads)
        defer { (ParallelThresholds.values, GEMM.defaultThreads) = (savedValues, savedThreads) }
        for (nesterov, threads) in [(false, 1), (true, 1), (false, 2), (true, 2)] {
            (ParallelThresholds.values, GEMM.defaultThreads) = threads == 1 ? (savedValues, 1) : (1, 2)
            let (lr, mu, wd): (Float, Float, Float) = (0.05, 0.9, 5e-4)
            var store = ArrayParameterStore(values: [start])
            var p = start, b = [Float](repeating: 0, count: 37)
            let sgd = SGD(learningRate: lr, momentum: mu, nesterov: nesterov, weightDecay: wd)
            for (step, grad) in steps.enumerated() {
                store.gradients[0] = grad
                sgd.step(&store)
                for i in 0..<37 {
                    let g = grad[i] + wd * p[i]
                    b[i] = step == 0 ? g : mu * b[i] + g
                    p[i] = p[i] - lr * (nesterov ? g + mu * b[i] : b[i])
                }
                XCTAssertEqual(store.values[0].map(\.bitPattern), p.map(\.bitPattern), "step \(step + 1), nesterov \(nesterov), \(threads) threads")
                XCTAssertEqual(sgd.momentumBuffer(parameter: 0)!.map(\.bitPattern), b.map(\.bitPattern))
            }
        }
    }

    // MARK: Adam

    func testAdam() {
        // β1 = 0.9, β2 = 0.999, ε = 1e-8; bias corrections 1 − β^t:
        //   t=1: 0.1, 0.001   t=2: 0.19, 0.001999   t=3: 0.271, 0.002997001
        let m1 = 0.1 * 0.5, v1 = 0.001 * 0.25                                  // 0.05, 0.00025
        let p1 = 1 - (0.1 / 0.1) * m1 / (v1.squareRoot() / 0.001.squareRoot() + 1e-8)
        let m2 = 0.9 * m1 + 0.1 * -0.25, v2 = 0.999 * v1 + 0.001 * 0.0625      // 0.02, 0.00031225
        let p2 = p1 - (0.1 / 0.19) * m2 / (v2.squareRoot() / 0.001999.squareRoot() + 1e-8)
        let m3 = 0.9 * m2 + 0.1 * 1.0, v3 = 0.999 * v2 + 0.001 * 1.0           // 0.118, 0.00131193775
        let p3 = p2 - (0.1 / 0.271) * m3 / (v3.squareRoot() / 0.002997001.squareRoot() + 1e-8)
        let adam = Adam(learningRate: 0.1)
        assertClose(run(adam), [p1, p2, p3])
        XCTAssertEqual(p1, 0.9, accuracy: 1e-7, "the first Adam step moves by ≈ lr")
        let (m, v) = adam.moments(parameter: 0)!
        XCTAssertEqual(Double(m[0]), m3, accuracy: 1e-7)
        XCTAssertEqual(Double(v[0]), v3, accuracy: 1e-9)
        XCTAssertEqual(adam.stepCount, 3)
    }

    func testAdamCoupledWeightDecay() {
        // g' = g + 0.1·p goes into both moments.
        let g1 = 0.5 + 0.1 * 1.0
        let m1 = 0.1 * g1, v1 = 0.001 * g1 * g1
        let p1 = 1 - 1.0 * m1 / (v1.squareRoot() / 0.001.squareRoot() + 1e-8)
        let g2 = -0.25 + 0.1 * p1
        let m2 = 0.9 * m1 + 0.1 * g2, v2 = 0.999 * v1 + 0.001 * g2 * g2
        let p2 = p1 - (0.1 / 0.19) * m2 / (v2.squareRoot() / 0.001999.squareRoot() + 1e-8)
        let g3 = 1.0 + 0.1 * p2
        let m3 = 0.9 * m2 + 0.1 * g3, v3 = 0.999 * v2 + 0.001 * g3 * g3
        let p3 = p2 - (0.1 / 0.271) * m3 / (v3.squareRoot() / 0.002997001.squareRoot() + 1e-8)
        assertClose(run(Adam(learningRate: 0.1, weightDecay: 0.1)), [p1, p2, p3])
    }

    func testAdamW() {
        // p ← p·(1 − 0.1·0.1) first; the moments see the raw gradient (same m, v as Adam).
        let m1 = 0.05, v1 = 0.00025
        let p1 = 1 * 0.99 - 1.0 * m1 / (v1.squareRoot() / 0.001.squareRoot() + 1e-8)
        let m2 = 0.02, v2 = 0.00031225
        let p2 = p1 * 0.99 - (0.1 / 0.19) * m2 / (v2.squareRoot() / 0.001999.squareRoot() + 1e-8)
        let m3 = 0.118, v3 = 0.00131193775
        let p3 = p2 * 0.99 - (0.1 / 0.271) * m3 / (v3.squareRoot() / 0.002997001.squareRoot() + 1e-8)
        assertClose(run(Adam.adamW(learningRate: 0.1, weightDecay: 0.1)), [p1, p2, p3])

        // With zero gradients AdamW only decays: 2 → 2·0.99³.
        let adamW = Adam.adamW(learningRate: 0.1, weightDecay: 0.1)
        var store = ArrayParameterStore(values: [[2]])
        for _ in 0..<3 { adamW.step(&store) }
        XCTAssertEqual(Double(store.values[0][0]), 2 * 0.99 * 0.99 * 0.99, accuracy: 1e-6)
    }

    func testStateIsPerParameterIndex() {
        // Two parameters, momentum SGD: each keeps its own buffer.
        let sgd = SGD(learningRate: 0.1, momentum: 0.5)
        var store = ArrayParameterStore(values: [[1, 2], [3]], gradients: [[1, -1], [4]])
        sgd.step(&store)
        sgd.step(&store)
        // b1 = g, b2 = 0.5·g + g = 1.5·g; p = p0 − 0.1·(g + 1.5·g) = p0 − 0.25·g.
        XCTAssertEqual(store.values[0][0], 1 - 0.25, accuracy: 1e-6)
        XCTAssertEqual(store.values[0][1], 2 + 0.25, accuracy: 1e-6)
        XCTAssertEqual(store.values[1][0], 3 - 0.25 * 4, accuracy: 1e-6)
        XCTAssertEqual(sgd.momentumBuffer(parameter: 1), [6])
        XCTAssertEqual(sgd.stepCount, 2)

        // The buffer-level API gives the same result.
        let direct = SGD(learningRate: 0.1, momentum: 0.5)
        var values: [Float] = [3]
        let grads: [Float] = [4]
        for _ in 0..<2 {
            direct.beginStep()
            values.withUnsafeMutableBufferPointer { v in
                grads.withUnsafeBufferPointer { g in direct.update(parameter: 7, values: v, gradients: g) }
            }
        }
        XCTAssertEqual(values, store.values[1])
    }

    // MARK: Schedules

    func testConstantAndStepSchedules() {
        XCTAssertEqual(LearningRateSchedule.constant(0.01).learningRate(at: 12345), 0.01)
        let step = LearningRateSchedule.step(base: 0.1, gamma: 0.5, every: 10)
        XCTAssertEqual(step.learningRate(at: 0), 0.1)
        XCTAssertEqual(step.learningRate(at: 9), 0.1)
        XCTAssertEqual(step.learningRate(at: 10), 0.1 * 0.5)
        XCTAssertEqual(step.learningRate(at: 25), 0.1 * 0.5 * 0.5)
        XCTAssertEqual(step.learningRate(at: 30), 0.1 * 0.5 * 0.5 * 0.5, accuracy: 1e-9)
    }

    func testCosineWithWarmup() {
        let s = LearningRateSchedule.cosine(base: 1.0, warmupSteps: 10, totalSteps: 110, minimum: 0.1)
        XCTAssertEqual(s.learningRate(at: 0), 1.0 * 1 / 10, accuracy: 1e-7)    // warm-up starts above 0
        XCTAssertEqual(s.learningRate(at: 4), 1.0 * 5 / 10, accuracy: 1e-7)
        XCTAssertEqual(s.learningRate(at: 9), 1.0, accuracy: 1e-7)             // warm-up ends at base
        XCTAssertEqual(s.learningRate(at: 10), 1.0, accuracy: 1e-7)            // cos(0) = 1
        let cosQuarterPi: Float = (0.5 as Float).squareRoot()                  // p = 1/4
        XCTAssertEqual(s.learningRate(at: 35), 0.1 + 0.9 * (1 + cosQuarterPi) / 2, accuracy: 1e-6)
        XCTAssertEqual(s.learningRate(at: 60), 0.1 + 0.9 * 0.5, accuracy: 1e-6)  // p = 1/2: cos(π/2) = 0
        XCTAssertEqual(s.learningRate(at: 110), 0.1, accuracy: 1e-7)             // p = 1: the minimum
        XCTAssertEqual(s.learningRate(at: 500), 0.1, accuracy: 1e-7)             // and it stays there
        let noWarmup = LearningRateSchedule.cosine(base: 0.2, warmupSteps: 0, totalSteps: 4)
        XCTAssertEqual(noWarmup.learningRate(at: 0), 0.2, accuracy: 1e-7)
        XCTAssertEqual(noWarmup.learningRate(at: 2), 0.1, accuracy: 1e-7)
        XCTAssertEqual(noWarmup.learningRate(at: 4), 0, accuracy: 1e-7)
    }

    // MARK: Clipping

    func testGlobalNormClipping() {
        // ‖(3, 4, 12)‖ = 13.
        var store = ArrayParameterStore(values: [[0, 0], [0]], gradients: [[3, 4], [12]])
        XCTAssertEqual(clipGradientNorm(&store, maxNorm: 6.5), 13)
        let scale = 6.5 / (13 + 1e-6)
        XCTAssertEqual(store.gradients[0][0], Float(3 * scale), accuracy: 1e-6)
        XCTAssertEqual(store.gradients[0][1], Float(4 * scale), accuracy: 1e-6)
        XCTAssertEqual(store.gradients[1][0], Float(12 * scale), accuracy: 1e-6)

        var small = ArrayParameterStore(values: [[0, 0]], gradients: [[0.3, 0.4]])
        XCTAssertEqual(clipGradientNorm(&small, maxNorm: 1), 0.5, accuracy: 1e-7)
        XCTAssertEqual(small.gradients, [[0.3, 0.4]], "under the limit nothing changes")

        var bad = ArrayParameterStore(values: [[0, 0]], gradients: [[.nan, 1]])
        XCTAssertTrue(clipGradientNorm(&bad, maxNorm: 1).isNaN)
        XCTAssertEqual(bad.gradients[0][1], 1, "a non-finite norm leaves gradients for the caller to handle")

        var a: [Float] = [6, 0], b: [Float] = [8]
        let norm = a.withUnsafeMutableBufferPointer { pa in
            b.withUnsafeMutableBufferPointer { pb in clipGradientNorm([pa, pb], maxNorm: 5) }
        }
        XCTAssertEqual(norm, 10)
        XCTAssertEqual(a[0], 3, accuracy: 1e-5)
        XCTAssertEqual(b[0], 4, accuracy: 1e-5)
    }
}
