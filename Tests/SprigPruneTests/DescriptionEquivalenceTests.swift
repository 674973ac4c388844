// Extraction against the masked supernet, for every preset and a hand-written
// description, at three input shapes (28×28×1, 32×32×3 with per-channel
// statistics, 8×8×1). The oracle is the supernet itself with hard 0/1 gates:
// a dropped unit is zero wherever it is read, so the physically smaller network
// `extract(keep:)` returns must compute the same logits in eval mode.
//
// The compiled-blob side of the same descriptions (f32 blob = trainer, cost model =
// blob's parameter count and MACs) is in Tests/SprigTrainTests/CompiledDescriptionTests.swift,
// since this target does not link SprigCompile.

import SprigPrune
import SprigTestSupport
import SprigTrain
import XCTest

/// The descriptions and shapes the equivalence tests walk.
enum DescriptionCases {
    static let handLayers = SharedDescriptions.handLayers
    static let inputs = SharedDescriptions.inputs
    static let classes = SharedDescriptions.classes
    static func architectures(_ input: InputSpec) throws -> [(label: String, architecture: Architecture)] {
        try SharedDescriptions.architectures(input)
    }

    /// Redraws every vector (biases, BatchNorm γ and β, running means) and every running
    /// variance, so that BatchNorm and biases matter in eval mode.
    static func randomizeVectors(_ network: Sequential, seed: UInt64) {
        var rng = SprigRNG(seed: seed)
        for entry in namedTensors(network) where entry.get().rank == 1 {
            var t = entry.get()
            for i in t.storage.indices {
                if entry.name.hasSuffix("running_var") {
                    t.storage[i] = 0.3 + 1.5 * rng.nextFloat()
                } else if entry.name.hasSuffix(".weight") {  // BatchNorm γ (only a BN has a rank-1 weight)
                    t.storage[i] = 0.5 + rng.nextFloat()
                } else {
                    t.storage[i] = 0.4 * rng.normal()
                }
            }
            entry.set(t)
        }
    }
}

final class DescriptionEquivalenceTests: XCTestCase {
    /// Random flags keeping about half of each group, and at least one unit of every group.
    func randomKeep(_ space: PruningSpace, seed: UInt64) -> [Bool] {
        var rng = SprigRNG(seed: seed)
        var keep = (0..<space.unitCount).map { _ in rng.nextFloat() < 0.5 }
        for (g, start) in space.offsets.enumerated() { keep[start + rng.int(below: space.groups[g].size)] = true }
        return keep
    }

    func testExtractedNetworkEqualsTheMaskedSupernetForEveryDescriptionAndShape() throws {
        var checked = 0
        for (s, input) in DescriptionCases.inputs.enumerated() {
            for (k, (label, a)) in try DescriptionCases.architectures(input).enumerated() {
                let seed = UInt64(100 * s + 10 * k + 1)
                // Every combination here fits its input (checked by hand: the smallest, 8×8, ends
                // cnn at 1×1, resnet and mobilenet at 2×2, the hand-written one at 1×1).
                let network = try buildNetwork(a, seed: seed)
                DescriptionCases.randomizeVectors(network, seed: seed &+ 7)
                let supernet = try GatedSupernet(network: network, architecture: a)
                let space = supernet.pruningSpace
                let keep = randomKeep(space, seed: seed &+ 3)
                XCTAssertTrue(keep.contains(false), "\(label): the mask prunes nothing")
                var rng = SprigRNG(seed: seed &+ 5)
                let n = 3
                let x = Tensor(shape: [n] + input.shape, storage: (0..<(n * input.shape.reduce(1, *))).map { _ in rng.normal() })
                let mask = Tensor(shape: [keep.count], storage: keep.map { $0 ? 1 : 0 })
                let masked = supernet.forward(x, gates: mask, training: false)
                let (small, smaller) = try supernet.extract(keep: keep)
                // The kept counts per group, computed from the flags directly.
                let counts = space.offsets.enumerated().map { g, start in
                    keep[start..<(start + space.groups[g].size)].filter { $0 }.count
                }
                XCTAssertEqual(try smaller.plan().widths, counts, label)
                XCTAssertEqual(smaller.input, a.input, label)
                let extracted = small.forward(x, training: false)
                XCTAssertEqual(masked.shape, [n, DescriptionCases.classes], label)
                XCTAssertEqual(extracted.shape, masked.shape, label)
                XCTAssertGreaterThan(masked.storage.map(abs).max() ?? 0, 0, "\(label): all-zero logits test nothing")
                let worst = zip(masked.storage, extracted.storage).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertLessThan(worst, 1e-5, "\(label) kept \(counts): max |masked − extracted| = \(worst)")
                checked += 1
            }
        }
        XCTAssertEqual(checked, 15)
    }

    /// The one combination that cannot fit: cnn's three 2×2 max pools need 8×8; on 4×4 the
    /// third pool (layers[11]) gets a 1×1 map. The walk, the build and the supernet all refuse it.
    func testADescriptionThatDoesNotFitItsInputThrowsANetworkSpecError() throws {
        let input = InputSpec(height: 4, width: 4, channels: 1, mean: [0.5], std: [0.3])
        let a = try Architecture(family: "cnn", classes: 3, width: 0.25, sourceClasses: [0, 1, 2], input: input)
        XCTAssertThrowsError(try a.plan()) { error in
            guard let e = error as? NetworkSpecError else { return XCTFail("not a NetworkSpecError: \(error)") }
            XCTAssertEqual(e.place, "layers[11] (max_pool)", "\(e)")
            XCTAssertTrue(e.detail.contains("larger than its input 1×1"), "\(e)")
        }
        XCTAssertThrowsError(try buildNetwork(a, seed: 1)) { XCTAssertTrue($0 is NetworkSpecError, "\($0)") }
        XCTAssertThrowsError(try pruningSpace(for: a)) { XCTAssertTrue($0 is NetworkSpecError, "\($0)") }
    }
}
