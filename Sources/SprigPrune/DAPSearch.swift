// The DAP search loop: alternate a weight step (split A, sampled gates) and
// an architecture step (split B, sampled gates, complexity penalty).
//
//   weights:  w ← w − lr_w · ∂L_task(w, z)/∂w                  z ~ relaxed Bernoulli(θ; T1, T2)
//   logits:   θ ← Adam(θ, ∂/∂θ [L_task(w, z) + λ·relu(C(p)/C_full − b)²])
//             ∂L/∂θ_u = Σ_n ∂L/∂z_nu · z_nu(1 − z_nu)/(T1·T2)  +  ∂P/∂C · ∂C/∂p_u · p_u(1 − p_u)/T1
//
// Gates are sampled per sample and per unit. T1 and T2 anneal geometrically
// over the search. The network is anything that takes gates and returns
// their gradient (`GatedNetwork`), so the supernets plug in unchanged.

import Foundation
import SprigTrain

/// A network whose prunable units are multiplied by gates.
public protocol GatedNetwork: AnyObject {
    /// Groups and layers, for the cost model; unit order = gate column order.
    var pruningSpace: PruningSpace { get }
    /// The weights the search trains on split A.
    var parameters: [Parameter] { get }
    /// Logits `[N][classes]` for inputs `x` with gates `[N][units]`.
    func forward(_ x: Tensor, gates: Tensor, training: Bool) -> Tensor
    /// From dL/dlogits: accumulates the weights' gradients and returns dL/dgates `[N][units]`.
    func backward(_ dLogits: Tensor) -> Tensor
}

/// Knobs of the search, with the defaults of docs/method.md.
public struct DAPConfig: Sendable {
    public var t1 = (start: 1.0, end: 0.05)
    public var t2 = (start: 1.0, end: 0.1)
    public var initialLogit = 3.0
    public var logitLearningRate = 0.05
    public var weightLearningRate: Float = 0.01
    public var lambda = 100.0
    public var steps = 1000
    public var seed: UInt64 = 1

    public init() {}
}

/// One DAP search over a network and a budget.
public final class DAPSearch {
    public let network: GatedNetwork
    public let config: DAPConfig
    public let budget: Budget
    public private(set) var relaxation: GateRelaxation
    public private(set) var step = 0
    let fullCost: Double
    let target: Double
    var rng: SprigRNG
    var adamM: [Double]
    var adamV: [Double]
    let loss = SoftmaxCrossEntropy()

    public init(network: GatedNetwork, budget: Budget, config: DAPConfig = DAPConfig()) {
        self.network = network
        self.config = config
        self.budget = budget
        let units = network.pruningSpace.unitCount
        relaxation = GateRelaxation(count: units, initialLogit: config.initialLogit)
        fullCost = network.pruningSpace.fullCost(budget.kind)
        target = budget.target(full: fullCost)
        rng = SprigRNG(seed: config.seed)
        adamM = [Double](repeating: 0, count: units)
        adamV = adamM
    }

    public var t1: Double { GeometricSchedule(start: config.t1.start, end: config.t1.end, steps: config.steps).value(at: step) }
    public var t2: Double { GeometricSchedule(start: config.t2.start, end: config.t2.end, steps: config.steps).value(at: step) }

    /// Inclusion probabilities at the current temperature.
    public var probabilities: [Double] { relaxation.probabilities(t1: t1) }

    /// Expected cost as a fraction of the full network's.
    public var costFraction: Double {
        network.pruningSpace.cost(budget.kind, probabilities: probabilities).value / fullCost
    }

    /// Samples gates `[N][units]` and their derivatives with respect to θ.
    func sampleGates(batch n: Int) -> (Tensor, [Double]) {
        let units = relaxation.logits.count
        var z = Tensor(zeros: [n, units])
        var dz = [Double](repeating: 0, count: n * units)
        for s in 0..<n {
            let noise = GateRelaxation.logisticNoise(count: units) { self.rng.nextDouble() }
            let (g, d) = relaxation.gates(t1: t1, t2: t2, noise: noise)
            for u in 0..<units {
                z.storage[s * units + u] = Float(g[u])
                dz[s * units + u] = d[u]
            }
        }
        return (z, dz)
    }

    /// One weight step on (xA, yA), then one architecture step on (xB, yB).
    /// Returns the task loss on B, the penalty, and the expected cost fraction.
    @discardableResult
    public func step(xA: Tensor, yA: [Int], xB: Tensor, yB: [Int]) -> (loss: Double, penalty: Double, cost: Double) {
        // Weights, split A.
        let (zA, _) = sampleGates(batch: yA.count)
        for p in network.parameters { p.zeroGrad() }
        _ = loss.forward(network.forward(xA, gates: zA, training: true), labels: yA)
        _ = network.backward(loss.backward())
        let lr = config.weightLearningRate
        for p in network.parameters {
            for i in p.value.storage.indices { p.value.storage[i] -= lr * p.grad.storage[i] }
        }
        // Architecture, split B.
        let (zB, dzB) = sampleGates(batch: yB.count)
        for p in network.parameters { p.zeroGrad() }
        let taskLoss = Double(loss.forward(network.forward(xB, gates: zB, training: true), labels: yB))
        let dGates = network.backward(loss.backward())
        let units = relaxation.logits.count
        var gradient = [Double](repeating: 0, count: units)
        for s in 0..<yB.count {
            for u in 0..<units { gradient[u] += Double(dGates.storage[s * units + u]) * dzB[s * units + u] }
        }
        let temperature1 = t1
        let p = relaxation.probabilities(t1: temperature1)
        let (cost, dCost) = network.pruningSpace.cost(budget.kind, probabilities: p)
        let (penalty, dPenalty) = budgetPenalty(cost: cost, fullCost: fullCost, budget: target / fullCost, lambda: config.lambda)
        for u in 0..<units {
            gradient[u] += dPenalty * dCost[u] * p[u] * (1 - p[u]) / temperature1
        }
        // Adam on θ.
        step += 1
        let (b1, b2, eps) = (0.9, 0.999, 1e-8)
        for u in 0..<units {
            adamM[u] = b1 * adamM[u] + (1 - b1) * gradient[u]
            adamV[u] = b2 * adamV[u] + (1 - b2) * gradient[u] * gradient[u]
            let mHat = adamM[u] / (1 - pow(b1, Double(step)))
            let vHat = adamV[u] / (1 - pow(b2, Double(step)))
            relaxation.logits[u] -= config.logitLearningRate * mHat / (vHat.squareRoot() + eps)
        }
        return (taskLoss, penalty, cost / fullCost)
    }

    /// The final hard choice within the budget: kept units, from the current probabilities.
    public func select() throws -> [Bool] {
        try selectUnits(network.pruningSpace, probabilities: probabilities, budget: budget)
    }
}
