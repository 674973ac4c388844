// The gated supernets and extraction, against independent references: the masked
// supernet (hard 0/1 gates) is the oracle for the extracted network; central
// differences are the oracle for dL/dz through every gate of a real network.

@testable import SprigPrune
import SprigTestSupport
import SprigTrain
import XCTest

final class SupernetTests: XCTestCase {
    /// A network of `family` with random weights and non-trivial BatchNorm statistics.
    func randomNetwork(_ family: String, width: Double, seed: UInt64) throws -> GatedSupernet {
        let a = try Architecture(family: family, classes: 5, width: width, sourceClasses: [0, 1, 2, 3, 4])
        let network = try buildNetwork(a, seed: seed)
        var rng = SprigRNG(seed: seed &+ 99)
        for entry in namedTensors(network) where entry.name.hasSuffix("running_var") || entry.name.hasSuffix("running_mean")
            || (entry.get().rank == 1) {
            var t = entry.get()
            for i in t.storage.indices {
                t.storage[i] = entry.name.hasSuffix("running_var") ? 0.5 + rng.nextFloat() : 0.3 * rng.normal()
            }
            entry.set(t)
        }
        return try GatedSupernet(network: network, architecture: a)
    }

    func randomInput(_ n: Int, seed: UInt64) -> Tensor {
        var rng = SprigRNG(seed: seed)
        return Tensor(shape: [n, 28, 28, 1], storage: (0..<(n * 784)).map { _ in rng.normal() })
    }

    /// Random flags with at least one unit kept per group.
    func randomKeep(_ space: PruningSpace, fraction: Double, seed: UInt64) -> [Bool] {
        var rng = SprigRNG(seed: seed)
        var keep = (0..<space.unitCount).map { _ in rng.nextDouble() < fraction }
        for start in space.offsets { keep[start] = true }
        return keep
    }

    func testExtractedNetworkEqualsTheMaskedSupernet() throws {
        for (family, width) in [("mlp", 0.125), ("cnn", 0.25), ("resnet", 0.5)] {
            let supernet = try randomNetwork(family, width: width, seed: 3)
            let keep = randomKeep(supernet.pruningSpace, fraction: 0.4, seed: 5)
            let x = randomInput(4, seed: 7)
            let mask = Tensor(shape: [keep.count], storage: keep.map { $0 ? 1 : 0 })
            let masked = supernet.forward(x, gates: mask, training: false)
            let (small, architecture) = try supernet.extract(keep: keep)
            XCTAssertEqual(architecture.widths, supernet.keptIndices(keep).map(\.count), family)
            XCTAssertLessThan(parameterCount(small), parameterCount(supernet.network), family)
            let extracted = small.forward(x, training: false)
            XCTAssertEqual(masked.shape, extracted.shape, family)
            let worst = zip(masked.storage, extracted.storage).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, 1e-5, "\(family): max |masked − extracted| = \(worst)")
            // The extracted network's parameter count is what the cost model predicts
            // (BatchNorm γ, β fold into one bias per channel in the model's count).
            let space = try pruningSpace(for: architecture)
            XCTAssertEqual(space.fullCost(.params), supernet.pruningSpace.cost(.params, kept: architecture.widths) , family)
            // And it survives a checkpoint round trip.
            let path = NSTemporaryDirectory() + "sprig-extract-\(family)-\(getpid()).safetensors"
            defer { try? FileManager.default.removeItem(atPath: path) }
            try saveCheckpoint(small, architecture: architecture, to: path)
            let reloaded = try loadCheckpoint(path: path)
            XCTAssertEqual(reloaded.network.forward(x, training: false), extracted, family)
        }
    }

    /// With all gates at 1 the gated supernet is the plain network.
    func testAllOnesGatesAreTheNetwork() throws {
        for family in Architecture.presets {
            let supernet = try randomNetwork(family, width: 0.25, seed: 11)
            let x = randomInput(2, seed: 12)
            let ones = Tensor(shape: [2, supernet.pruningSpace.unitCount], repeating: 1)
            XCTAssertEqual(supernet.forward(x, gates: ones, training: false), supernet.network.forward(x, training: false), family)
        }
    }

    /// dL/dz from `backward` against central differences, per sample, through every gate
    /// (including a resnet's tied group, gated in two places).
    func testGateGradientMatchesFiniteDifferences() throws {
        for family in Architecture.presets {
            let supernet = try randomNetwork(family, width: 0.125, seed: 21)
            let units = supernet.pruningSpace.unitCount
            let x = randomInput(2, seed: 22)
            var rng = SprigRNG(seed: 23)
            let z0 = (0..<(2 * units)).map { _ in 0.2 + 0.6 * rng.nextFloat() }
            let r = (0..<10).map { _ in Double(rng.normal()) }
            func loss(_ z: [Float]) -> Double {
                let y = supernet.forward(x, gates: Tensor(shape: [2, units], storage: z), training: false)
                return zip(y.storage, r).reduce(0.0) { $0 + Double($1.0) * $1.1 }
            }
            _ = supernet.forward(x, gates: Tensor(shape: [2, units], storage: z0), training: false)
            let dOut = Tensor(shape: [2, 5], storage: r.map(Float.init))
            let analytic = supernet.backward(dOut).storage
            let numeric = FiniteDifference.gradient(at: z0, epsilon: 1e-2, loss: loss)
            let report = FiniteDifference.compare("\(family) dL/dz", analytic: analytic, numeric: numeric,
                                                  tolerance: GradientTolerance(absolute: 2e-3, relative: 2e-2),
                                                  skip: { numeric.oneSidedGap[$0] > 1e-2 })
            XCTAssertTrue(report.passed, report.description)
            XCTAssertGreaterThan(report.checked, units, family)
        }
    }

    /// Slicing keeps the chosen coordinates in order, along any axes.
    func testSliceAgainstHandComputedValues() {
        let t = Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(slice(t, axes: [1: [0, 2]]).storage, [1, 3, 4, 6])
        XCTAssertEqual(slice(t, axes: [0: [1], 1: [2, 1]]).storage, [6, 5])
        XCTAssertEqual(slice(t, axes: [0: nil]).storage, t.storage)
    }
}

/// Each baseline's selection rule on a hand-made example.
final class BaselineTests: XCTestCase {
    /// Two groups of 4 units; the cost counts params of 1 → g0 → g1 → 1 (no bias): n0 + n0·n1 + n1.
    let space = PruningSpace(
        groups: [.init(name: "a", size: 4), .init(name: "b", size: 4)],
        layers: [.init(name: "l1", input: .fixed(1), output: .group(0), bias: false),
                 .init(name: "l2", input: .group(0), output: .group(1), bias: false),
                 .init(name: "l3", input: .group(1), output: .fixed(1), bias: false)])

    func testUniformKeepsTheSameFractionOfTheFirstUnits() throws {
        // Full: 4 + 16 + 4 = 24. Two per group: 2 + 4 + 2 = 8 ≤ 10; three: 3 + 9 + 3 = 15 > 10.
        let keep = try selectUniform(space, budget: Budget(kind: .params, absolute: 10))
        XCTAssertEqual(keep, [true, true, false, false, true, true, false, false])
    }

    func testL1KeepsTheLargestNormsAtUniformWidths() throws {
        let norms: [Double] = [0.1, 5, 0.2, 3, 9, 0.5, 8, 0.1]
        let keep = try selectL1(space, norms: norms, budget: Budget(kind: .params, absolute: 10))
        XCTAssertEqual(keep, [false, true, false, true, true, false, true, false])
    }

    func testSlimIsAGlobalThresholdOnTheScales() throws {
        // The four largest |γ| are all in group b (7, 6, 5, 4); a global threshold keeps them while
        // group a keeps its largest (1): cost 1 + 4 + 4 = 9 ≤ 10. Adding any other unit costs more.
        let scales: [Double] = [1, 0.5, -0.2, 0.1, 7, -6, 5, 4]
        let keep = try selectSlim(space, scales: scales, budget: Budget(kind: .params, absolute: 10))
        XCTAssertEqual(keep, [true, false, false, false, true, true, true, true])
    }

    func testRandomIsSeededAndWithinBudget() throws {
        let budget = Budget(kind: .params, absolute: 12)
        let a = try selectRandom(space, budget: budget, seed: 4), b = try selectRandom(space, budget: budget, seed: 4)
        XCTAssertEqual(a, b)
        let kept = [a[0..<4].filter { $0 }.count, a[4..<8].filter { $0 }.count]
        XCTAssertLessThanOrEqual(space.cost(.params, kept: kept), 12)
        let others = try (5..<25).map { try selectRandom(space, budget: budget, seed: UInt64($0)) }
        XCTAssertTrue(others.contains { $0 != a }, "twenty seeds all chose the same units")
    }

    func testFilterNormsAndBatchNormScalesReadTheRightTensors() throws {
        let a = try Architecture(family: "cnn", classes: 2, width: 0.0625, sourceClasses: [0, 1])
        let network = try buildNetwork(a, seed: 1)
        let supernet = try GatedSupernet(network: network, architecture: a)
        // conv1 is [3][3][1][2]: set unit 1's filter to all 2s, unit 0's to 1s: L1 norms 9 and 18.
        let conv1 = network.layers[0] as! Conv2D
        conv1.weight.value.storage = (0..<18).map { $0 % 2 == 0 ? 1 : 2 }
        let norms = supernet.filterNorms()
        XCTAssertEqual(Array(norms[0..<2]), [9, 18])
        let bn1 = network.layers[1] as! BatchNorm2D
        bn1.weight.value.storage = [-0.5, 0.25]
        XCTAssertEqual(Array(supernet.batchNormScales()![0..<2]), [0.5, 0.25])
        let mlp = try Architecture(family: "mlp", classes: 2, width: 0.01, sourceClasses: [0, 1])
        XCTAssertNil(try GatedSupernet(network: try buildNetwork(mlp, seed: 1), architecture: mlp).batchNormScales())
    }

    func testImpossibleBudgetIsAClearError() {
        XCTAssertThrowsError(try selectUniform(space, budget: Budget(kind: .params, absolute: 2))) { error in
            XCTAssertEqual(error as? PruneError, .impossibleBudget(kind: .params, target: 2, minimum: 3))
            XCTAssertTrue("\(error)".contains("smallest valid network"))
        }
    }
}
