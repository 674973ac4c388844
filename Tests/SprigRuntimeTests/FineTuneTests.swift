// On-device fine-tuning: the head finder, the plan, imprinting and head
// training on a planted problem, the head gradient against finite
// differences, the tuned blob (reload, determinism, re-tuning), every bad
// shot and plan case, no allocation, and the L2Normalize op.

import CAllocCounter
import Foundation
import SprigCompile
import SprigRuntime
import SprigWriter
import SprigTestSupport
import XCTest

// MARK: - A planted problem

/// Five classes of 6×6 images: each class is a fixed random pattern plus
/// noise. The backbone (a random Dense with ReLU) keeps them apart, so the
/// features separate the classes; the original head has 10 random classes.
enum Planted {
    static let side = 6
    static let pixels = side * side
    static let classes = 5
    static let features = 16

    static func prototypes(seed: UInt64 = 11) -> [[Float]] {
        var rng = SeededRNG(seed: seed)
        return (0..<classes).map { _ in (0..<pixels).map { _ in rng.float(in: 0...255) } }
    }

    /// `perClass` noisy samples of each class, class-major.
    static func samples(perClass: Int, seed: UInt64, noise: Float = 60) -> (pixels: [UInt8], labels: [UInt8]) {
        var rng = SeededRNG(seed: seed)
        var pixels: [UInt8] = []
        var labels: [UInt8] = []
        for (c, proto) in prototypes().enumerated() {
            for _ in 0..<perClass {
                for p in proto { pixels.append(UInt8(max(0, min(255, p + rng.float(in: -noise...noise))))) }
                labels.append(UInt8(c))
            }
        }
        return (pixels, labels)
    }

    /// input [6,6,1] → Reshape [36] → Dense 16 + ReLU → Dense 10 (→ Softmax).
    static func network(softmax: Bool = true, seed: UInt64 = 5) -> BlobBuilder {
        var rng = SeededRNG(seed: seed)
        var b = BlobBuilder()
        b.setMetadata("name", "planted")
        b.setMetadata("precision", "f32")
        b.setMetadata("labels", "a,b,c,d,e,f,g,h,i,j")
        let x = b.addActivation("input", dtype: .f32, shape: [side, side, 1])
        b.addInput(x, mean: 0.5, std: 0.25)
        let flat = b.addActivation("flat", dtype: .f32, shape: [pixels])
        b.addOp(.reshape, inputs: [x], output: flat)
        let w1 = b.addConstant("fc1.weight", floats: rng.floats(features * pixels, in: -0.4...0.4), shape: [features, pixels])
        let b1 = b.addConstant("fc1.bias", floats: rng.floats(features, in: 0...0.2), shape: [features])
        let h = b.addActivation("features", dtype: .f32, shape: [features])
        b.addOp(.dense, activation: .relu, inputs: [flat, w1, b1], output: h)
        let w2 = b.addConstant("fc2.weight", floats: rng.floats(10 * features, in: -0.5...0.5), shape: [10, features])
        let b2 = b.addConstant("fc2.bias", floats: rng.floats(10, in: -0.1...0.1), shape: [10])
        let logits = b.addActivation("logits", dtype: .f32, shape: [10])
        b.addOp(.dense, inputs: [h, w2, b2], output: logits)
        if softmax {
            let probs = b.addActivation("probs", dtype: .f32, shape: [10])
            b.addOp(.softmax, inputs: [logits], output: probs)
            b.addOutput(probs)
        } else {
            b.addOutput(logits)
        }
        return b
    }

    /// The int8 twin, calibrated on planted samples.
    static func quantized(softmax: Bool = true) throws -> BlobBuilder {
        let f32 = network(softmax: softmax)
        let calibration = samples(perClass: 20, seed: 99)
        let images = (0..<(calibration.labels.count)).map { Array(calibration.pixels[($0 * pixels)..<(($0 + 1) * pixels)]) }
        let ranges = try calibrate(blob: try f32.build(), samples: images)
        return try quantizeNetwork(f32, ranges: ranges)
    }

    /// A blob with a fine-tuning plan.
    static func blob(_ builder: BlobBuilder, maxClasses: Int = 8, maxShots: Int = 10,
                     method: FineTuneMethod = .head, augmentation: Int? = nil) throws -> [UInt8] {
        var b = builder
        try b.planFineTuning(maxClasses: maxClasses, maxShots: maxShots, method: method, augmentation: augmentation)
        return try b.build()
    }
}

/// A blob in an aligned buffer, an arena of its fine-tuning plan and a tuner.
final class TuneHarness {
    let blob: UnsafeMutableRawBufferPointer
    let arena: UnsafeMutableRawBufferPointer
    let model: Model
    var tuner: FineTuner

    init(_ bytes: [UInt8], plan: FineTunePlan? = nil, arenaBytes: Int? = nil, fill: UInt8 = 0xA5) throws {
        blob = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
        blob.copyBytes(from: bytes)
        model = try Model(bytes: UnsafeRawBufferPointer(blob))
        let size = arenaBytes ?? plan?.arenaBytes ?? model.finetuneArenaBytes
        arena = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 16), alignment: 16)
        arena.initializeMemory(as: UInt8.self, repeating: fill)
        do {
            tuner = try FineTuner(model: model, arena: UnsafeMutableRawBufferPointer(rebasing: arena[0..<size]), plan: plan)
        } catch {
            blob.deallocate()
            arena.deallocate()
            throw error
        }
    }

    deinit {
        blob.deallocate()
        arena.deallocate()
    }

    func tune(_ shots: (pixels: [UInt8], labels: [UInt8]), classes: Int, _ options: FineTuneOptions) throws {
        try shots.pixels.withUnsafeBytes { p in
            try shots.labels.withUnsafeBytes { l in
                try tuner.fineTune(shots: p, labels: l, classCount: classes, options: options)
            }
        }
    }

    /// The typed error of a fine-tune, or nil.
    func tuneError(_ pixels: [UInt8], _ labels: [UInt8], classes: Int, _ options: FineTuneOptions) -> SprigError? {
        do {
            try tune((pixels, labels), classes: classes, options)
            return nil
        } catch let e as SprigError {
            return e
        } catch {
            return nil
        }
    }

    func tunedBlob(names: String? = nil) throws -> [UInt8] {
        var nameBytes = Array((names ?? "").utf8)
        return try nameBytes.withUnsafeMutableBytes { n -> [UInt8] in
            let namesBuffer: UnsafeRawBufferPointer? = names == nil ? nil : UnsafeRawBufferPointer(n)
            let size = try tuner.tunedBlobBytes(classNames: namesBuffer)
            let out = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
            defer { out.deallocate() }
            let written = try tuner.writeTunedBlob(into: out, classNames: namesBuffer)
            XCTAssertEqual(written, size)
            return Array(out)
        }
    }

    /// Accuracy of the tuned head on labelled images.
    func accuracy(_ data: (pixels: [UInt8], labels: [UInt8])) throws -> Double {
        var correct = 0
        var feature = [Float](repeating: 0, count: tuner.featureCount)
        for i in 0..<data.labels.count {
            let image = Array(data.pixels[(i * tuner.inputElements)..<((i + 1) * tuner.inputElements)])
            try image.withUnsafeBytes { p in
                try feature.withUnsafeMutableBufferPointer { try tuner.features(pixels: p, into: $0) }
            }
            let predicted = try feature.withUnsafeBufferPointer { try tuner.classify(features: $0) }
            if predicted == Int(data.labels[i]) { correct += 1 }
        }
        return Double(correct) / Double(data.labels.count)
    }
}

/// Loads a blob and runs it on one image; returns the outputs.
func runBlob(_ bytes: [UInt8], pixels: [UInt8]) throws -> [Float] {
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
    defer { copy.deallocate() }
    copy.copyBytes(from: bytes)
    let model = try Model(bytes: UnsafeRawBufferPointer(copy))
    let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: model.arenaBytes, alignment: 16)
    defer { arena.deallocate() }
    let interpreter = try Interpreter(model: model, arena: arena)
    try pixels.withUnsafeBytes { try interpreter.setInput(pixels: $0) }
    interpreter.invoke()
    return (0..<interpreter.outputCount).map { interpreter.output($0) }
}

func metadataValue(_ bytes: [UInt8], _ key: StaticString) throws -> String? {
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
    defer { copy.deallocate() }
    copy.copyBytes(from: bytes)
    let model = try Model(bytes: UnsafeRawBufferPointer(copy))
    return model.metadata(key: key).map { String(decoding: $0, as: UTF8.self) }
}

// MARK: - Tests

final class FineTuneTests: XCTestCase {
    let shots = Planted.samples(perClass: 5, seed: 1)
    let queries = Planted.samples(perClass: 40, seed: 2)

    func testHeadFinderOnCompiledAndTunedBlobs() throws {
        let f32 = try TuneHarness(try Planted.blob(Planted.network()))
        XCTAssertEqual(f32.tuner.head.featureCount, 16)
        XCTAssertTrue(f32.tuner.head.softmax)
        XCTAssertFalse(f32.tuner.head.quantizedFeatures)
        XCTAssertEqual(f32.tuner.head.firstOp, 2)
        XCTAssertEqual(f32.tuner.head.originalClasses, 10)

        let q8 = try TuneHarness(try Planted.blob(try Planted.quantized()))
        XCTAssertTrue(q8.tuner.head.quantizedFeatures)
        XCTAssertTrue(q8.tuner.head.softmax)
        XCTAssertEqual(q8.tuner.head.featureCount, 16)

        let logits = try TuneHarness(try Planted.blob(Planted.network(softmax: false)))
        XCTAssertFalse(logits.tuner.head.softmax)
        // A tuned q8 blob is found again: Dequantize → L2Normalize → Dense → Softmax.
        try q8.tune(shots, classes: 5, FineTuneOptions(method: .imprint))
        let again = try TuneHarness(try q8.tunedBlob())
        XCTAssertTrue(again.tuner.head.quantizedFeatures)
        XCTAssertEqual(again.tuner.head.firstOp, q8.tuner.head.firstOp)
    }

    func testBlobsWithoutAHeadAreRejected() throws {
        // all-ops ends in Add → Softmax: no Dense reaches the output directly.
        let allOps = try allOpsNetwork().build()
        XCTAssertEqual(headError(allOps), .fineTune(.noClassifierHead(op: 10)))
        // Two outputs.
        var two = Planted.network()
        two.addOutput(4)
        XCTAssertEqual(headError(try two.build()), .fineTune(.ioCount(inputs: 1, outputs: 2)))
        // An op after the head that is not part of it.
        var extra = Planted.network(softmax: false)
        let side = extra.addActivation("side", dtype: .f32, shape: [16])
        extra.addOp(.reshape, inputs: [4], output: side)
        XCTAssertEqual(headError(try extra.build()), .fineTune(.opAfterHead(op: 3)))
        // The plan sizing refuses too.
        XCTAssertThrowsError(try { var b = allOpsNetwork(); try b.planFineTuning(maxClasses: 5, maxShots: 5, method: .imprint) }())
    }

    private func headError(_ bytes: [UInt8]) -> SprigError? {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
        defer { copy.deallocate() }
        copy.copyBytes(from: bytes)
        do {
            _ = try ClassifierHead(model: try Model(bytes: UnsafeRawBufferPointer(copy)))
            return nil
        } catch {
            return error
        }
    }

    func testImprintingBeatsChanceByAWideMargin() throws {
        for builder in [Planted.network(), try Planted.quantized()] {
            let h = try TuneHarness(try Planted.blob(builder, method: .imprint))
            try h.tune(shots, classes: 5, FineTuneOptions(method: .imprint))
            let accuracy = try h.accuracy(queries)
            XCTAssertGreaterThan(accuracy, 0.8, "chance is 0.2")
        }
    }

    func testHeadTrainingLowersTheLossAndKeepsAccuracy() throws {
        let h = try TuneHarness(try Planted.blob(Planted.network()))
        var options = FineTuneOptions(method: .head)
        options.augmentation = 0  // the planted patterns are not shift-invariant
        try h.tune(shots, classes: 5, options)
        XCTAssertTrue(h.tuner.loss.initial.isFinite)
        XCTAssertLessThan(h.tuner.loss.final, 0.9 * h.tuner.loss.initial,
                          "loss \(h.tuner.loss.initial) → \(h.tuner.loss.final)")
        XCTAssertEqual(h.tuner.sampleCount, 25)
        XCTAssertGreaterThan(try h.accuracy(queries), 0.8)
    }

    func testHeadGradientMatchesFiniteDifferences() throws {
        var rng = SeededRNG(seed: 3)
        let (n, d, c) = (7, 5, 4)
        var features = [Float]()
        for _ in 0..<n {
            let v = rng.floats(d)
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            features += v.map { $0 / norm }
        }
        let labels: [Int32] = (0..<n).map { Int32($0 % c) }
        let indices: [Int32] = [4, 0, 6, 2, 5]  // a batch of 5 rows, out of order
        let w = rng.floats(c * d, in: -2...2), b = rng.floats(c, in: -0.5...0.5)
        let anchor = rng.floats(c * d, in: -2...2)
        let lambda: Float = 0.3

        // The runtime's gradient.
        var gw = [Float](repeating: .nan, count: c * d), gb = [Float](repeating: .nan, count: c)
        var logits = [Float](repeating: 0, count: c), probs = [Float](repeating: 0, count: c)
        let loss = features.withUnsafeBufferPointer { f in
            labels.withUnsafeBufferPointer { l in
                indices.withUnsafeBufferPointer { idx in
                    headLossAndGradient(HeadBatch(features: f.baseAddress!, labels: l.baseAddress!, indices: idx.baseAddress!,
                                                  count: indices.count, dim: d, classes: c),
                                        weights: w, bias: b, anchor: anchor, anchorStrength: lambda,
                                        gradWeights: &gw, gradBias: &gb, logits: &logits, probs: &probs)
                }
            }
        }
        // The same loss in Double, from the definition.
        func reference(_ w: [Double], _ b: [Double]) -> Double {
            var total = 0.0
            for r in indices.map(Int.init) {
                let z = (0..<c).map { k in b[k] + (0..<d).reduce(0.0) { $0 + w[k * d + $1] * Double(features[r * d + $1]) } }
                let m = z.max()!
                let lse = m + Foundation.log(z.reduce(0.0) { $0 + Foundation.exp($1 - m) })
                total += lse - z[Int(labels[r])]
            }
            var sq = 0.0
            for j in 0..<(c * d) { sq += (w[j] - Double(anchor[j])) * (w[j] - Double(anchor[j])) }
            return total / Double(indices.count) + 0.5 * Double(lambda) * sq
        }
        let wd = w.map(Double.init), bd = b.map(Double.init)
        XCTAssertEqual(Double(loss), reference(wd, bd), accuracy: 1e-5)
        let h = 1e-6
        for j in 0..<(c * d) {
            var plus = wd, minus = wd
            plus[j] += h
            minus[j] -= h
            let numeric = (reference(plus, bd) - reference(minus, bd)) / (2 * h)
            XCTAssertEqual(Double(gw[j]), numeric, accuracy: 1e-5 + 1e-4 * abs(numeric), "dW[\(j)]")
        }
        for k in 0..<c {
            var plus = bd, minus = bd
            plus[k] += h
            minus[k] -= h
            let numeric = (reference(wd, plus) - reference(wd, minus)) / (2 * h)
            XCTAssertEqual(Double(gb[k]), numeric, accuracy: 1e-5 + 1e-4 * abs(numeric), "db[\(k)]")
        }
    }

    func testTunedBlobReloadsAndReproducesThePreSaveOutputs() throws {
        for (builder, precision) in [(Planted.network(), "f32"), (try Planted.quantized(), "mixed"),
                                     (Planted.network(softmax: false), "f32")] {
            let h = try TuneHarness(try Planted.blob(builder))
            var options = FineTuneOptions(method: .head)
            options.epochs = 10
            try h.tune(shots, classes: 5, options)
            let tuned = try h.tunedBlob(names: "v,w,x,y,z")
            XCTAssertNil(loadError(tuned))
            XCTAssertEqual(try metadataValue(tuned, "labels"), "v,w,x,y,z")
            XCTAssertEqual(try metadataValue(tuned, "precision"), precision)
            XCTAssertEqual(try metadataValue(tuned, "name"), "planted")
            var outputs = [Float](repeating: 0, count: 5)
            for i in 0..<20 {
                let image = Array(queries.pixels[(i * 36)..<((i + 1) * 36)])
                try image.withUnsafeBytes { p in
                    try outputs.withUnsafeMutableBufferPointer { try h.tuner.outputs(pixels: p, into: $0) }
                }
                let reloaded = try runBlob(tuned, pixels: image)
                XCTAssertEqual(reloaded.count, 5)
                XCTAssertEqual(reloaded.map(\.bitPattern), outputs.map(\.bitPattern), "image \(i), \(precision)")
            }
        }
    }

    func testTunedBlobWithoutNamesDropsTheOldLabels() throws {
        let h = try TuneHarness(try Planted.blob(Planted.network()))
        try h.tune(shots, classes: 5, FineTuneOptions(method: .imprint))
        let tuned = try h.tunedBlob()
        XCTAssertNil(try metadataValue(tuned, "labels"))
        XCTAssertEqual(try metadataValue(tuned, "name"), "planted")
        var names = Array("a,b".utf8)
        let error = names.withUnsafeMutableBytes { n -> SprigError? in
            do {
                _ = try h.tuner.tunedBlobBytes(classNames: UnsafeRawBufferPointer(n))
                return nil
            } catch { return error as? SprigError }
        }
        XCTAssertEqual(error, .fineTune(.classNamesMismatch(names: 2, classes: 5)))
    }

    func testSameSeedGivesAByteIdenticalTunedBlob() throws {
        let blob = try Planted.blob(try Planted.quantized())
        var options = FineTuneOptions(method: .head)
        options.batchSize = 16
        options.seed = 42
        var results: [[UInt8]] = []
        for fill: UInt8 in [0x00, 0xFF, 0x5A] {  // arena garbage must not matter
            let h = try TuneHarness(blob, fill: fill)
            try h.tune(shots, classes: 5, options)
            results.append(try h.tunedBlob(names: "v,w,x,y,z"))
        }
        XCTAssertEqual(results[0], results[1])
        XCTAssertEqual(results[0], results[2])
        // The seed matters when the batch is smaller than the samples.
        options.seed = 43
        let other = try TuneHarness(blob)
        try other.tune(shots, classes: 5, options)
        XCTAssertNotEqual(try other.tunedBlob(names: "v,w,x,y,z"), results[0])
    }

    func testRetuningATunedBlobKeepsItsSize() throws {
        let h = try TuneHarness(try Planted.blob(try Planted.quantized()))
        try h.tune(shots, classes: 5, FineTuneOptions(method: .head))
        let first = try h.tunedBlob()
        let again = try TuneHarness(first)
        XCTAssertEqual(again.tuner.plan.maxShots, 10)
        try again.tune(shots, classes: 5, FineTuneOptions(method: .head))
        let second = try again.tunedBlob()
        XCTAssertEqual(second.count, first.count)
        XCTAssertEqual(second, first, "same shots and seed on the same backbone")
    }

    func testBadShotsGetTypedErrorsAndChangeNothing() throws {
        let original = try Planted.blob(Planted.network(), maxClasses: 5, maxShots: 6)
        let h = try TuneHarness(original)
        let arenaBefore = Array(h.arena)
        let ok = Planted.samples(perClass: 2, seed: 4)
        let options = FineTuneOptions(method: .head)
        var sevenShots = Planted.samples(perClass: 7, seed: 4)
        sevenShots.labels = sevenShots.labels.map { $0 == 0 ? 0 : 1 }
        let cases: [(String, [UInt8], [UInt8], Int, SprigError)] = [
            ("empty", [], [], 5, .fineTune(.noShots)),
            ("wrong dims", Array(ok.pixels.dropLast(5)), ok.labels, 5, .fineTune(.shotSizeMismatch(expected: 36, found: 355))),
            ("label count", ok.pixels, Array(ok.labels.dropLast()), 5, .fineTune(.labelCountMismatch(shots: 10, labels: 9))),
            ("label out of range", ok.pixels, ok.labels.map { $0 == 4 ? 9 : $0 }, 5,
             .fineTune(.labelOutOfRange(shot: 8, label: 9, classes: 5))),
            ("class without shots", ok.pixels, ok.labels.map { $0 == 2 ? 1 : $0 }, 5, .fineTune(.classWithoutShots(classIndex: 2))),
            ("more shots than planned", sevenShots.pixels, sevenShots.labels, 2,
             .fineTune(.tooManyShots(classIndex: 0, requested: 7, planned: 6))),
            ("more classes than planned", ok.pixels, ok.labels, 6, .fineTune(.tooManyClasses(requested: 6, planned: 5))),
        ]
        for (name, pixels, labels, classes, expected) in cases {
            XCTAssertEqual(h.tuneError(pixels, labels, classes: classes, options), expected, name)
            XCTAssertEqual(Array(h.blob), original, "\(name): the blob changed")
            XCTAssertEqual(Array(h.arena), arenaBefore, "\(name): the arena changed")
        }
        // Nothing was tuned.
        XCTAssertThrowsError(try h.tuner.tunedBlobBytes())
    }

    func testExceedingThePlanIsATypedErrorBeforeAnyChange() throws {
        let imprintPlan = try Planted.blob(Planted.network(), maxClasses: 5, maxShots: 5, method: .imprint)
        let h = try TuneHarness(imprintPlan)
        let before = Array(h.arena)
        // `head` caches features: more than an imprint plan holds.
        let needHead = try FineTunePlan.required(model: h.model, maxClasses: 5, maxShots: 5, method: .head).arenaBytes
        XCTAssertEqual(h.tuneError(shots.pixels, shots.labels, classes: 5, FineTuneOptions(method: .head)),
                       .fineTune(.planTooSmall(need: needHead, planned: h.model.finetuneArenaBytes)))
        // Augmentation beyond the plan.
        let headPlan = try TuneHarness(try Planted.blob(Planted.network(), maxClasses: 5, maxShots: 5, method: .head,
                                                        augmentation: 0))
        var augmented = FineTuneOptions(method: .head)
        augmented.augmentation = 2
        guard case .fineTune(.planTooSmall)? = headPlan.tuneError(shots.pixels, shots.labels, classes: 5, augmented) else {
            return XCTFail("augmentation past the plan must be refused")
        }
        // bias and last: not for q8; last not beyond the plan's layers (an imprint plan has none).
        let q8 = try TuneHarness(try Planted.blob(try Planted.quantized()))
        XCTAssertEqual(q8.tuneError(shots.pixels, shots.labels, classes: 5, FineTuneOptions(method: .bias)),
                       .fineTune(.methodNeedsFloat32(method: .bias)))
        XCTAssertEqual(q8.tuneError(shots.pixels, shots.labels, classes: 5, FineTuneOptions(method: .last)),
                       .fineTune(.methodNeedsFloat32(method: .last)))
        XCTAssertEqual(h.tuneError(shots.pixels, shots.labels, classes: 5, FineTuneOptions(method: .last)),
                       .fineTune(.tooManyLayers(requested: 1, planned: 0)))
        var badEpochs = FineTuneOptions(method: .head)
        badEpochs.epochs = 0
        XCTAssertEqual(h.tuneError(shots.pixels, shots.labels, classes: 5, badEpochs),
                       .fineTune(.invalidOption(option: .epochs, value: 0)))
        XCTAssertEqual(Array(h.arena), before, "a refused fine-tune changed the arena")
        // The arena smaller than the plan; no plan at all.
        XCTAssertThrowsError(try TuneHarness(imprintPlan, arenaBytes: h.model.finetuneArenaBytes - 16)) { error in
            XCTAssertEqual(error as? SprigError, .arenaTooSmall(need: h.model.finetuneArenaBytes,
                                                               have: h.model.finetuneArenaBytes - 16))
        }
        XCTAssertThrowsError(try TuneHarness(try Planted.network().build(), arenaBytes: 1 << 16)) { error in
            XCTAssertEqual(error as? SprigError, .fineTune(.noPlan))
        }
    }

    func testPlanRegionsAreDisjointAndAddUpToThePlan() throws {
        let h = try TuneHarness(try Planted.blob(try Planted.quantized(), maxClasses: 7, maxShots: 3))
        try h.tune(Planted.samples(perClass: 3, seed: 8), classes: 5, FineTuneOptions(method: .head))
        let layout = try XCTUnwrap(h.tuner.layout)
        XCTAssertEqual(layout.total, h.model.finetuneArenaBytes, "the plan in the header is the layout's total")
        let regions = [layout.inference, layout.features, layout.labels, layout.order, layout.weights, layout.bias,
                       layout.anchor, layout.gradWeights, layout.gradBias, layout.momentWeights, layout.momentBias,
                       layout.varianceWeights, layout.varianceBias, layout.counts, layout.logits, layout.probs,
                       layout.feature, layout.image, layout.remap]
        var end = 0
        for r in regions {
            XCTAssertEqual(r.offset % 16, 0)
            XCTAssertGreaterThanOrEqual(r.offset, end, "regions overlap")
            end = r.offset + r.bytes
        }
        XCTAssertLessThanOrEqual(end, layout.total)
        XCTAssertEqual(layout.features.bytes, 7 * 3 * 5 * 16 * 4, "7 classes × 3 shots × 5 copies × D 16")
        XCTAssertEqual(layout.inference.bytes, h.model.arenaBytes)
    }

    func testFineTuningAndSerialisingAllocateNothing() throws {
        for builder in [Planted.network(), try Planted.quantized()] {
            let h = try TuneHarness(try Planted.blob(builder))
            let size = 64 * 1024
            let out = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
            defer { out.deallocate() }
            var options = FineTuneOptions(method: .head)
            options.batchSize = 8
            try shots.pixels.withUnsafeBytes { p in
                try shots.labels.withUnsafeBytes { l in
                    // Warm up once: a debug build instantiates generic metadata on first use.
                    try h.tuner.fineTune(shots: p, labels: l, classCount: 5, options: options)
                    _ = try h.tuner.writeTunedBlob(into: out)
                    sprig_alloc_counter_start()
                    do {
                        try h.tuner.fineTune(shots: p, labels: l, classCount: 5, options: options)
                        try h.tuner.fineTune(shots: p, labels: l, classCount: 5, options: FineTuneOptions(method: .imprint))
                        _ = try h.tuner.tunedBlobBytes()
                        _ = try h.tuner.writeTunedBlob(into: out)
                    } catch {
                        _ = sprig_alloc_counter_stop()
                        throw error
                    }
                    let allocations = sprig_alloc_counter_stop()
                    XCTAssertEqual(allocations, 0, "fine-tuning allocated \(allocations) times")
                }
            }
            XCTAssertNil(loadError(Array(out.prefix(try h.tuner.tunedBlobBytes()))))
        }
    }

    func testWriterRefusesASmallBufferAndWritesNothing() throws {
        let h = try TuneHarness(try Planted.blob(Planted.network()))
        try h.tune(shots, classes: 5, FineTuneOptions(method: .imprint))
        let size = try h.tuner.tunedBlobBytes()
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { out.deallocate() }
        out.initializeMemory(as: UInt8.self, repeating: 0x77)
        XCTAssertThrowsError(try h.tuner.writeTunedBlob(into: UnsafeMutableRawBufferPointer(rebasing: out[0..<(size - 1)]))) {
            XCTAssertEqual($0 as? SprigError, .fineTune(.bufferTooSmall(need: size, have: size - 1)))
        }
        XCTAssertTrue(out.allSatisfy { $0 == 0x77 })
    }

    func testAugmentedImprintUsesShiftedCopies() throws {
        let h = try TuneHarness(try Planted.blob(Planted.network(), method: .imprint))
        var options = FineTuneOptions(method: .imprint)
        options.augmentation = 2
        try h.tune(shots, classes: 5, options)
        XCTAssertEqual(h.tuner.sampleCount, 25 * 9)
        XCTAssertGreaterThan(try h.accuracy(queries), 0.5)
    }
}

// MARK: - L2Normalize

final class L2NormalizeTests: XCTestCase {
    func testMatchesTheNaiveReference() {
        var rng = SeededRNG(seed: 12)
        let cases: [[Float]] = [
            [3, 4], [0, 0, 0], [1e-13, 0], [-2], [1e30, -1e30, 5e29], [1e-30, 2e-30, -3e-30],
            rng.floats(1), rng.floats(7), rng.floats(64, in: -100...100), rng.floats(1000, in: 0...1),
        ]
        for x in cases {
            var y = [Float](repeating: .nan, count: x.count)
            l2NormalizeF32(input: x, output: &y, count: x.count)
            let expected = Naive.l2Normalize(x)
            for i in x.indices {
                XCTAssertEqual(Double(y[i]), expected[i], accuracy: 2e-7 * max(1, abs(expected[i])) + 1e-30,
                               "x count \(x.count), element \(i)")
            }
            // In place gives the same bits.
            var z = x
            z.withUnsafeMutableBufferPointer { l2NormalizeF32(input: $0.baseAddress!, output: $0.baseAddress!, count: x.count) }
            XCTAssertEqual(z.map(\.bitPattern), y.map(\.bitPattern))
        }
        var y: [Float] = [0, 0]
        l2NormalizeF32(input: [3, 4], output: &y, count: 2)
        XCTAssertEqual(y, [0.6, 0.8])
    }

    func testNonFiniteInputsGiveNaNWithoutTrapping() {
        for bad: Float in [.nan, .infinity, -.infinity] {
            var y = [Float](repeating: 0, count: 3)
            l2NormalizeF32(input: [1, bad, 2], output: &y, count: 3)
            XCTAssertTrue(y.allSatisfy(\.isNaN))
        }
    }

    func testBlobCasesAreRejectedWithTheirErrors() {
        func net(input: DType, output: DType, outCount: Int = 4, inputs: Int = 1) -> [UInt8]? {
            var b = BlobBuilder()
            let x = b.addActivation("x", dtype: input, shape: [4], quant: input == .i8 ? QuantParams(scale: 0.1, zeroPoint: 0) : nil)
            b.addInput(x)
            let y = b.addActivation("y", dtype: output, shape: [outCount])
            b.addOp(.l2Normalize, inputs: inputs == 1 ? [x] : [x, x], output: y)
            b.addOutput(y)
            do { return try b.build() } catch { return nil }
        }
        func error(_ input: DType, _ output: DType, outCount: Int = 4, inputs: Int = 1) -> SprigError? {
            var b = BlobBuilder()
            let x = b.addActivation("x", dtype: input, shape: [4], quant: input == .i8 ? QuantParams(scale: 0.1, zeroPoint: 0) : nil)
            b.addInput(x)
            let y = b.addActivation("y", dtype: output, shape: [outCount])
            b.addOp(.l2Normalize, inputs: inputs == 1 ? [x] : [x, x], output: y)
            b.addOutput(y)
            do {
                _ = try b.build()
                return nil
            } catch { return error }
        }
        XCTAssertNotNil(net(input: .f32, output: .f32))
        XCTAssertEqual(error(.i8, .f32), .dtypeMismatch(op: 0, slot: 0, expected: .f32, found: 2))
        XCTAssertEqual(error(.f32, .i8), .dtypeMismatch(op: 0, slot: -1, expected: .f32, found: 2))
        XCTAssertEqual(error(.f32, .f32, outCount: 5), .shapeMismatch(op: 0, slot: -1, expected: 4, found: 5))
        XCTAssertEqual(error(.f32, .f32, inputs: 2), .fieldMismatch(field: .opInputCount, index: 0, expected: 1, found: 2))
        // A fused activation is not allowed on L2Normalize: corrupt the byte, fix the CRC.
        guard let good = net(input: .f32, output: .f32) else { return XCTFail("valid net refused") }
        var bytes = BlobBytes(good)
        bytes.bytes[bytes.opRecord(0) + 1] = 1
        bytes.fixCRC()
        XCTAssertEqual(loadError(bytes.bytes), .invalidField(field: .opActivation, index: 0, value: 1))
        // The interpreter runs it.
        var run = BlobBytes(good)
        run.fixCRC()
        XCTAssertNil(loadAndInvoke(run.bytes))
    }

    func testSquareRootIsCorrectlyRounded() {
        var rng = SeededRNG(seed: 9)
        var xs: [Float] = [0, -0.0, 1, 2, 4, 0.25, .leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude,
                           .infinity, Float(bitPattern: 0x007F_FFFF), Float(bitPattern: 0x3F80_0001), Float(bitPattern: 0x3FFF_FFFF)]
        xs += (0..<200_000).map { _ in Float(bitPattern: UInt32.random(in: 0...0x7F7F_FFFF, using: &rng)) }
        for x in xs {
            XCTAssertEqual(sqrtF32(x).bitPattern, x.squareRoot().bitPattern, "sqrt(\(x)) bits \(x.bitPattern)")
        }
        XCTAssertTrue(sqrtF32(-1).isNaN)
        XCTAssertTrue(sqrtF32(.nan).isNaN)
    }

    func testLogMatchesFoundation() {
        var rng = SeededRNG(seed: 4)
        var xs: [Float] = [1, 2, 0.5, 1e-30, 1e30, Float.leastNonzeroMagnitude, Float.greatestFiniteMagnitude, 1.4142135, 0.70710677]
        xs += rng.floats(500, in: 0.001...100)
        for x in xs {
            let expected = Foundation.log(Double(x))
            XCTAssertEqual(Double(logF32(x)), expected, accuracy: 3e-7 * max(1, abs(expected)), "log(\(x))")
        }
        XCTAssertEqual(logF32(0), -.infinity)
        XCTAssertTrue(logF32(-1).isNaN)
    }
}

// MARK: - sprig-edge finetune (the built executable)

/// The built `sprig-edge` next to the test bundle, or nil.
func sprigEdgeExecutable() -> URL? {
    var candidates: [URL] = []
    let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    candidates.append(testBinary.deletingLastPathComponent().appendingPathComponent("sprig-edge"))
    candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("sprig-edge"))
    let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    candidates.append(package.appendingPathComponent(".build/debug/sprig-edge"))
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
}

/// An uncompressed IDX file of unsigned bytes.
func idx(_ dims: [Int], _ bytes: [UInt8]) -> Data {
    var d = Data([0, 0, 8, UInt8(dims.count)])
    for v in dims { d += [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    return d + Data(bytes)
}

final class EdgeFinetuneTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sprig-ft-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Runs sprig-edge; returns the exit status and standard error.
    func edge(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        guard let exe = sprigEdgeExecutable() else { throw XCTSkip("sprig-edge is not built next to the tests") }
        let p = Process()
        p.executableURL = exe
        p.arguments = arguments
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    func writeShots(_ data: (pixels: [UInt8], labels: [UInt8]), _ name: String) throws {
        try idx([data.labels.count, 6, 6], data.pixels).write(to: URL(fileURLWithPath: path(name + "-images.idx")))
        try idx([data.labels.count], data.labels).write(to: URL(fileURLWithPath: path(name + "-labels.idx")))
    }

    func testBadShotFilesExitOneAndLeaveTheOutputUntouched() throws {
        let model = try Planted.blob(Planted.network(), maxClasses: 5, maxShots: 3)
        try Data(model).write(to: URL(fileURLWithPath: path("model.sprig")))
        try Data(try Planted.network().build()).write(to: URL(fileURLWithPath: path("noplan.sprig")))
        let old = Data("previous content".utf8)
        try old.write(to: URL(fileURLWithPath: path("out.sprig")))
        try writeShots(Planted.samples(perClass: 2, seed: 3), "ok")
        try writeShots(Planted.samples(perClass: 4, seed: 3), "many")
        let wrong = Planted.samples(perClass: 2, seed: 3)
        try idx([10, 5, 5], Array(wrong.pixels.prefix(250))).write(to: URL(fileURLWithPath: path("wrong-images.idx")))
        try idx([0, 6, 6], []).write(to: URL(fileURLWithPath: path("empty-images.idx")))
        try idx([0], []).write(to: URL(fileURLWithPath: path("empty-labels.idx")))
        try idx([10], wrong.labels.map { $0 == 4 ? 7 : $0 }).write(to: URL(fileURLWithPath: path("range-labels.idx")))
        let one = Planted.samples(perClass: 1, seed: 3)
        try idx([5, 6, 6], one.pixels).write(to: URL(fileURLWithPath: path("gap-images.idx")))
        try idx([5], [0, 1, 1, 3, 4]).write(to: URL(fileURLWithPath: path("gap-labels.idx")))
        let cases: [(String, [String], String)] = [
            ("wrong dims", [path("model.sprig"), path("wrong-images.idx"), path("ok-labels.idx")], "wrong-images.idx: dims"),
            ("empty", [path("model.sprig"), path("empty-images.idx"), path("empty-labels.idx")], "empty-images.idx: dims[0]"),
            ("label out of range", [path("model.sprig"), path("ok-images.idx"), path("range-labels.idx"),
                                    "--names", "a,b,c,d,e"], "range-labels.idx: --names gives 5 names, but the labels have 8 classes (0 to 7: label[8] is 7)"),
            ("more classes than planned", [path("model.sprig"), path("ok-images.idx"), path("range-labels.idx")],
             "range-labels.idx: finetune_max_classes: 8 classes, the plan holds 5"),
            ("class without shots", [path("model.sprig"), path("gap-images.idx"), path("gap-labels.idx")],
             "gap-labels.idx: labels: class 2 has no shot"),
            ("more shots than planned", [path("model.sprig"), path("many-images.idx"), path("many-labels.idx")],
             "many-labels.idx: finetune_max_shots: class 0 has 4 shots"),
            ("no plan", [path("noplan.sprig"), path("ok-images.idx"), path("ok-labels.idx")], "noplan.sprig: finetune_arena_bytes"),
            ("last beyond the plan", [path("model.sprig"), path("ok-images.idx"), path("ok-labels.idx"), "--method", "last"],
             "finetune_max_layers: last with 1 layers, the plan holds 0"),
        ]
        for (name, args, message) in cases {
            let (status, stderr) = try edge(["finetune"] + args + ["--out", path("out.sprig")])
            XCTAssertEqual(status, 1, "\(name): \(stderr)")
            XCTAssertTrue(stderr.contains(message), "\(name): '\(stderr)' lacks '\(message)'")
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("out.sprig"))), old, "\(name) touched the output")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("model.sprig"))), Data(model))
        // Usage errors exit 2; a good run exits 0 and writes a loadable blob.
        XCTAssertEqual(try edge(["finetune", path("model.sprig"), path("ok-images.idx"), path("ok-labels.idx")]).status, 2)
        XCTAssertEqual(try edge(["finetune", path("model.sprig"), path("ok-images.idx"), path("ok-labels.idx"),
                                 "--out", path("out.sprig"), "--method", "nope"]).status, 2)
        let good = try edge(["finetune", path("model.sprig"), path("ok-images.idx"), path("ok-labels.idx"),
                             "--out", path("out.sprig"), "--classes", "a,b,c,d,e"])
        XCTAssertEqual(good.status, 0, good.stderr)
        let tuned = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path("out.sprig"))))
        XCTAssertNil(loadError(tuned))
        XCTAssertEqual(try metadataValue(tuned, "labels"), "a,b,c,d,e")
    }

    /// SIGKILLs `sprig-edge finetune` at random points, at least 50 times; the
    /// output path must always hold the old blob or a complete new one.
    func testKilledWriterLeavesTheOldOrTheNewBlob() throws {
        guard let exe = sprigEdgeExecutable() else { throw XCTSkip("sprig-edge is not built next to the tests") }
        // A wide first layer makes the blob (and so the write) large: about 0.7 MB.
        var wide = BlobBuilder()
        var rng = SeededRNG(seed: 77)
        let x = wide.addActivation("input", dtype: .f32, shape: [6, 6, 1])
        wide.addInput(x, mean: 0.5, std: 0.25)
        let flat = wide.addActivation("flat", dtype: .f32, shape: [36])
        wide.addOp(.reshape, inputs: [x], output: flat)
        let h0 = wide.addActivation("h0", dtype: .f32, shape: [4096])
        wide.addOp(.dense, activation: .relu, inputs: [flat, wide.addConstant("w0", floats: rng.floats(4096 * 36), shape: [4096, 36]), -1], output: h0)
        let h = wide.addActivation("h", dtype: .f32, shape: [16])
        wide.addOp(.dense, activation: .relu, inputs: [h0, wide.addConstant("w1", floats: rng.floats(16 * 4096, in: -0.02...0.02), shape: [16, 4096]), -1], output: h)
        let y = wide.addActivation("y", dtype: .f32, shape: [3])
        wide.addOp(.dense, inputs: [h, wide.addConstant("w2", floats: rng.floats(48), shape: [3, 16]), -1], output: y)
        wide.addOutput(y)
        let model = try Planted.blob(wide, maxClasses: 5, maxShots: 5, method: .imprint)
        try Data(model).write(to: URL(fileURLWithPath: path("model.sprig")))
        try writeShots(Planted.samples(perClass: 2, seed: 5), "shots")
        let out = path("out.sprig")
        try Data(model).write(to: URL(fileURLWithPath: out))  // the old, valid blob
        let args = ["finetune", path("model.sprig"), path("shots-images.idx"), path("shots-labels.idx"),
                    "--method", "imprint", "--out", out]

        // How long a whole run takes (the fastest of three), to spread the kills over it.
        var runtime = Double.infinity, writeSeconds = 0.01
        for _ in 0..<3 {
            let start = Date()
            let probe = Process()
            probe.executableURL = exe
            probe.arguments = args + ["--json"]
            let stdout = Pipe()
            probe.standardOutput = stdout
            try probe.run()
            let report = stdout.fileHandleForReading.readDataToEndOfFile()
            probe.waitUntilExit()
            runtime = min(runtime, Date().timeIntervalSince(start))
            XCTAssertEqual(probe.terminationStatus, 0)
            let json = try JSONSerialization.jsonObject(with: report) as? [String: Any]
            writeSeconds = json?["seconds_write"] as? Double ?? writeSeconds
        }
        XCTAssertNil(loadError([UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))))
        var rng2 = SeededRNG(seed: 123)
        var killed = 0, finished = 0, sawOld = 0, sawNew = 0
        var round = 0
        while killed < 55 && round < 200 {
            defer { round += 1 }
            try Data(model).write(to: URL(fileURLWithPath: out))  // the old blob, again
            let p = Process()
            p.executableURL = exe
            p.arguments = args + ["--classes", "c\(round),b,c,d,e"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            if round % 2 == 0 {
                // Anywhere in the run.
                usleep(UInt32(rng2.double(in: (0.05 * runtime)...runtime) * 1e6))
            } else {
                // During the write: wait until the temporary file appears (or, for a
                // writer that is not atomic, until the output changes size), then a
                // random fraction of the write time.
                let temp = out + ".tmp-\(p.processIdentifier)"
                var st = stat()
                while p.isRunning && access(temp, F_OK) != 0
                    && !(stat(out, &st) == 0 && Int(st.st_size) != model.count) {
                    usleep(50)
                }
                usleep(UInt32(rng2.double(in: 0...(1.5 * writeSeconds)) * 1e6))
            }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            if p.terminationReason == .uncaughtSignal { killed += 1 } else { finished += 1 }
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
            XCTAssertNil(loadError(bytes), "round \(round): the output is not a valid blob (\(bytes.count) bytes)")
            if bytes == model { sawOld += 1 } else {
                sawNew += 1
                XCTAssertNotNil(try metadataValue(bytes, "labels"), "round \(round)")
            }
        }
        XCTAssertGreaterThanOrEqual(killed, 50, "only \(killed) of \(round) runs were killed (runtime \(runtime) s)")
        XCTAssertGreaterThan(sawOld, 0, "no kill left the old blob")
        print("kill test: \(killed) killed, \(finished) finished; output old \(sawOld), new \(sawNew) times;"
              + " run \(runtime) s, write \(writeSeconds) s")
        // Stale temporary files may remain beside the output; the output itself is always whole.
    }
}
