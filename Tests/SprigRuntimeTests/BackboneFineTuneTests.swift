// `bias` and `last`: every backward kernel against finite differences, the
// loss going down through the backbone alone, the tuned blob (reload,
// determinism), the plan's limits (layers, bytes, q8) before any change, no
// allocation, and the plan record's version-1 fields.

import CAllocCounter
import Foundation
import SprigCompile
import SprigRuntime
import SprigWriter
import SprigTestSupport
import XCTest

/// A small CNN on the planted 6×6 images, with every op `bias` and `last`
/// backprop through:
///
/// ```
/// input[6,6,1] → Conv3×3 4 +ReLU → MaxPool 2 → p[3,3,4] → Conv3×3 4 +ReLU6 → c2
/// Add(p, c2) +ReLU → AvgPool3×3 s1 p1 → Reshape → features[36] → Dense 10 → Softmax
/// ```
/// (The planted classes are pixel patterns: a global average pool would lose
/// them, so the features are the flattened map; GAP's backward is checked
/// against finite differences below, and by the reference CNN in docs/finetune.md.)
enum PlantedCNN {
    static func network(seed: UInt64 = 21) -> BlobBuilder {
        var rng = SeededRNG(seed: seed)
        var b = BlobBuilder()
        b.setMetadata("name", "planted-cnn")
        let x = b.addActivation("input", dtype: .f32, shape: [6, 6, 1])
        b.addInput(x, mean: 0.5, std: 0.25)
        let w1 = b.addConstant("conv1.weight", floats: rng.floats(9 * 4, in: -0.6...0.6), shape: [3, 3, 1, 4])
        let b1 = b.addConstant("conv1.bias", floats: rng.floats(4, in: 0...0.2), shape: [4])
        let c1 = b.addActivation("conv1", dtype: .f32, shape: [6, 6, 4])
        b.addOp(.conv2d, activation: .relu, inputs: [x, w1, b1], output: c1, params: [1, 1, 1, 1, 1, 1])
        let p = b.addActivation("pool", dtype: .f32, shape: [3, 3, 4])
        b.addOp(.maxPool2d, inputs: [c1], output: p, params: [2, 2, 2, 2, 0, 0, 0, 0])
        let w2 = b.addConstant("conv2.weight", floats: rng.floats(9 * 16, in: -0.3...0.3), shape: [3, 3, 4, 4])
        let b2 = b.addConstant("conv2.bias", floats: rng.floats(4, in: 0...0.2), shape: [4])
        let c2 = b.addActivation("conv2", dtype: .f32, shape: [3, 3, 4])
        b.addOp(.conv2d, activation: .relu6, inputs: [p, w2, b2], output: c2, params: [1, 1, 1, 1, 1, 1])
        let s = b.addActivation("sum", dtype: .f32, shape: [3, 3, 4])
        b.addOp(.add, activation: .relu, inputs: [p, c2], output: s)
        let a = b.addActivation("avg", dtype: .f32, shape: [3, 3, 4])
        b.addOp(.avgPool2d, inputs: [s], output: a, params: [3, 3, 1, 1, 1, 1, 1, 1])
        let g = b.addActivation("features", dtype: .f32, shape: [36])
        b.addOp(.reshape, inputs: [a], output: g)
        let w3 = b.addConstant("fc.weight", floats: rng.floats(360, in: -0.5...0.5), shape: [10, 36])
        let logits = b.addActivation("logits", dtype: .f32, shape: [10])
        b.addOp(.dense, inputs: [g, w3, -1], output: logits)
        let probs = b.addActivation("probs", dtype: .f32, shape: [10])
        b.addOp(.softmax, inputs: [logits], output: probs)
        b.addOutput(probs)
        return b
    }
}

// MARK: - Backward kernels against finite differences

final class BackwardKernelTests: XCTestCase {
    /// Checks `analytic` against central differences of `L = Σ r·forward(v)` in Double.
    func check(_ label: String, _ values: [Float], analytic: [Float], epsilon: Float = 1e-2,
               tolerance: GradientTolerance = GradientTolerance(absolute: 2e-4, relative: 2e-3),
               forward: ([Float]) -> [Double], r: [Double]) {
        let numeric = FiniteDifference.gradient(at: values, epsilon: epsilon) { v in
            zip(forward(v), r).reduce(0) { $0 + $1.0 * $1.1 }
        }
        // Kinks (ReLU at 0, max-pool ties) show as a gap between the one-sided quotients.
        let report = FiniteDifference.compare(label, analytic: analytic, numeric: numeric, tolerance: tolerance) {
            numeric.oneSidedGap[$0] > 1e-2
        }
        XCTAssertTrue(report.passed, report.description)
    }

    func testConv2DAndItsClampAgainstFiniteDifferences() {
        var rng = SeededRNG(seed: 31)
        for (stride, pad, clamp) in [(1, 1, ClampF32.none), (2, 1, ClampF32(lower: 0, upper: .infinity)),
                                     (2, 0, ClampF32(lower: 0, upper: 6))] {
            let (h, cin, cout, k) = (5, 3, 4, 3)
            let oh = (h + 2 * pad - k) / stride + 1
            let w = Window2D(inputHeight: h, inputWidth: h, inputChannels: cin, outputHeight: oh, outputWidth: oh,
                             outputChannels: cout, kernelHeight: k, kernelWidth: k, strideHeight: stride,
                             strideWidth: stride, padTop: pad, padLeft: pad)
            let x = rng.floats(h * h * cin, in: -1...1), wt = rng.floats(k * k * cin * cout, in: -1...1)
            let bias = rng.floats(cout, in: -0.5...0.5)
            let r = (0..<(oh * oh * cout)).map { _ in Double(rng.float(in: -1...1)) }
            // Analytic: y, then dz = mask(r), then the backward.
            var y = [Float](repeating: 0, count: oh * oh * cout)
            conv2dF32(input: x, weights: wt, bias: bias, output: &y, window: w, clamp: clamp)
            var dz = r.map { Float($0) }
            activationBackwardF32(output: y, gradient: &dz, count: dz.count, clamp: clamp)
            var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: wt.count)
            var db = [Float](repeating: 0, count: cout)
            conv2dBackwardF32(input: x, weights: wt, outputGradient: dz, inputGradient: &dx, weightGradient: &dw,
                              biasGradient: &db, window: w)
            let tag = "conv s\(stride) p\(pad) clamp \(clamp.lower)…\(clamp.upper)"
            check("\(tag) dx", x, analytic: dx, forward: { Naive.conv2d(input: $0, weights: wt, bias: bias, window: w, clamp: clamp) }, r: r)
            check("\(tag) dW", wt, analytic: dw, forward: { Naive.conv2d(input: x, weights: $0, bias: bias, window: w, clamp: clamp) }, r: r)
            check("\(tag) db", bias, analytic: db, forward: { Naive.conv2d(input: x, weights: wt, bias: $0, window: w, clamp: clamp) }, r: r)
        }
    }

    func testDepthwiseAndDenseAgainstFiniteDifferences() {
        var rng = SeededRNG(seed: 32)
        let w = Window2D(inputHeight: 5, inputWidth: 4, inputChannels: 3, outputHeight: 3, outputWidth: 2, outputChannels: 3,
                         kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, padTop: 1, padLeft: 1)
        let x = rng.floats(60, in: -1...1), wt = rng.floats(27, in: -1...1), bias = rng.floats(3, in: -0.5...0.5)
        let r = (0..<18).map { _ in Double(rng.float(in: -1...1)) }
        var dx = [Float](repeating: 0, count: 60), dw = [Float](repeating: 0, count: 27), db = [Float](repeating: 0, count: 3)
        depthwiseConv2dBackwardF32(input: x, weights: wt, outputGradient: r.map { Float($0) }, inputGradient: &dx,
                                   weightGradient: &dw, biasGradient: &db, window: w)
        check("depthwise dx", x, analytic: dx, forward: { Naive.depthwiseConv2d(input: $0, weights: wt, bias: bias, window: w, clamp: .none) }, r: r)
        check("depthwise dW", wt, analytic: dw, forward: { Naive.depthwiseConv2d(input: x, weights: $0, bias: bias, window: w, clamp: .none) }, r: r)
        check("depthwise db", bias, analytic: db, forward: { Naive.depthwiseConv2d(input: x, weights: wt, bias: $0, window: w, clamp: .none) }, r: r)

        let (n, m) = (7, 5)
        let xi = rng.floats(n, in: -1...1), wd = rng.floats(n * m, in: -1...1), bd = rng.floats(m, in: -1...1)
        let rd = (0..<m).map { _ in Double(rng.float(in: -1...1)) }
        var gx = [Float](repeating: 0, count: n), gw = [Float](repeating: 0, count: n * m), gb = [Float](repeating: 0, count: m)
        denseBackwardF32(input: xi, weights: wd, outputGradient: rd.map { Float($0) }, inputGradient: &gx,
                         weightGradient: &gw, biasGradient: &gb, inputCount: n, outputCount: m)
        check("dense dx", xi, analytic: gx, forward: { Naive.dense(input: $0, weights: wd, bias: bd, inputCount: n, outputCount: m, clamp: .none) }, r: rd)
        check("dense dW", wd, analytic: gw, forward: { Naive.dense(input: xi, weights: $0, bias: bd, inputCount: n, outputCount: m, clamp: .none) }, r: rd)
        check("dense db", bd, analytic: gb, forward: { Naive.dense(input: xi, weights: wd, bias: $0, inputCount: n, outputCount: m, clamp: .none) }, r: rd)
    }

    func testPoolsGlobalAverageAndL2NormalizeAgainstFiniteDifferences() {
        var rng = SeededRNG(seed: 33)
        // Max and average pooling with clipped windows (3×3, stride 2, pad 1 on 5×5).
        let w = Window2D(inputHeight: 5, inputWidth: 5, inputChannels: 2, outputHeight: 3, outputWidth: 3, outputChannels: 2,
                         kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, padTop: 1, padLeft: 1)
        let x = rng.floats(50, in: -1...1)
        let r = (0..<18).map { _ in Double(rng.float(in: -1...1)) }
        var y = [Float](repeating: 0, count: 18)
        maxPool2dF32(input: x, output: &y, window: w)
        var dx = [Float](repeating: 0, count: 50)
        maxPool2dBackwardF32(input: x, output: y, outputGradient: r.map { Float($0) }, inputGradient: &dx, window: w)
        check("maxpool dx", x, analytic: dx, epsilon: 1e-3, forward: { Naive.maxPool2d(input: $0, window: w) }, r: r)
        var da = [Float](repeating: 0, count: 50)
        avgPool2dBackwardF32(outputGradient: r.map { Float($0) }, inputGradient: &da, window: w)
        check("avgpool dx", x, analytic: da, forward: { Naive.avgPool2d(input: $0, window: w) }, r: r)
        // Global average pooling.
        let rg = (0..<2).map { _ in Double(rng.float(in: -1...1)) }
        var dg = [Float](repeating: 0, count: 50)
        globalAveragePoolBackwardF32(outputGradient: rg.map { Float($0) }, inputGradient: &dg, height: 5, width: 5, channels: 2)
        check("gap dx", x, analytic: dg, forward: { Naive.globalAveragePool(input: $0, height: 5, width: 5, channels: 2) }, r: rg)
        // L2Normalize, and the worked example of its doc comment.
        let v = rng.floats(9, in: -2...2)
        let rv = (0..<9).map { _ in Double(rng.float(in: -1...1)) }
        var dv = [Float](repeating: 0, count: 9)
        l2NormalizeBackwardF32(input: v, outputGradient: rv.map { Float($0) }, inputGradient: &dv, count: 9)
        check("l2normalize dx", v, analytic: dv, epsilon: 1e-3, forward: { Naive.l2Normalize($0) }, r: rv)
        var example: [Float] = [0, 0]
        l2NormalizeBackwardF32(input: [3, 4], outputGradient: [1, 0], inputGradient: &example, count: 2)
        XCTAssertEqual(example[0], 0.128, accuracy: 1e-6)
        XCTAssertEqual(example[1], -0.096, accuracy: 1e-6)
    }

    func testBackwardKernelsAccumulate() {
        // Backward adds to what is there: zeroing is the caller's step.
        var dx: [Float] = [10, 20], dw: [Float] = [1, 1], db: [Float] = [5]
        denseBackwardF32(input: [1, 2], weights: [3, 4], outputGradient: [0.5], inputGradient: &dx, weightGradient: &dw,
                         biasGradient: &db, inputCount: 2, outputCount: 1)
        XCTAssertEqual(dx, [11.5, 22])
        XCTAssertEqual(dw, [1.5, 2])
        XCTAssertEqual(db, [5.5])
        // The max-pool tie goes to the first tap only.
        let w = Window2D(inputHeight: 2, inputWidth: 2, inputChannels: 1, outputHeight: 1, outputWidth: 1, outputChannels: 1,
                         kernelHeight: 2, kernelWidth: 2, strideHeight: 2, strideWidth: 2, padTop: 0, padLeft: 0)
        var g: [Float] = [0, 0, 0, 0]
        maxPool2dBackwardF32(input: [1, 3, 3, 0], output: [3], outputGradient: [2], inputGradient: &g, window: w)
        XCTAssertEqual(g, [0, 2, 0, 0])
    }
}

// MARK: - Fine-tuning with bias and last

final class BackboneFineTuneTests: XCTestCase {
    let shots = Planted.samples(perClass: 5, seed: 1)
    let queries = Planted.samples(perClass: 20, seed: 2)

    /// The planted networks, each with a plan for `bias` and `last` up to `layers`.
    func blobs(layers: Int = 2) throws -> [(String, [UInt8])] {
        var dense = Planted.network()
        try dense.planFineTuning(maxClasses: 8, maxShots: 10, methods: [.head, .bias, .last], layers: 1)
        var cnn = PlantedCNN.network()
        try cnn.planFineTuning(maxClasses: 8, maxShots: 10, methods: [.head, .bias, .last], layers: layers)
        return [("dense", try dense.build()), ("cnn", try cnn.build())]
    }

    func options(_ method: FineTuneMethod, layers: Int = 1) -> FineTuneOptions {
        var o = FineTuneOptions(method: method)
        o.layers = layers
        o.epochs = 10
        o.batchSize = 8
        return o
    }

    func testTheLossGoesDownThroughTheBackboneAlone() throws {
        // With the head's step size negligible, only the backbone's gradient can lower the loss.
        for (name, blob) in try blobs() {
            for (method, layers) in [(FineTuneMethod.bias, 1), (.last, 1), (.last, name == "cnn" ? 2 : 1)] {
                let h = try TuneHarness(blob)
                var o = options(method, layers: layers)
                o.learningRate = 1e-9
                o.backboneLearningRate = 0.01
                try h.tune(shots, classes: 5, o)
                XCTAssertTrue(h.tuner.loss.initial.isFinite, "\(name) \(method.name)")
                XCTAssertLessThan(h.tuner.loss.final, 0.99 * h.tuner.loss.initial,
                                  "\(name) \(method.name) \(layers): \(h.tuner.loss.initial) → \(h.tuner.loss.final)")
                // And with both trained, the loss falls further and the accuracy holds.
                let both = try TuneHarness(blob)
                try both.tune(shots, classes: 5, options(method, layers: layers))
                XCTAssertLessThan(both.tuner.loss.final, 0.9 * both.tuner.loss.initial, "\(name) \(method.name)")
                XCTAssertGreaterThan(try both.accuracy(queries), name == "cnn" ? 0.6 : 0.8, "\(name) \(method.name), chance 0.2")
                XCTAssertEqual(both.tuner.segment?.method, method)
            }
        }
    }

    func testTheSegmentsOfBiasAndLast() throws {
        let h = try TuneHarness(try blobs()[1].1)
        let bias = try BackboneSegment(model: h.model, head: h.tuner.head, method: .bias, layers: 1)
        XCTAssertEqual(bias.firstOp, 0)
        XCTAssertEqual(bias.endOp, 6)
        XCTAssertEqual(bias.trainedLayers, 2)
        XCTAssertEqual(bias.parameterBytes, 16 + 16)
        let last1 = try BackboneSegment(model: h.model, head: h.tuner.head, method: .last, layers: 1)
        XCTAssertEqual(last1.firstOp, 2)
        XCTAssertEqual(last1.parameterBytes, 4 * 144 + 16)
        // pool (input), conv2, sum, avg, features: 36 floats each.
        XCTAssertEqual(last1.activationBytes, 5 * 36 * 4)
        XCTAssertEqual(last1.gradientBytes, 4 * 36 * 4)
        XCTAssertThrowsError(try BackboneSegment(model: h.model, head: h.tuner.head, method: .last, layers: 3)) {
            XCTAssertEqual($0 as? SprigError, .fineTune(.notEnoughLayers(requested: 3, available: 2)))
        }
    }

    func testTunedBlobReloadsAndReproducesThePreSaveOutputs() throws {
        for (name, blob) in try blobs() {
            for method in [FineTuneMethod.bias, .last] {
                let h = try TuneHarness(blob)
                try h.tune(shots, classes: 5, options(method))
                let tuned = try h.tunedBlob(names: "v,w,x,y,z")
                XCTAssertNil(loadError(tuned))
                XCTAssertNotEqual(Array(tuned.suffix(64)), Array(blob.suffix(64)))
                var outputs = [Float](repeating: 0, count: 5)
                for i in 0..<10 {
                    let image = Array(queries.pixels[(i * 36)..<((i + 1) * 36)])
                    try image.withUnsafeBytes { p in
                        try outputs.withUnsafeMutableBufferPointer { try h.tuner.outputs(pixels: p, into: $0) }
                    }
                    XCTAssertEqual(try runBlob(tuned, pixels: image).map(\.bitPattern), outputs.map(\.bitPattern),
                                   "\(name) \(method.name) image \(i)")
                }
                // The tuned blob keeps its plan record and can be tuned again the same way.
                let again = try TuneHarness(tuned)
                XCTAssertEqual(again.tuner.plan.maxLayers, h.tuner.plan.maxLayers)
                XCTAssertEqual(again.tuner.plan.augmentation, h.tuner.plan.augmentation)
                try again.tune(shots, classes: 5, options(method))
            }
        }
    }

    func testSameSeedGivesAByteIdenticalTunedBlob() throws {
        let blob = try blobs()[1].1
        for method in [FineTuneMethod.bias, .last] {
            var o = options(method, layers: 2)
            o.seed = 42
            o.augmentation = 1
            var results: [[UInt8]] = []
            for fill: UInt8 in [0x00, 0xFF, 0x5A] {  // arena garbage must not matter
                let h = try TuneHarness(blob, fill: fill)
                try h.tune(shots, classes: 5, o)
                results.append(try h.tunedBlob())
            }
            XCTAssertEqual(results[0], results[1], method.name.description)
            XCTAssertEqual(results[0], results[2], method.name.description)
            o.seed = 43
            let other = try TuneHarness(blob)
            try other.tune(shots, classes: 5, o)
            XCTAssertNotEqual(try other.tunedBlob(), results[0], "the seed orders the batches")
        }
    }

    func testExceedingThePlanIsATypedErrorBeforeAnyChange() throws {
        var cnn = PlantedCNN.network()
        try cnn.planFineTuning(maxClasses: 5, maxShots: 5, methods: [.head, .last], layers: 1)
        let original = try cnn.build()
        let h = try TuneHarness(original)
        XCTAssertEqual(h.tuner.plan.maxLayers, 1)
        let before = Array(h.arena)
        let needBias = try FineTunePlan.required(model: h.model, maxClasses: 5, maxShots: 5, method: .bias).arenaBytes
        var augmented = options(.head)
        augmented.augmentation = 2
        let needAugmented = try FineTunePlan.required(model: h.model, maxClasses: 5, maxShots: 5, method: .head,
                                                      augmentation: 2).arenaBytes
        XCTAssertGreaterThan(needAugmented, h.tuner.plan.arenaBytes)
        var sixShots = Planted.samples(perClass: 6, seed: 4)
        sixShots.labels = sixShots.labels.map { $0 % 2 }
        let cases: [(String, (pixels: [UInt8], labels: [UInt8]), Int, FineTuneOptions, SprigError)] = [
            ("layers beyond the plan", shots, 5, options(.last, layers: 2), .fineTune(.tooManyLayers(requested: 2, planned: 1))),
            ("more shots than planned", sixShots, 2, options(.last), .fineTune(.tooManyShots(classIndex: 0, requested: 18, planned: 5))),
            ("more classes than planned", shots, 6, options(.bias), .fineTune(.tooManyClasses(requested: 6, planned: 5))),
            ("augmentation beyond the plan", shots, 5, augmented,
             .fineTune(.planTooSmall(need: needAugmented, planned: h.tuner.plan.arenaBytes))),
            ("bad layers", shots, 5, options(.last, layers: 0), .fineTune(.invalidOption(option: .layers, value: 0))),
        ]
        for (name, data, classes, o, expected) in cases {
            XCTAssertEqual(h.tuneError(data.pixels, data.labels, classes: classes, o), expected, name)
            XCTAssertTrue(Array(h.blob) == original, "\(name): the blob changed")
            XCTAssertTrue(Array(h.arena) == before, "\(name): the arena changed")
        }
        // bias fits this plan only if its bytes do; the plan says which.
        if needBias > h.tuner.plan.arenaBytes {
            XCTAssertEqual(h.tuneError(shots.pixels, shots.labels, classes: 5, options(.bias)),
                           .fineTune(.planTooSmall(need: needBias, planned: h.tuner.plan.arenaBytes)))
        }
        // L beyond the backbone, with a plan that would allow it.
        var wide = PlantedCNN.network()
        try wide.planFineTuning(maxClasses: 5, maxShots: 5, methods: [.last], layers: 2)
        let w = try TuneHarness(try wide.build())
        let plan = FineTunePlan(arenaBytes: w.tuner.plan.arenaBytes, maxClasses: 5, maxShots: 5, augmentation: 0, maxLayers: 9)
        let bigger = try TuneHarness(try wide.build(), plan: plan)
        XCTAssertEqual(bigger.tuneError(shots.pixels, shots.labels, classes: 5, options(.last, layers: 3)),
                       .fineTune(.notEnoughLayers(requested: 3, available: 2)))
        // q8: refused for bias and last, before anything changes (the backbone stays integer-only).
        let q8 = try TuneHarness(try Planted.blob(try Planted.quantized()))
        let q8Arena = Array(q8.arena)
        for method in [FineTuneMethod.bias, .last] {
            XCTAssertEqual(q8.tuneError(shots.pixels, shots.labels, classes: 5, options(method)),
                           .fineTune(.methodNeedsFloat32(method: method)))
            XCTAssertThrowsError(try FineTunePlan.required(model: q8.model, maxClasses: 5, maxShots: 5, method: method))
        }
        XCTAssertTrue(Array(q8.arena) == q8Arena, "a refused q8 fine-tune changed the arena")
    }

    func testAnSGDPlanHoldsSGDAndRefusesAdam() throws {
        func plan(_ optimizer: HeadOptimizer) throws -> [UInt8] {
            var cnn = PlantedCNN.network()
            try cnn.planFineTuning(maxClasses: 5, maxShots: 5, methods: [.last], layers: 1, optimizer: optimizer)
            return try cnn.build()
        }
        let adamBlob = try plan(.adam), sgdBlob = try plan(.sgd)
        let adam = try TuneHarness(adamBlob), sgd = try TuneHarness(sgdBlob, fill: 0x5A)
        // SGD has no second moment: conv2's 144 weights and 4 biases (592 bytes), and
        // the head's 5 × 36 weights (720) and 5 biases (20, rounded up to 32).
        XCTAssertEqual(adam.tuner.plan.arenaBytes - sgd.tuner.plan.arenaBytes, 592 + 720 + 32)
        // The defaults follow the plan.
        let planned = sgd.tuner.plannedOptions(method: .last)
        XCTAssertEqual(planned.optimizer, .sgd)
        XCTAssertEqual(planned.backboneLearningRate, 0.5)
        XCTAssertEqual(adam.tuner.plannedOptions(method: .last).optimizer, .adam)
        XCTAssertEqual(adam.tuner.plannedOptions(method: .last).backboneLearningRate, 0.01)
        // Adam does not fit the SGD plan: refused before anything changes.
        let before = Array(sgd.arena)
        XCTAssertEqual(sgd.tuneError(shots.pixels, shots.labels, classes: 5, options(.last)),
                       .fineTune(.planTooSmall(need: adam.tuner.plan.arenaBytes, planned: sgd.tuner.plan.arenaBytes)))
        XCTAssertTrue(Array(sgd.arena) == before, "a refused fine-tune changed the arena")
        // SGD in the smaller arena gives the bytes it gives with room to spare:
        // it neither reads nor writes where Adam's v would be.
        var o = options(.last)
        o.optimizer = .sgd
        o.backboneLearningRate = 0.5
        try sgd.tune(shots, classes: 5, o)
        try adam.tune(shots, classes: 5, o)
        XCTAssertLessThan(sgd.tuner.loss.final, sgd.tuner.loss.initial)
        XCTAssertEqual(sgd.tuner.loss.final.bitPattern, adam.tuner.loss.final.bitPattern)
        let fromSGDPlan = try sgd.tunedBlob(), fromAdamPlan = try adam.tunedBlob()
        // The headers differ in the plan's bytes (and so the CRC); every byte after them is equal.
        XCTAssertEqual(Array(fromSGDPlan[64...]), Array(fromAdamPlan[64...]))
    }

    func testBiasAndLastAllocateNothing() throws {
        let blob = try blobs()[1].1
        let h = try TuneHarness(blob)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { out.deallocate() }
        var feature = [Float](repeating: 0, count: h.tuner.featureCount)
        try shots.pixels.withUnsafeBytes { p in
            try shots.labels.withUnsafeBytes { l in
                for method in [FineTuneMethod.bias, .last] {
                    var o = options(method, layers: 2)
                    o.augmentation = 1
                    // Warm up once: a debug build instantiates generic metadata on first use.
                    try h.tuner.fineTune(shots: p, labels: l, classCount: 5, options: o)
                    _ = try h.tuner.writeTunedBlob(into: out)
                    sprig_alloc_counter_start()
                    do {
                        try h.tuner.fineTune(shots: p, labels: l, classCount: 5, options: o)
                        _ = try h.tuner.tunedBlobBytes()
                        _ = try h.tuner.writeTunedBlob(into: out)
                        try feature.withUnsafeMutableBufferPointer { f in
                            try h.tuner.features(pixels: UnsafeRawBufferPointer(rebasing: p[0..<36]), into: f)
                        }
                    } catch {
                        _ = sprig_alloc_counter_stop()
                        throw error
                    }
                    let allocations = sprig_alloc_counter_stop()
                    XCTAssertEqual(allocations, 0, "\(method.name) allocated \(allocations) times")
                }
            }
        }
    }

    func testThePlanRecordRoundTripsAndOldBlobsStillLoad() throws {
        var b = PlantedCNN.network()
        try b.planFineTuning(maxClasses: 6, maxShots: 4, methods: [.head, .bias, .last], layers: 2)
        let bytes = try b.build()
        XCTAssertEqual(bytes[44], 1, "plan record version")
        XCTAssertEqual(bytes[45], 1, "augmentation: head's default")
        XCTAssertEqual(bytes[46], 2, "layers")
        let h = try TuneHarness(bytes)
        XCTAssertEqual(h.tuner.plan.augmentation, 1)
        XCTAssertEqual(h.tuner.plan.maxLayers, 2)
        XCTAssertEqual(h.tuner.plan.defaultAugmentation(for: .head), 1)
        // A plan sized without augmentation lowers head's default instead of refusing it.
        let flat = try TuneHarness(try Planted.blob(Planted.network(), method: .head, augmentation: 0))
        XCTAssertEqual(flat.tuner.plan.defaultAugmentation(for: .head), 0)
        var o = FineTuneOptions(method: .head)
        o.augmentation = flat.tuner.plan.defaultAugmentation(for: .head)
        try flat.tune(shots, classes: 5, o)
        // A version-0 plan (the committed fixtures) loads; its fields are unknown.
        let fixture = try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/ref-cnn-f32.sprig"))
        XCTAssertEqual(fixture[44], 0)
        let old = try TuneHarness([UInt8](fixture))
        XCTAssertNil(old.tuner.plan.augmentation)
        XCTAssertNil(old.tuner.plan.maxLayers)
        XCTAssertEqual(old.tuner.plan.defaultAugmentation(for: .head), 1)
        // Bad plan-record bytes are named errors.
        for (offset, value, expected) in [(44, 2, SprigError.invalidField(field: .finetunePlan, index: 44, value: 2)),
                                          (45, 3, .invalidField(field: .finetunePlan, index: 45, value: 3)),
                                          (47, 1, .invalidField(field: .reserved, index: 47, value: 1))] {
            var bad = BlobBytes(bytes)
            bad.bytes[offset] = UInt8(value)
            bad.fixCRC()
            XCTAssertEqual(loadError(bad.bytes), expected, "byte \(offset)")
        }
        var legacy = BlobBytes(bytes)
        legacy.bytes[44] = 0
        legacy.fixCRC()
        XCTAssertEqual(loadError(legacy.bytes), .invalidField(field: .finetunePlan, index: 45, value: 1))
    }
}
