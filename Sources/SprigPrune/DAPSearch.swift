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
    /// How the complexity enters the objective.
    public enum Mode: String, Sendable, CaseIterable {
        /// λ·relu(C/C_full − b)²: drives C to the budget b.
        case budget
        /// λ·C/C_full: a price on complexity; the hard selection keeps units with p ≥ ½ (and
        /// still honours the budget).
        case penalty
    }

    public var t1 = (start: 1.0, end: 0.05)
    public var t2 = (start: 1.0, end: 0.1)
    public var initialLogit = 3.0
    public var logitLearningRate = 0.05
    public var weightLearningRate: Float = 0.01
    public var lambda = 100.0
    public var mode = Mode.budget
    /// Alternating steps (one weight step on split A, one θ step on split B); the default of
    /// `sprig prune`, `sprig demo` and `sprig transfer`.
    public var steps = 600
    public var seed: UInt64 = 1
    /// Every `perturbEvery` steps (0: never) the weights are reset to the ones the search
    /// started from plus Gaussian noise of `perturbScale` × each tensor's RMS, so that θ is
    /// trained across several weight samples instead of co-adapting with one.
    public var perturbEvery = 0
    public var perturbScale: Float = 0.1
    /// Budget mode (λ > 0): after each θ step, shift every θ by one common amount so that the
    /// expected cost is at most the budget (a projection onto the budget). Without it, Adam moves every θ
    /// down together and the search overshoots far below the budget (docs/method.md).
    public var projectOntoBudget = true
    /// The fraction of the steps over which the budget falls from the full network's cost to
    /// its target, on Zhu and Gupta's cubic schedule (0: the target from the first step).
    public var budgetRamp = 0.75

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
    /// The weights the search started from (kept only when perturbation is on).
    let initialWeights: [[Float]]

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
        initialWeights = config.perturbEvery > 0 ? network.parameters.map(\.value.storage) : []
    }

    public var t1: Double { GeometricSchedule(start: config.t1.start, end: config.t1.end, steps: config.steps).value(at: step) }
    public var t2: Double { GeometricSchedule(start: config.t2.start, end: config.t2.end, steps: config.steps).value(at: step) }

    /// The budget at the current step: `target` after the ramp; before it,
    /// `target + (full − target)·(1 − step/rampSteps)³`.
    public var currentTarget: Double {
        let rampSteps = config.budgetRamp * Double(config.steps)
        guard rampSteps >= 1, Double(step) < rampSteps else { return target }
        let left = 1 - Double(step) / rampSteps
        return target + (fullCost - target) * left * left * left
    }

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
        if config.perturbEvery > 0 && step > 0 && step % config.perturbEvery == 0 { perturbWeights() }
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
        let (penalty, dPenalty) = config.mode == .budget
            ? budgetPenalty(cost: cost, fullCost: fullCost, budget: currentTarget / fullCost, lambda: config.lambda)
            : (config.lambda * cost / fullCost, config.lambda / fullCost)
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
        if config.mode == .budget && config.projectOntoBudget && config.lambda > 0 { projectOntoBudget() }
        return (taskLoss, penalty, cost / fullCost)
    }

    /// The final hard choice within the budget: kept units, from the current probabilities.
    ///
    /// In penalty mode, units with p < ½ (θ < 0) are dropped first (a group keeps at least its most
    /// probable unit); the budget still caps the result. With `widthMultiple` N > 1 each group's
    /// count is then rounded up to a multiple of N (``roundWidths(_:kept:multiple:)``), keeping its
    /// highest-θ units.
    public func select(widthMultiple: Int = 1) throws -> [Bool] {
        // Ranked by θ, which orders units as p = σ(θ/T1) does without p's saturation at 1 (ties).
        var p = relaxation.logits
        if config.mode == .penalty {
            let space = network.pruningSpace
            for (g, start) in space.offsets.enumerated() {
                let range = start..<(start + space.groups[g].size)
                let best = range.max { p[$0] < p[$1] } ?? start
                for u in range where p[u] < 0 && u != best { p[u] = -.infinity }  // p < ½: below every kept unit
            }
            var keep = try selectUnits(space, probabilities: p, budget: budget)
            for u in p.indices where p[u] == -.infinity { keep[u] = false }
            return try roundSelection(space, keep: keep, scores: p, multiple: widthMultiple)
        }
        return try selectUnits(network.pruningSpace, probabilities: p, budget: budget, widthMultiple: widthMultiple)
    }

    /// θ ← θ − c with the smallest c ≥ 0 such that C(σ((θ − c)/T1)) ≤ target (bisection: C is
    /// increasing in every p, and every p decreasing in c).
    func projectOntoBudget() {
        let space = network.pruningSpace, temperature = t1, target = currentTarget
        func cost(_ shift: Double) -> Double {
            space.cost(budget.kind, probabilities: relaxation.logits.map { sigmoid(($0 - shift) / temperature) }).value
        }
        guard cost(0) > target else { return }
        var lo = 0.0, hi = 1.0
        while cost(hi) > target && hi < 1e6 { hi *= 2 }
        for _ in 0..<40 {
            let mid = (lo + hi) / 2
            if cost(mid) > target { lo = mid } else { hi = mid }
        }
        for u in relaxation.logits.indices { relaxation.logits[u] -= hi }
    }

    /// w ← w₀ + ε·rms(w₀)·N(0, 1), per tensor.
    func perturbWeights() {
        for (p, w0) in zip(network.parameters, initialWeights) {
            let rms = (w0.reduce(0) { $0 + $1 * $1 } / Float(max(w0.count, 1))).squareRoot()
            let sigma = config.perturbScale * rms
            for i in w0.indices { p.value.storage[i] = w0[i] + sigma * rng.normal() }
        }
    }
}
