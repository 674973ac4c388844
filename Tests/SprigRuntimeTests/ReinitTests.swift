// `reinit`: the He-uniform draw against a SplitMix64 and a formula written
// out here (bounds, moments, determinism per seed), the draw in place of the
// blob's weights, reinit equal to `last` over every layer started from that
// draw, the loss going down, the plan (every layer) and its errors before
// every change, and no allocation.

import CAllocCounter
import Foundation
import SprigCompile
import SprigRuntime
import SprigWriter
import SprigTestSupport
import XCTest

/// SplitMix64 (Steele, Lea, Flood 2014), written out again for the reference.
private struct ReferenceSplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The He-uniform draw as docs/finetune.md states it: the top 24 bits r of
/// each output, `limit · (r − 2²³) / 2²³`, `limit = √(6 / fan_in)`, layers in op
/// order, each weight tensor in memory order. Returns (name, values) per weight tensor.
private func referenceDraw(seed: UInt64, layers: [(name: String, count: Int, fanIn: Int)]) -> [(String, [Float])] {
    var rng = ReferenceSplitMix(state: seed)
    return layers.map { layer in
        let limit = (6 / Float(layer.fanIn)).squareRoot()
        return (layer.name, (0..<layer.count).map { _ in Float(Int64(rng.next() >> 40) - (1 << 23)) / Float(1 << 23) * limit })
    }
}

/// The f32 values of the constant tensor called `name` in a blob.
private func constant(_ name: String, in bytes: [UInt8]) throws -> [Float] {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
    defer { buffer.deallocate() }
    buffer.copyBytes(from: bytes)
    let model = try Model(bytes: UnsafeRawBufferPointer(buffer))
    for t in 0..<model.tensorCount where String(decoding: model.name(model.tensor(t)), as: UTF8.self) == name {
        let raw = model.constantBytes(model.tensor(t))
        return (0..<(raw.count / 4)).map { raw.load(fromByteOffset: 4 * $0, as: Float.self) }
    }
    throw XCTSkip("no tensor \(name)")
}

/// `bytes` with the constant `name` overwritten by `values` (the CRC fixed).
private func replacing(_ name: String, with values: [Float], in bytes: [UInt8]) throws -> [UInt8] {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
    defer { buffer.deallocate() }
    buffer.copyBytes(from: bytes)
    let model = try Model(bytes: UnsafeRawBufferPointer(buffer))
    var out = BlobBytes(bytes)
    for t in 0..<model.tensorCount where String(decoding: model.name(model.tensor(t)), as: UTF8.self) == name {
        let info = model.tensor(t)
        XCTAssertEqual(info.dataBytes, 4 * values.count, name)
        for (i, v) in values.enumerated() {
            withUnsafeBytes(of: v.bitPattern.littleEndian) { b in
                for k in 0..<4 { out.bytes[info.dataOffset + 4 * i + k] = b[k] }
            }
        }
    }
    out.fixCRC()
    return out.bytes
}

final class ReinitTests: XCTestCase {
    let shots = Planted.samples(perClass: 5, seed: 1)
    let queries = Planted.samples(perClass: 20, seed: 2)
    /// PlantedCNN's backbone: conv1 [3,3,1,4] (fan-in 9) and conv2 [3,3,4,4] (fan-in 36).
    let cnnLayers = [("conv1.weight", 36, 9), ("conv2.weight", 144, 36)]

    /// PlantedCNN with a plan for `methods` (reinit's covers both conv layers).
    func cnnBlob(_ methods: [FineTuneMethod] = [.head, .reinit], layers: Int = 1) throws -> [UInt8] {
        var b = PlantedCNN.network()
        try b.planFineTuning(maxClasses: 5, maxShots: 5, methods: methods, layers: layers)
        return try b.build()
    }

    func options(epochs: Int = 10, seed: UInt64 = 7) -> FineTuneOptions {
        var o = FineTuneOptions(method: .reinit)
        o.epochs = epochs
        o.batchSize = 8
        o.seed = seed
        return o
    }

    // MARK: The draw

    func testHeUniformMatchesTheReferenceStaysInBoundsAndFollowsTheSeed() {
        XCTAssertEqual(heUniformLimit(fanIn: 6), 1)
        XCTAssertEqual(heUniformLimit(fanIn: 150), 0.2, accuracy: 1e-7)
        XCTAssertEqual(heUniformLimit(fanIn: 0), heUniformLimit(fanIn: 1), "no division by zero")
        func draw(seed: UInt64, count: Int, fanIn: Int) -> [Float] {
            var rng = SplitMix64RNG(seed: seed)
            var values = [Float](repeating: .nan, count: count)
            values.withUnsafeMutableBufferPointer { heUniformFill($0.baseAddress!, count: count, fanIn: fanIn, rng: &rng) }
            return values
        }
        for (seed, fanIn) in [(UInt64(0), 9), (1, 36), (0xFFFF_FFFF_FFFF_FFFF, 1000)] {
            let values = draw(seed: seed, count: 20_000, fanIn: fanIn)
            let reference = referenceDraw(seed: seed, layers: [("w", 20_000, fanIn)])[0].1
            XCTAssertEqual(values.map(\.bitPattern), reference.map(\.bitPattern), "seed \(seed)")
            // Bounds, and the moments of U(−limit, limit): mean 0, variance limit²/3 = 2/fan_in.
            let limit = Double(6 / Float(fanIn)).squareRoot()
            XCTAssertTrue(values.allSatisfy { Double($0.magnitude) <= limit * (1 + 1e-6) }, "seed \(seed)")
            let mean = values.reduce(0) { $0 + Double($1) } / Double(values.count)
            let variance = values.reduce(0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(values.count)
            XCTAssertEqual(mean, 0, accuracy: 0.03 * limit, "seed \(seed)")
            XCTAssertEqual(variance, 2 / Double(fanIn), accuracy: 0.05 * 2 / Double(fanIn), "seed \(seed)")
            XCTAssertGreaterThan(values.map(\.magnitude).max()!, Float(0.99 * limit), "the draw reaches the bound")
            // Same seed, same values; another seed, others.
            XCTAssertEqual(draw(seed: seed, count: 100, fanIn: fanIn), Array(values.prefix(100)))
            XCTAssertNotEqual(draw(seed: seed &+ 1, count: 100, fanIn: fanIn), Array(values.prefix(100)))
        }
    }

    func testTheTunedWeightsStartFromTheDrawNotFromTheBlob() throws {
        let blob = try cnnBlob()
        for seed: UInt64 in [7, 8] {
            let h = try TuneHarness(blob)
            // One epoch at a step of 1e-20: the trained values are the initial ones to the last bit that shows.
            var o = options(epochs: 1, seed: seed)
            o.learningRate = 1e-20
            o.backboneLearningRate = 1e-20
            try h.tune(shots, classes: 5, o)
            XCTAssertEqual(h.tuner.segment?.method, .reinit)
            XCTAssertEqual(h.tuner.segment?.trainedLayers, 2)
            let tuned = try h.tunedBlob()
            for (name, expected) in referenceDraw(seed: seed, layers: cnnLayers) {
                let got = try constant(name, in: tuned)
                XCTAssertEqual(got.count, expected.count, name)
                for (g, e) in zip(got, expected) { XCTAssertEqual(g, e, accuracy: 1e-12, "\(name) seed \(seed)") }
                let source = try constant(name, in: blob)
                XCTAssertGreaterThan(zip(got, source).map { abs($0 - $1) }.max()!, 0.05, "\(name): still the blob's weights")
            }
            for name in ["conv1.bias", "conv2.bias"] {
                XCTAssertTrue(try constant(name, in: tuned).allSatisfy { abs($0) < 1e-12 }, "\(name) starts at 0")
                XCTAssertTrue(try constant(name, in: blob).contains { abs($0) > 1e-3 }, "\(name): the blob's bias is not 0")
            }
        }
    }

    /// reinit is `last` over every layer, started from the draw: planting the
    /// reference draw (and zero biases) into the blob and running `last 2` with
    /// the same options gives the same tuned blob, byte for byte.
    func testReinitEqualsLastOverEveryLayerStartedFromTheDraw() throws {
        let blob = try cnnBlob([.head, .last], layers: 2)
        let o = options(epochs: 3, seed: 11)
        let reinit = try TuneHarness(blob)
        try reinit.tune(shots, classes: 5, o)
        var planted = blob
        for (name, values) in referenceDraw(seed: 11, layers: cnnLayers) {
            planted = try replacing(name, with: values, in: planted)
        }
        for name in ["conv1.bias", "conv2.bias"] { planted = try replacing(name, with: [Float](repeating: 0, count: 4), in: planted) }
        let last = try TuneHarness(planted)
        var lastOptions = o
        lastOptions.method = .last
        lastOptions.layers = 2
        try last.tune(shots, classes: 5, lastOptions)
        XCTAssertEqual(reinit.tuner.loss.initial, last.tuner.loss.initial)
        XCTAssertEqual(reinit.tuner.loss.final, last.tuner.loss.final)
        XCTAssertEqual(try reinit.tunedBlob(), try last.tunedBlob())
    }

    func testTrainingLowersTheLossOnTheShotsDeterministically() throws {
        var dense = Planted.network()
        try dense.planFineTuning(maxClasses: 5, maxShots: 5, methods: [.head, .reinit])
        for (name, blob) in [("dense", try dense.build()), ("cnn", try cnnBlob())] {
            var o = options(epochs: 20)
            o.batchSize = 0
            let h = try TuneHarness(blob)
            try h.tune(shots, classes: 5, o)
            XCTAssertTrue(h.tuner.loss.initial.isFinite, name)
            XCTAssertLessThan(h.tuner.loss.final, 0.75 * h.tuner.loss.initial, "\(name): \(h.tuner.loss.initial) → \(h.tuner.loss.final)")
            XCTAssertGreaterThan(try h.accuracy(queries), 0.5, "\(name): chance is 0.2")
            // The same seed on an arena full of other garbage gives the same blob; another seed, another.
            let again = try TuneHarness(blob, fill: 0x00)
            try again.tune(shots, classes: 5, o)
            XCTAssertEqual(try again.tunedBlob(), try h.tunedBlob(), name)
            o.seed += 1
            let other = try TuneHarness(blob)
            try other.tune(shots, classes: 5, o)
            XCTAssertNotEqual(try other.tunedBlob(), try h.tunedBlob(), name)
        }
    }

    // MARK: The plan and the errors

    func testThePlanHoldsEveryLayerAndIsLastsOverEveryLayer() throws {
        let h = try TuneHarness(try cnnBlob())
        XCTAssertEqual(h.tuner.plan.maxLayers, 2)
        let reinit = try FineTunePlan.required(model: h.model, maxClasses: 5, maxShots: 5, method: .reinit)
        let last2 = try FineTunePlan.required(model: h.model, maxClasses: 5, maxShots: 5, method: .last, layers: 2)
        XCTAssertEqual(reinit, last2)
        let segment = try BackboneSegment(model: h.model, head: h.tuner.head, method: .reinit, layers: 1)
        XCTAssertEqual(segment.firstOp, 0)
        XCTAssertEqual(segment.trainedLayers, 2)
        XCTAssertEqual(segment.parameterBytes, 4 * 36 + 16 + 4 * 144 + 16)
        XCTAssertEqual(FineTuneOptions(method: .reinit).backboneLearningRate, 0.003)
        XCTAssertEqual(FineTuneOptions(method: .reinit).augmentation, 0)
        XCTAssertEqual(FineTuneMethod(rawValue: 5), .reinit)
        let name = Array("reinit".utf8)
        XCTAssertEqual(name.withUnsafeBytes { FineTuneMethod(name: $0) }, .reinit)
    }

    func testRefusalsAreTypedErrorsBeforeAnyChange() throws {
        // Plans that cannot train every layer: head only (0 layers), last 1.
        for (methods, planned) in [([FineTuneMethod.head], 0), ([.head, .last], 1)] {
            let original = try cnnBlob(methods, layers: 1)
            let h = try TuneHarness(original)
            let before = Array(h.arena)
            XCTAssertEqual(h.tuneError(shots.pixels, shots.labels, classes: 5, options()),
                           .fineTune(.reinitNotPlanned(layers: 2, planned: planned)))
            XCTAssertTrue(Array(h.arena) == before, "\(methods): the arena changed")
            XCTAssertTrue(Array(h.blob) == original, "\(methods): the blob changed")
        }
        // int8: refused, and not plannable.
        let q8 = try TuneHarness(try Planted.blob(try Planted.quantized()))
        let q8Arena = Array(q8.arena)
        XCTAssertEqual(q8.tuneError(shots.pixels, shots.labels, classes: 5, options()),
                       .fineTune(.methodNeedsFloat32(method: .reinit)))
        XCTAssertThrowsError(try FineTunePlan.required(model: q8.model, maxClasses: 5, maxShots: 5, method: .reinit)) {
            XCTAssertEqual($0 as? SprigError, .fineTune(.methodNeedsFloat32(method: .reinit)))
        }
        XCTAssertTrue(Array(q8.arena) == q8Arena, "a refused q8 fine-tune changed the arena")
        // Mixed (conv1 int8, conv2 and the head Float32): last 1 trains, reinit cannot reach conv1.
        let f32 = PlantedCNN.network()
        let calibration = Planted.samples(perClass: 10, seed: 99)
        let images = (0..<calibration.labels.count).map { Array(calibration.pixels[($0 * 36)..<(($0 + 1) * 36)]) }
        var mixed = try quantizeNetwork(f32, ranges: try calibrate(blob: try f32.build(), samples: images), floatLayers: 1)
        try mixed.planFineTuning(maxClasses: 5, maxShots: 5, methods: [.head, .last], layers: 1)
        let m = try TuneHarness(try mixed.build(), plan: FineTunePlan(arenaBytes: 1 << 20, maxClasses: 5, maxShots: 5,
                                                                       augmentation: 0, maxLayers: 9))
        XCTAssertNil(m.tuneError(shots.pixels, shots.labels, classes: 5, { var o = options(epochs: 1); o.method = .last; return o }()))
        XCTAssertEqual(m.tuneError(shots.pixels, shots.labels, classes: 5, options()),
                       .fineTune(.methodNeedsFloat32(method: .reinit)))
    }

    func testReinitAllocatesNothing() throws {
        let h = try TuneHarness(try cnnBlob())
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { out.deallocate() }
        let o = options(epochs: 2)
        try shots.pixels.withUnsafeBytes { p in
            try shots.labels.withUnsafeBytes { l in
                // Warm up once: a debug build instantiates generic metadata on first use.
                try h.tuner.fineTune(shots: p, labels: l, classCount: 5, options: o)
                _ = try h.tuner.writeTunedBlob(into: out)
                sprig_alloc_counter_start()
                do {
                    try h.tuner.fineTune(shots: p, labels: l, classCount: 5, options: o)
                    _ = try h.tuner.writeTunedBlob(into: out)
                } catch {
                    _ = sprig_alloc_counter_stop()
                    throw error
                }
                XCTAssertEqual(sprig_alloc_counter_stop(), 0)
            }
        }
    }
}
