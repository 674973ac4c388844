// The search on a planted problem: a gated linear classifier over 16
// features of which only features 0, 1 and 2 carry the label. With a budget
// that affords exactly three units, DAP must keep exactly those three.

import SprigPrune
import SprigTestSupport
import SprigTrain
import XCTest

/// x [N][16] → gate z [N][16] → Dense 16→2. The gated inputs are its features
/// (the classifier's input), for the pseudo-target tests of TransferSearchTests.
final class PlantedNetwork: FeatureGatedNetwork {
    let gate = Gate()
    let dense: Dense
    let pruningSpace = PruningSpace(
        groups: [.init(name: "features", size: 16)],
        layers: [.init(name: "stem", input: .fixed(16), output: .group(0)),
                 .init(name: "fc", input: .group(0), output: .fixed(2))])

    init(seed: UInt64) {
        var rng = SprigRNG(seed: seed)
        dense = Dense(inputDimensions: 16, outputDimensions: 2, rng: &rng)
    }

    var parameters: [Parameter] { dense.parameters }

    func forward(_ x: Tensor, gates: Tensor, training: Bool) -> Tensor {
        dense.forward(gate.forward(x, gate: gates), training: training)
    }

    func backward(_ dLogits: Tensor) -> Tensor {
        gate.gradients(dense.backward(dLogits)).gate
    }

    func forwardFeatures(_ x: Tensor, gates: Tensor, training: Bool) -> Tensor { gate.forward(x, gate: gates) }

    func backwardFeatures(_ dFeatures: Tensor) -> Tensor { gate.gradients(dFeatures).gate }
}

/// `n` samples of the planted problem: 16 normal features, label 1 when features 0 + 1 + 2 > 0.
func plantedBatch(_ n: Int, _ rng: inout SprigRNG) -> (Tensor, [Int]) {
    var x = Tensor(zeros: [n, 16])
    var y = [Int](repeating: 0, count: n)
    for s in 0..<n {
        for f in 0..<16 { x.storage[s * 16 + f] = rng.normal() }
        y[s] = x.storage[s * 16] + x.storage[s * 16 + 1] + x.storage[s * 16 + 2] > 0 ? 1 : 0
    }
    return (x, y)
}

/// The planted search of `seed`: its network, the budget that affords exactly three units
/// (stem 16·3 + 3, fc 3·2 + 2), and 600 steps at weight learning rate 0.1.
func plantedSearch(seed: UInt64) -> (network: PlantedNetwork, budget: Budget, config: DAPConfig) {
    let network = PlantedNetwork(seed: seed)
    let budget = Budget(kind: .params, fraction: Double(16 * 3 + 3 + 3 * 2 + 2) / network.pruningSpace.fullCost(.params))
    var config = DAPConfig()
    config.steps = 600
    config.weightLearningRate = 0.1
    config.seed = seed
    return (network, budget, config)
}

final class DAPSearchTests: XCTestCase {
    func batch(_ n: Int, _ rng: inout SprigRNG) -> (Tensor, [Int]) { plantedBatch(n, &rng) }

    func testPlantedUnitsAreExactlyTheOnesKept() throws {
        for seed: UInt64 in [1, 2, 3] {
            // Exactly three units fit.
            let (network, budget, config) = plantedSearch(seed: seed)
            let search = DAPSearch(network: network, budget: budget, config: config)
            var rng = SprigRNG(seed: 100 + seed)
            var last = (loss: 0.0, penalty: 0.0, cost: 1.0)
            for _ in 0..<config.steps {
                let (xA, yA) = batch(64, &rng), (xB, yB) = batch(64, &rng)
                last = search.step(xA: xA, yA: yA, xB: xB, yB: yB)
            }
            let keep = try search.select()
            XCTAssertEqual(keep.indices.filter { keep[$0] }, [0, 1, 2], "seed \(seed): kept \(keep.indices.filter { keep[$0] })")
            XCTAssertLessThan(last.cost, budget.fraction * 1.05, "seed \(seed): the search ended over budget")
            let p = search.probabilities
            XCTAssertGreaterThan(p[0...2].min()!, p[3...].max()!, "seed \(seed): a noise unit outranks a signal unit")
        }
    }

    /// Without the budget pressure (λ = 0) nothing is pruned: every probability stays high.
    func testNoPenaltyKeepsProbabilitiesHigh() {
        let network = PlantedNetwork(seed: 9)
        var config = DAPConfig()
        config.steps = 200
        config.lambda = 0
        let search = DAPSearch(network: network, budget: Budget(kind: .params, fraction: 0.1), config: config)
        var rng = SprigRNG(seed: 5)
        for _ in 0..<200 {
            let (xA, yA) = batch(32, &rng), (xB, yB) = batch(32, &rng)
            search.step(xA: xA, yA: yA, xB: xB, yB: yB)
        }
        XCTAssertGreaterThan(search.costFraction, 0.5)
    }

    /// With a budget ramp the expected cost after every step is at most the cubic schedule
    /// b + (1 − b)(1 − s/n)³, computed here by hand, and the ramp does not cost the planted answer.
    func testBudgetRampFollowsTheCubicScheduleAndKeepsThePlantedUnits() throws {
        var (network, budget, config) = plantedSearch(seed: 4)
        let b = budget.fraction
        config.budgetRamp = 0.5
        let search = DAPSearch(network: network, budget: budget, config: config)
        var rng = SprigRNG(seed: 104)
        let rampSteps = 300.0
        for s in 1...config.steps {
            let (xA, yA) = batch(64, &rng), (xB, yB) = batch(64, &rng)
            search.step(xA: xA, yA: yA, xB: xB, yB: yB)
            // After step s the projection has held the cost to the schedule at s.
            let left = max(0, 1 - Double(s) / rampSteps)
            let schedule = b + (1 - b) * left * left * left
            XCTAssertLessThanOrEqual(search.costFraction, schedule + 1e-9, "step \(s)")
            if s == 1 { XCTAssertGreaterThan(search.costFraction, 0.9, "the first step already cut the network") }
        }
        let keep = try search.select()
        XCTAssertEqual(keep.indices.filter { keep[$0] }, [0, 1, 2])
    }
}
