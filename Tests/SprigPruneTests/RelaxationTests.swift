// DAP's building blocks against independent references: central finite
// differences for C(p), for the penalty and for the gate path; the limit of
// the temperatures; hand-counted costs; the selection rule on a planted example.

import Foundation
import SprigPrune
import SprigTestSupport
import SprigTrain
import XCTest

final class RelaxationTests: XCTestCase {
    /// A small CNN-like space: conv 1→A (3×3, 28×28), conv A→B (3×3, 14×14), dense B→10,
    /// plus a residual-tied group C read by two layers.
    func space(bytes: Int = 1) -> PruningSpace {
        PruningSpace(
            groups: [.init(name: "a", size: 4), .init(name: "b", size: 6), .init(name: "c", size: 3)],
            layers: [
                .init(name: "conv1", input: .fixed(1), output: .group(0), kernelArea: 9, inputPixels: 784, outputPixels: 784),
                .init(name: "conv2", input: .group(0), output: .group(1), kernelArea: 9, inputPixels: 196, outputPixels: 196),
                .init(name: "dw", input: .group(1), output: .group(1), kernelArea: 9, inputPixels: 196, outputPixels: 49,
                      depthwise: true),
                .init(name: "proj", input: .group(1), output: .group(2), kernelArea: 1, inputPixels: 49, outputPixels: 49,
                      bias: false),
                .init(name: "fc", input: .group(2), output: .fixed(10)),
            ],
            bytesPerElement: bytes)
    }

    /// Full-network counts by hand: params and MACs of each layer.
    func testFullCostsByHand() {
        let s = space()
        let params = (1 * 4 * 9 + 4) + (4 * 6 * 9 + 6) + (6 * (9 + 1)) + (6 * 3 * 1) + (3 * 10 + 10)
        XCTAssertEqual(s.fullCost(.params), Double(params))
        let macs = 1 * 4 * 9 * 784 + 4 * 6 * 9 * 196 + 6 * 9 * 49 + 6 * 3 * 49 + 3 * 10
        XCTAssertEqual(s.fullCost(.macs), Double(macs))
        // Arena: weights at 1 byte, plus the peak live activations: conv1's 1·784 + 4·784.
        XCTAssertEqual(s.fullCost(.arena), Double(params + 784 + 4 * 784))
        XCTAssertEqual(s.cost(.params, kept: [2, 6, 3]), Double((1 * 2 * 9 + 2) + (2 * 6 * 9 + 6) + 60 + 18 + 40))
    }

    func testCostGradientMatchesFiniteDifferences() {
        let s = space(bytes: 4)
        var rng = SeededRNG(seed: 41)
        for kind in CostKind.allCases {
            let p = (0..<s.unitCount).map { _ in Double.random(in: 0.1...0.9, using: &rng) }
            let (_, gradient) = s.cost(kind, probabilities: p)
            for u in 0..<s.unitCount {
                let h = 1e-5
                var a = p, b = p
                a[u] += h
                b[u] -= h
                let numeric = (s.cost(kind, probabilities: a).value - s.cost(kind, probabilities: b).value) / (2 * h)
                XCTAssertEqual(gradient[u], numeric, accuracy: 1e-6 * max(1, abs(numeric)), "\(kind) unit \(u)")
            }
        }
    }

    func testPenaltyByHandAndByFiniteDifference() {
        let (v, d) = budgetPenalty(cost: 12, fullCost: 100, budget: 0.10, lambda: 100)
        XCTAssertEqual(v, 100 * 0.02 * 0.02, accuracy: 1e-12)
        let h = 1e-6
        let numeric = (budgetPenalty(cost: 12 + h, fullCost: 100, budget: 0.1, lambda: 100).value
            - budgetPenalty(cost: 12 - h, fullCost: 100, budget: 0.1, lambda: 100).value) / (2 * h)
        XCTAssertEqual(d, numeric, accuracy: 1e-8)
        XCTAssertEqual(budgetPenalty(cost: 9, fullCost: 100, budget: 0.1, lambda: 100).value, 0)
    }

    func testGateDerivativesMatchFiniteDifferences() {
        let relaxation = GateRelaxation(logits: [-2, -0.3, 0, 0.7, 3])
        let noise = [0.4, -1.1, 0.2, 0.9, -0.5]
        for (t1, t2) in [(1.0, 1.0), (0.5, 0.2), (0.05, 0.1)] {
            let (_, dz) = relaxation.gates(t1: t1, t2: t2, noise: noise)
            let dp = relaxation.probabilityDerivatives(t1: t1)
            for u in relaxation.logits.indices {
                let h = 1e-6 * max(t1 * t2, 1e-3)
                var a = relaxation, b = relaxation
                a.logits[u] += h
                b.logits[u] -= h
                let numericZ = (a.gates(t1: t1, t2: t2, noise: noise).gates[u] - b.gates(t1: t1, t2: t2, noise: noise).gates[u]) / (2 * h)
                let numericP = (a.probabilities(t1: t1)[u] - b.probabilities(t1: t1)[u]) / (2 * h)
                XCTAssertEqual(dz[u], numericZ, accuracy: 1e-5 * max(1, abs(numericZ)), "z, T1 \(t1) T2 \(t2) unit \(u)")
                XCTAssertEqual(dp[u], numericP, accuracy: 1e-5 * max(1, abs(numericP)), "p, T1 \(t1) unit \(u)")
            }
        }
    }

    /// As both temperatures go to zero the gates become the hard decision [θ/T1 + ℓ > 0].
    func testGatesBecomeBinaryAsTemperaturesVanish() {
        var generator = SeededRNG(seed: 43)
        let logits = (0..<200).map { _ in Double.random(in: -3...3, using: &generator) }
        let relaxation = GateRelaxation(logits: logits)
        let noise = GateRelaxation.logisticNoise(count: logits.count) { Double.random(in: 0..<1, using: &generator) }
        var previousSoft = Int.max
        for (t1, t2) in [(1.0, 1.0), (0.1, 0.1), (0.01, 0.01), (1e-4, 1e-4)] {
            let z = relaxation.gates(t1: t1, t2: t2, noise: noise).gates
            let soft = z.filter { $0 > 1e-3 && $0 < 1 - 1e-3 }.count
            XCTAssertLessThanOrEqual(soft, previousSoft)
            previousSoft = soft
            if t1 == 1e-4 {
                XCTAssertEqual(soft, 0, "gates still soft at T = 1e-4")
                for u in logits.indices where abs(logits[u] / t1 + noise[u]) > 1 {
                    XCTAssertEqual(z[u] > 0.5, logits[u] / t1 + noise[u] > 0)
                }
            }
        }
    }

    func testGeometricSchedule() {
        let s = GeometricSchedule(start: 1, end: 0.01, steps: 100)
        XCTAssertEqual(s.value(at: 0), 1, accuracy: 1e-12)
        XCTAssertEqual(s.value(at: 50), 0.1, accuracy: 1e-12)
        XCTAssertEqual(s.value(at: 100), 0.01, accuracy: 1e-12)
        XCTAssertEqual(s.value(at: 500), 0.01, accuracy: 1e-12)
    }

    func testBudgetParsing() throws {
        XCTAssertEqual(try Budget(parsing: "10%"), Budget(kind: .params, fraction: 0.1))
        XCTAssertEqual(try Budget(parsing: "macs:25%"), Budget(kind: .macs, fraction: 0.25))
        XCTAssertEqual(try Budget(parsing: "params:24000").absolute, 24000)
        XCTAssertEqual(try Budget(parsing: "arena:64KB").absolute, 65536)
        for bad in ["", "0%", "150%", "flops:10", "params:-3", "arena:xKB"] {
            XCTAssertThrowsError(try Budget(parsing: bad), bad)
        }
    }

    /// Planted: the probabilities rank units within each group; the selection keeps
    /// the top units of each group, fits the budget, and lands close to it.
    func testSelectionKeepsTheMostProbableUnitsWithinBudget() throws {
        let s = space()
        var generator = SeededRNG(seed: 43)
        for fraction in [0.2, 0.35, 0.5, 0.8] {
            let p = (0..<s.unitCount).map { _ in Double.random(in: 0...1, using: &generator) }
            let keep = try selectUnits(s, probabilities: p, budget: Budget(kind: .params, fraction: fraction))
            let cost = s.cost(.params, probabilities: keep.map { $0 ? 1 : 0 }).value
            XCTAssertLessThanOrEqual(cost, fraction * s.fullCost(.params))
            for (g, offset) in s.offsets.enumerated() {
                let units = offset..<(offset + s.groups[g].size)
                XCTAssertGreaterThanOrEqual(units.filter { keep[$0] }.count, 1, "group \(g) emptied")
                let keptMin = units.filter { keep[$0] }.map { p[$0] }.min() ?? 1
                let droppedMax = units.filter { !keep[$0] }.map { p[$0] }.max() ?? 0
                XCTAssertGreaterThanOrEqual(keptMin, droppedMax, "group \(g) dropped a more probable unit")
            }
            // No single dropped unit could be added back within the budget.
            for u in keep.indices where !keep[u] {
                var more = keep
                more[u] = true
                XCTAssertGreaterThan(s.cost(.params, probabilities: more.map { $0 ? 1 : 0 }).value, fraction * s.fullCost(.params))
            }
        }
    }

    func testImpossibleBudgetIsAnError() {
        let s = space()
        let minimum = s.cost(.params, kept: [1, 1, 1])
        XCTAssertThrowsError(try selectUnits(s, probabilities: [Double](repeating: 0.5, count: s.unitCount),
                                             budget: Budget(kind: .params, fraction: (minimum - 1) / s.fullCost(.params)))) {
            guard case PruneError.impossibleBudget = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue("\($0)".contains("smallest valid network"))
        }
    }
}

final class NetworkSpaceTests: XCTestCase {
    /// The cost model's full params equal the compiled network's parameters (BN folded into biases),
    /// counted independently from the trainer's layers.
    func testFullParamsMatchTheNetworks() throws {
        for family in Architecture.presets {
            let a = try Architecture(family: family, classes: 5, width: 0.5, sourceClasses: [0, 1, 2, 3, 4])
            let network = try buildNetwork(a, seed: 1)
            // Trainer parameters, with each BatchNorm (γ, β) folded into one bias per channel.
            var folded = 0
            func count(_ layers: [any Layer]) {
                for layer in layers {
                    if let s = layer as? Sequential { count(s.layers); continue }
                    if let r = layer as? Residual { count(r.body.layers); count(r.shortcut.layers); continue }
                    if let bn = layer as? BatchNorm2D { folded += bn.channels; continue }
                    folded += layer.parameters.reduce(0) { $0 + $1.value.count }
                }
            }
            count(network.layers)
            let space = try pruningSpace(for: a)
            XCTAssertEqual(space.fullCost(.params), Double(folded), family)
        }
    }
}
