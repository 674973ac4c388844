// The named networks (mlp, cnn, resnet) and pruned sub-networks of each,
// compiled as `sprig compile` does, against the trainer:
//   - the f32 blob, run by SprigRuntime's interpreter, computes the trainer's
//     eval-mode forward (BatchNorm folded with non-trivial running statistics);
//   - the q8 blob of a pruned network validates, and one real invoke writes
//     exactly the arena bytes its plan states (no more: the arena sits flush
//     against a PROT_NONE page; no less: the top byte of the plan is written).
// Small width multipliers keep the debug-build run short.

import SprigCompile
import SprigPrune
import SprigRuntime
import SprigWriter
import SprigTestSupport
import SprigTrain
import XCTest

final class CompiledNetworkTests: XCTestCase {
    /// Width multiplier per family: small, but every group keeps several units to prune.
    let widths: [(family: String, width: Double)] = [("mlp", 0.25), ("cnn", 0.25), ("resnet", 0.25)]

    /// `family` at `width` with He weights from `seed`, then every vector (biases, BatchNorm γ and β,
    /// running means) and every running variance redrawn, so that folding BatchNorm matters.
    func network(_ family: String, width: Double, seed: UInt64) throws -> (Sequential, Architecture) {
        let architecture = try Architecture(family: family, classes: 5, width: width, sourceClasses: [0, 1, 2, 3, 4])
        let network = try buildNetwork(architecture, seed: seed)
        var rng = SprigRNG(seed: seed ^ 0x5EED)
        for entry in namedTensors(network) where entry.get().rank == 1 {
            var t = entry.get()
            let variance = entry.name.hasSuffix("running_var"), scale = entry.name.hasSuffix(".weight")
            for i in t.storage.indices {
                if variance {
                    t.storage[i] = 0.3 + 1.5 * rng.nextFloat()
                } else if scale {
                    t.storage[i] = 0.5 + rng.nextFloat()
                } else {
                    t.storage[i] = 0.4 * rng.normal()
                }
            }
            entry.set(t)
        }
        return (network, architecture)
    }

    /// A pruned sub-network of `family`: random keep flags (about half of each group, at least one unit
    /// per group) sliced out of a randomised supernet by `GatedSupernet.extract(keep:)`.
    func pruned(_ family: String, width: Double, seed: UInt64) throws -> (Sequential, Architecture) {
        let (full, architecture) = try network(family, width: width, seed: seed)
        let supernet = try GatedSupernet(network: full, architecture: architecture)
        var rng = SprigRNG(seed: seed &+ 17)
        var keep = (0..<supernet.pruningSpace.unitCount).map { _ in rng.nextFloat() < 0.5 }
        for (g, start) in supernet.pruningSpace.offsets.enumerated() {
            keep[start + rng.int(below: supernet.pruningSpace.groups[g].size)] = true
        }
        let (small, smaller) = try supernet.extract(keep: keep)
        XCTAssertEqual(smaller.widths, supernet.keptIndices(keep).map(\.count), family)
        XCTAssertLessThan(smaller.widths.reduce(0, +), supernet.pruningSpace.unitCount, "\(family): nothing was pruned")
        if family == "resnet" { XCTAssertEqual(smaller.widths.count, 6, "a pruned resnet has one width per unit group") }
        return (small, smaller)
    }

    /// The f32 network description `sprig compile` lowers a checkpoint to.
    func lower(_ network: Sequential, _ architecture: Architecture) throws -> BlobBuilder {
        try lowerNetwork(try loweringSteps(network), input: architecture.input, name: blobName(architecture))
    }

    func images(_ count: Int, seed: UInt64) -> [[UInt8]] {
        var rng = SprigRNG(seed: seed)
        return (0..<count).map { _ in (0..<784).map { _ in UInt8(rng.int(below: 256)) } }
    }

    // MARK: f32: the blob computes the trainer's function

    func testCompiledF32MatchesTheTrainerForNamedAndPrunedNetworks() throws {
        for (i, (family, width)) in widths.enumerated() {
            let seed = UInt64(40 + i)
            for (label, (net, architecture)) in [("\(family)", try network(family, width: width, seed: seed)),
                                                 ("pruned \(family)", try pruned(family, width: width, seed: seed))] {
                let blob = try lower(net, architecture).build()
                let inputs = images(4, seed: seed &+ 1)
                let result = try run(blob, inputs)
                let got = result.outputs
                XCTAssertEqual(result.used, result.planned, "\(label): an invoke wrote up to byte \(result.used) of a \(result.planned)-byte plan")
                // The trainer, fed the same normalisation the blob's input applies.
                let x = Tensor(shape: [inputs.count, 28, 28, 1],
                               storage: inputs.flatMap { $0.map { (Float($0) / 255 - architecture.input.mean[0]) / architecture.input.std[0] } })
                let want = net.forward(x, training: false)
                XCTAssertEqual(want.shape, [inputs.count, architecture.classes], label)
                for n in inputs.indices {
                    let row = Array(want.storage[(n * architecture.classes)..<((n + 1) * architecture.classes)])
                    XCTAssertEqual(got[n].count, row.count, label)
                    let scale = row.map { abs($0) }.max() ?? 0
                    XCTAssertGreaterThan(scale, 0, "\(label) image \(n): all-zero logits test nothing")
                    let diff = zip(got[n], row).map { abs($0 - $1) }.max() ?? .infinity
                    XCTAssertLessThan(diff / scale, 1e-5, "\(label) \(architecture.widths) image \(n): max |diff| \(diff), max |logit| \(scale)")
                }
            }
        }
    }

    // MARK: q8 of pruned networks: validates, and uses its arena plan exactly

    func testPrunedQ8BlobsValidateAndAnInvokeUsesExactlyTheirArenaPlan() throws {
        for (i, (family, width)) in widths.enumerated() {
            let (net, architecture) = try pruned(family, width: width, seed: UInt64(60 + i))
            let f32 = try lower(net, architecture)
            let calibration = images(16, seed: UInt64(70 + i))
            var q8 = try quantizeNetwork(f32, ranges: try calibrate(blob: try f32.build(), samples: calibration))
            try q8.planFineTuning(maxClasses: 10, maxShots: 20, method: .head)
            let blob = try q8.build()
            let result = try run(blob, images(3, seed: UInt64(80 + i)))
            let label = "pruned \(family) \(architecture.widths) q8"
            XCTAssertEqual(result.precision, "q8", label)
            XCTAssertGreaterThan(result.planned, 0, label)
            XCTAssertEqual(result.used, result.planned, "\(label): an invoke wrote up to byte \(result.used) of a \(result.planned)-byte plan")
            XCTAssertGreaterThan(result.finetuneBytes, result.planned, "\(label): the fine-tuning plan holds the inference arena")
            for out in result.outputs { XCTAssertTrue(out.allSatisfy(\.isFinite), label) }
        }
    }

    // MARK: Running a blob

    struct Run {
        var outputs: [[Float]]
        /// The highest arena byte any invoke wrote, plus one, rounded up to the planner's 16-byte alignment.
        var used: Int
        var planned: Int
        var finetuneBytes: Int
        var precision: String
    }

    /// Validates `blob` (`Model(bytes:)`), then runs every image in an arena of exactly the planned size
    /// placed flush against an inaccessible page. Each image runs twice, over arenas filled with two
    /// different bytes; an arena byte counts as written when it differs from the fill in either run.
    func run(_ blob: [UInt8], _ inputs: [[UInt8]]) throws -> Run {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: blob.count, alignment: 16)
        defer { bytes.deallocate() }
        bytes.copyBytes(from: blob)
        let model = try Model(bytes: UnsafeRawBufferPointer(bytes))
        let fence = GuardedBuffer<UInt8>(repeating: 0, count: model.arenaBytes, placement: .end)
        let arena = UnsafeMutableRawBufferPointer(start: fence.pointer, count: model.arenaBytes)
        let interpreter = try Interpreter(model: model, arena: arena)
        var outputs: [[Float]] = []
        var top = 0
        for image in inputs {
            for fill: UInt8 in [0x00, 0xA5] {
                arena.initializeMemory(as: UInt8.self, repeating: fill)
                try image.withUnsafeBytes { try interpreter.setInput(pixels: $0) }
                interpreter.invoke()
                if let last = arena.lastIndex(where: { $0 != fill }) { top = max(top, last + 1) }
            }
            outputs.append((0..<interpreter.outputCount).map { interpreter.output($0) })
        }
        let precision = model.metadata(key: "precision").map { String(decoding: $0, as: UTF8.self) } ?? ""
        return Run(outputs: outputs, used: (top + 15) / 16 * 16, planned: model.arenaBytes,
                   finetuneBytes: model.finetuneArenaBytes, precision: precision)
    }
}
