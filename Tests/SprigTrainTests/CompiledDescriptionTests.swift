// Every preset (width 0.25) and a hand-written description, at 28×28×1, 32×32×3
// (distinct per-channel mean and std: the lowering's 1×1 depthwise normalisation op)
// and 8×8×1, compiled to an f32 blob and run by the runtime's interpreter:
//   - the blob's logits on 8-bit pixels equal the trainer's eval forward on the same
//     pixels normalised by hand, x ↦ (x/255 − mean[c]) / std[c] (relative error < 1e-5);
//   - the cost model's full params and MACs (`pruningSpace(for:)`) equal the blob's
//     `Model.parameterCount` and `Model.work.macs`, and so do `cost(_:kept:)` and the blob of
//     a network extracted from a randomly masked supernet.
// The extraction side (masked supernet = extracted network) is
// Tests/SprigPruneTests/DescriptionEquivalenceTests.swift.

import SprigCompile
import SprigPrune
import SprigRuntime
import SprigTestSupport
import SprigTrain
import SprigWriter
import XCTest

final class CompiledDescriptionTests: XCTestCase {
    static let handLayers = SharedDescriptions.handLayers
    static let inputs = SharedDescriptions.inputs
    static let classes = SharedDescriptions.classes
    static func architectures(_ input: InputSpec) throws -> [(label: String, architecture: Architecture)] {
        try SharedDescriptions.architectures(input)
    }

    /// The network of `a` with every vector and running variance redrawn (BN folding matters).
    func network(_ a: Architecture, seed: UInt64) throws -> Sequential {
        let network = try buildNetwork(a, seed: seed)
        var rng = SprigRNG(seed: seed ^ 0x5EED)
        for entry in namedTensors(network) where entry.get().rank == 1 {
            var t = entry.get()
            for i in t.storage.indices {
                if entry.name.hasSuffix("running_var") {
                    t.storage[i] = 0.3 + 1.5 * rng.nextFloat()
                } else if entry.name.hasSuffix(".weight") {
                    t.storage[i] = 0.5 + rng.nextFloat()
                } else {
                    t.storage[i] = 0.4 * rng.normal()
                }
            }
            entry.set(t)
        }
        return network
    }

    func blob(_ network: Sequential, _ a: Architecture) throws -> (builder: BlobBuilder, bytes: [UInt8]) {
        let builder = try lowerNetwork(try loweringSteps(network), input: a.input, name: blobName(a))
        return (builder, try builder.build())
    }

    /// The blob's parameter count and MACs, as the runtime counts them at load.
    func blobCosts(_ blob: [UInt8]) throws -> (params: Int, macs: UInt64) {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: blob.count, alignment: 16)
        defer { bytes.deallocate() }
        bytes.copyBytes(from: blob)
        let model = try Model(bytes: UnsafeRawBufferPointer(bytes))
        return (model.parameterCount, model.work.macs)
    }

    /// Interleaved HWC bytes → the trainer's input, normalised per channel by hand.
    func normalised(_ images: [[UInt8]], _ input: InputSpec) -> Tensor {
        let c = input.channels
        var values: [Float] = []
        for image in images {
            for (i, p) in image.enumerated() {
                let k = input.mean.count == 1 ? 0 : i % c
                values.append((Float(p) / 255 - input.mean[k]) / input.std[k])
            }
        }
        return Tensor(shape: [images.count] + input.shape, storage: values)
    }

    /// The blob's logits against the trainer's for `count` random images.
    func assertBlobMatchesTrainer(_ network: Sequential, _ a: Architecture, _ blob: [UInt8], seed: UInt64, label: String,
                                  count: Int = 3) throws {
        var rng = SprigRNG(seed: seed)
        let size = a.input.shape.reduce(1, *)
        let images = (0..<count).map { _ in (0..<size).map { _ in UInt8(rng.int(below: 256)) } }
        let got = try runBlob(blob, images)
        let want = network.forward(normalised(images, a.input), training: false)
        XCTAssertEqual(want.shape, [count, a.classes], label)
        for n in 0..<count {
            let row = Array(want.storage[(n * a.classes)..<((n + 1) * a.classes)])
            XCTAssertEqual(got[n].count, a.classes, label)
            let scale = row.map { abs($0) }.max() ?? 0
            XCTAssertGreaterThan(scale, 0, "\(label) image \(n): all-zero logits test nothing")
            let diff = zip(got[n], row).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThan(diff / scale, 1e-5, "\(label) image \(n): max |blob − trainer| \(diff), max |logit| \(scale)")
        }
    }

    // MARK: (b) the compiled f32 blob computes the trainer's eval forward

    func testCompiledF32BlobEqualsTheTrainerForEveryDescriptionAndShape() throws {
        var checked = 0
        for (s, input) in Self.inputs.enumerated() {
            for (k, (label, a)) in try Self.architectures(input).enumerated() {
                let seed = UInt64(200 + 10 * s + k)
                let net = try network(a, seed: seed)
                let (builder, bytes) = try blob(net, a)
                // Distinct per-channel statistics: the first op is the 1×1 depthwise normalisation
                // with weight 1/std[c] and bias −mean[c]/std[c]; one shared value: no such op.
                let first = builder.ops[0]
                let perChannel = Set(input.mean).count > 1 || Set(input.std).count > 1
                if perChannel {
                    XCTAssertEqual(first.opcode, .depthwiseConv2d, label)
                    XCTAssertEqual(builder.tensors[first.inputs[1]].shape, [1, 1, input.channels], label)
                    let w = floats(builder.tensors[first.inputs[1]].data), b = floats(builder.tensors[first.inputs[2]].data)
                    for c in 0..<input.channels {
                        XCTAssertEqual(w[c], 1 / input.std[c], accuracy: 1e-6, label)
                        XCTAssertEqual(b[c], -input.mean[c] / input.std[c], accuracy: 1e-6, label)
                    }
                } else {
                    let isNormalisation = first.opcode == .depthwiseConv2d && builder.tensors[first.inputs[1]].shape == [1, 1, input.channels]
                    XCTAssertFalse(isNormalisation, "\(label): a normalisation op for one shared mean/std")
                }
                try assertBlobMatchesTrainer(net, a, bytes, seed: seed &+ 1, label: label)
                checked += 1
            }
        }
        XCTAssertEqual(checked, 15)
    }

    // MARK: (c) the cost model is the compiled blob's parameter count and MACs

    func testCostModelEqualsTheCompiledBlobsParamsAndMACs() throws {
        for (s, input) in Self.inputs.enumerated() {
            for (k, (label, a)) in try Self.architectures(input).enumerated() {
                let seed = UInt64(300 + 10 * s + k)
                let net = try network(a, seed: seed)
                let (params, macs) = try blobCosts(try blob(net, a).bytes)
                let space = try pruningSpace(for: a)
                XCTAssertEqual(space.fullCost(.params), Double(params), "\(label): params")
                XCTAssertEqual(space.fullCost(.macs), Double(macs), "\(label): MACs")
                XCTAssertEqual(space.cost(.params, kept: space.groups.map(\.size)), Double(params), label)
            }
        }
    }

    /// A network extracted from a randomly masked supernet: its blob's params and MACs are the
    /// supernet's cost model at the kept counts, and its blob computes its trainer forward.
    func testCostModelOfAPrunedNetworkEqualsItsCompiledBlob() throws {
        for (s, input) in Self.inputs.enumerated() {
            for (k, (label, a)) in try Self.architectures(input).enumerated() {
                let seed = UInt64(400 + 10 * s + k)
                let supernet = try GatedSupernet(network: try network(a, seed: seed), architecture: a)
                let space = supernet.pruningSpace
                var rng = SprigRNG(seed: seed &+ 11)
                var keep = (0..<space.unitCount).map { _ in rng.nextFloat() < 0.5 }
                for (g, start) in space.offsets.enumerated() { keep[start + rng.int(below: space.groups[g].size)] = true }
                let counts = space.offsets.enumerated().map { g, start in
                    keep[start..<(start + space.groups[g].size)].filter { $0 }.count
                }
                XCTAssertLessThan(counts.reduce(0, +), space.unitCount, "\(label): nothing pruned")
                let (small, smaller) = try supernet.extract(keep: keep)
                let bytes = try blob(small, smaller).bytes
                let (params, macs) = try blobCosts(bytes)
                XCTAssertEqual(space.cost(.params, kept: counts), Double(params), "pruned \(label) \(counts): params")
                XCTAssertEqual(space.cost(.macs, kept: counts), Double(macs), "pruned \(label) \(counts): MACs")
                let own = try pruningSpace(for: smaller)
                XCTAssertEqual(own.fullCost(.params), Double(params), "pruned \(label): its own space's params")
                XCTAssertEqual(own.fullCost(.macs), Double(macs), "pruned \(label): its own space's MACs")
                try assertBlobMatchesTrainer(small, smaller, bytes, seed: seed &+ 2, label: "pruned \(label)", count: 2)
            }
        }
    }

    /// The cost model's count on a tiny description, by hand: 4×4×2 input (distinct statistics),
    /// conv 3×3 → 3 (bias) → depthwise 3×3 /2 → GAP → head 2.
    ///   normalize: 2·(1 + 1) = 4 params, 16·2 = 32 MACs
    ///   conv:      3·3·2·3 + 3 = 57 params, 16·3·18 = 864 MACs
    ///   depthwise: 3·3·3 + 3 = 30 params, 4·3·9 = 108 MACs (2×2 output)
    ///   head:      3·2 + 2 = 8 params, 6 MACs
    func testCostModelOfATinyDescriptionByHand() throws {
        let input = InputSpec(height: 4, width: 4, channels: 2, mean: [0.4, 0.5], std: [0.2, 0.3])
        let a = Architecture(preset: nil, input: input,
                             layers: [.conv(ConvSpec(filters: 3, bias: true)), .depthwise(DepthwiseSpec(stride: 2)), .globalAveragePool],
                             classes: 2, sourceClasses: [0, 1])
        let space = try pruningSpace(for: a)
        XCTAssertEqual(space.fullCost(.params), 4 + 57 + 30 + 8)
        XCTAssertEqual(space.fullCost(.macs), 32 + 864 + 108 + 6)
        let net = try network(a, seed: 5)
        let (params, macs) = try blobCosts(try blob(net, a).bytes)
        XCTAssertEqual(params, 99)
        XCTAssertEqual(macs, 1010)
    }
}
