// The DAP search loop: alternate a weight step (split A, sampled gates) and
// an architecture step (split B, sampled gates, complexity penalty).
//
//   weights:  w ← w − lr_w · ∂L_task(w, z)/∂w                  z ~ relaxed Bernoulli(θ; T1, T2)
//   logits:   θ ← Adam(θ, ∂/∂θ [L_task(w, z) + λ·relu(C(p)/C_full − b)²])
//             ∂L/∂θ_u = Σ_n ∂L/∂z_nu · z_nu(1 − z_nu)/(T1·T2)  +  ∂P/∂C · ∂C/∂p_u · p_u(1 − p_u)/T1
//
// Two options aim the search at transfer (docs/method.md): a held-out pseudo-target adds
// w·L_proto to the θ step, the loss of a cosine prototype head fitted on a few held-out-class
// samples' features and scored on others (dL/dz through the features, `FeatureGatedNetwork`);
// a feature floor adds λ·relu(F − n_f/N_f)² on the feature group's expected width.
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

/// A gated network whose classifier reads one feature vector per sample (the pseudo-target needs it).
public protocol FeatureGatedNetwork: GatedNetwork {
    /// Features `[N][F]` (the classifier's input) for inputs `x` with gates `[N][units]`.
    func forwardFeatures(_ x: Tensor, gates: Tensor, training: Bool) -> Tensor
    /// From dL/dfeatures: accumulates the weights' gradients (below the classifier) and returns dL/dgates `[N][units]`.
    func backwardFeatures(_ dFeatures: Tensor) -> Tensor
}

/// One pseudo-target episode: `x` holds the support samples first (`supportCount` of them), then
/// the queries; `labels` are the held-out classes renumbered 0..<classes.
public struct PseudoTargetBatch {
    public var x: Tensor
    public var labels: [Int]
    public var supportCount: Int
    public var classes: Int

    public init(x: Tensor, labels: [Int], supportCount: Int, classes: Int) {
        self.x = x
        self.labels = labels
        self.supportCount = supportCount
        self.classes = classes
    }
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
    /// Held-out pseudo-target (0: off): this many source classes are kept out of the weight steps
    /// and out of the θ step's source loss; θ is also trained on a prototype head's loss on them
    /// (``prototypeHeadLoss(features:supportCount:labels:classes:scale:)``), fitted on
    /// `pseudoTargetShots` samples per class and scored on `pseudoTargetQueries` others, every
    /// step. Needs a ``FeatureGatedNetwork``; at least 2 held-out classes and 2 left.
    public var pseudoTargetClasses = 0
    /// The pseudo-target loss's weight beside the source loss in the θ step.
    public var pseudoTargetWeight = 1.0
    public var pseudoTargetShots = 5
    public var pseudoTargetQueries = 10
    /// The cosine prototype head's scale (the logits are scale × cos).
    public var pseudoTargetScale = 10.0
    /// Feature-width floor F (0: off): adds λ·relu(F − n_f/N_f)² to the θ objective, where
    /// n_f = Σ p_u over the feature group (the group the classifier reads) and N_f its size, so
    /// the expected kept fraction of the feature layer stays at or above F. Default 0.75: on `cnn`
    /// at 10% it gained 2.0–3.7 points at 5 shots with the device's `head` on three class splits
    /// (docs/method.md, "Search variants aimed at transfer").
    public var featureFloor = 0.75
    /// Scale prior S (0: off): θ starts at `initialLogit + S·z_u` instead of `initialLogit`,
    /// z_u the unit's log |BatchNorm γ| standardised over all units (mean 0, deviation 1), so
    /// that where the search's gradients do not decide, it keeps the units slimming would.
    /// Networks without BatchNorm (mlp) start flat.
    public var scalePrior = 0.0

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

    /// Starts θ at `initialLogit + scale·z_u`, z the standardised log of `prior` (one positive
    /// value per unit; zeros are raised to the smallest positive one). No-op when every value is
    /// the same.
    public func seedLogits(prior: [Double], scale: Double) {
        precondition(prior.count == relaxation.logits.count, "seedLogits: \(prior.count) priors for \(relaxation.logits.count) units")
        let positive = prior.filter { $0 > 0 }.min() ?? 1
        let logs = prior.map { log(max($0, positive)) }
        let mean = logs.reduce(0, +) / Double(logs.count)
        let deviation = (logs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(logs.count)).squareRoot()
        guard deviation > 0 else { return }
        for u in logs.indices { relaxation.logits[u] = config.initialLogit + scale * (logs[u] - mean) / deviation }
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
    public func step(xA: Tensor, yA: [Int], xB: Tensor, yB: [Int],
                     pseudo: PseudoTargetBatch? = nil) -> (loss: Double, penalty: Double, cost: Double) {
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
        // Pseudo-target: a prototype head fitted on the support features, its loss on the queries.
        if let pseudo, config.pseudoTargetWeight > 0, let featureNetwork = network as? FeatureGatedNetwork {
            let n = pseudo.labels.count
            let (zP, dzP) = sampleGates(batch: n)
            for p in network.parameters { p.zeroGrad() }
            let features = featureNetwork.forwardFeatures(pseudo.x, gates: zP, training: true)
            let head = prototypeHeadLoss(features: features, supportCount: pseudo.supportCount, labels: pseudo.labels,
                                         classes: pseudo.classes, scale: config.pseudoTargetScale)
            let dGatesP = featureNetwork.backwardFeatures(head.gradient)
            let w = config.pseudoTargetWeight
            for s in 0..<n {
                for u in 0..<units { gradient[u] += w * Double(dGatesP.storage[s * units + u]) * dzP[s * units + u] }
            }
        }
        let temperature1 = t1
        let p = relaxation.probabilities(t1: temperature1)
        let (cost, dCost) = network.pruningSpace.cost(budget.kind, probabilities: p)
        let (penalty, dPenalty) = config.mode == .budget
            ? budgetPenalty(cost: cost, fullCost: fullCost, budget: currentTarget / fullCost, lambda: config.lambda)
            : (config.lambda * cost / fullCost, config.lambda / fullCost)
        var totalPenalty = penalty
        var dP = dCost.map { dPenalty * $0 }
        if config.featureFloor > 0, let g = network.pruningSpace.featureGroup {
            let floor = featureFloorPenalty(network.pruningSpace, group: g, probabilities: p, floor: config.featureFloor,
                                            lambda: config.lambda)
            totalPenalty += floor.value
            for u in 0..<units { dP[u] += floor.gradient[u] }
        }
        for u in 0..<units {
            gradient[u] += dP[u] * p[u] * (1 - p[u]) / temperature1
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
        return (taskLoss, totalPenalty, cost / fullCost)
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

extension PruningSpace {
    /// The group the classifier reads: the input group of the last layer whose output is fixed
    /// (the head), nil when there is none.
    public var featureGroup: Int? {
        guard let head = layers.last(where: { if case .fixed = $0.output { return true } else { return false } }),
              case .group(let g) = head.input else { return nil }
        return g
    }
}

/// The feature-width floor `λ·relu(F − n/N)²` with `n = Σ_{u∈g} p_u`, `N` the group's size, and its
/// gradient with respect to every p (zero outside the group).
///
/// For example, a group of 4 units with p = (1, 1, 0, 0), F = 0.75, λ = 100: n/N = 0.5, the
/// value is 100·0.25² = 6.25 and ∂/∂p_u = −2·100·0.25/4 = −12.5 for each of the four units.
public func featureFloorPenalty(_ space: PruningSpace, group g: Int, probabilities p: [Double], floor: Double,
                                lambda: Double) -> (value: Double, gradient: [Double]) {
    let start = space.offsets[g], size = space.groups[g].size
    var kept = 0.0
    for u in start..<(start + size) { kept += p[u] }
    let short = max(0, floor - kept / Double(size))
    var gradient = [Double](repeating: 0, count: p.count)
    guard short > 0 else { return (0, gradient) }
    for u in start..<(start + size) { gradient[u] = -2 * lambda * short / Double(size) }
    return (lambda * short * short, gradient)
}

/// A cosine prototype head fitted on the support features and its cross-entropy on the queries,
/// with the gradient with respect to every feature row (support rows included: the prototypes
/// depend on them).
///
///   û_i = f_i/‖f_i‖;  m_c = mean of û_i over the support of class c;  μ_c = m_c/‖m_c‖
///   logit_qc = s·û_q·μ_c;  L = mean over queries of CE(logit_q, y_q)
///
/// - Parameters:
///   - features: `[N][F]`, the first `supportCount` rows the support, the rest the queries.
///   - labels: N labels in 0..<classes; every class needs at least one support row.
/// - Returns: the loss and dL/dfeatures `[N][F]`.
public func prototypeHeadLoss(features: Tensor, supportCount: Int, labels: [Int], classes: Int,
                              scale: Double) -> (loss: Double, gradient: Tensor) {
    let n = features.shape[0], f = features.shape[1]
    precondition(labels.count == n && supportCount < n, "prototypeHeadLoss: \(labels.count) labels, \(supportCount) support of \(n) rows")
    let eps = 1e-12
    // Normalised rows.
    var unit = [Double](repeating: 0, count: n * f), norms = [Double](repeating: 0, count: n)
    for i in 0..<n {
        var s = 0.0
        for j in 0..<f { s += Double(features.storage[i * f + j]) * Double(features.storage[i * f + j]) }
        norms[i] = max(s.squareRoot(), eps)
        for j in 0..<f { unit[i * f + j] = Double(features.storage[i * f + j]) / norms[i] }
    }
    // Prototypes.
    var mean = [Double](repeating: 0, count: classes * f), counts = [Double](repeating: 0, count: classes)
    for i in 0..<supportCount {
        counts[labels[i]] += 1
        for j in 0..<f { mean[labels[i] * f + j] += unit[i * f + j] }
    }
    var protoNorms = [Double](repeating: 0, count: classes), proto = mean
    for c in 0..<classes {
        precondition(counts[c] > 0, "prototypeHeadLoss: class \(c) has no support sample")
        var s = 0.0
        for j in 0..<f { mean[c * f + j] /= counts[c]; s += mean[c * f + j] * mean[c * f + j] }
        protoNorms[c] = max(s.squareRoot(), eps)
        for j in 0..<f { proto[c * f + j] = mean[c * f + j] / protoNorms[c] }
    }
    // Query loss; dL/dû for queries and dL/dμ.
    let queries = n - supportCount
    var loss = 0.0
    var dUnit = [Double](repeating: 0, count: n * f), dProto = [Double](repeating: 0, count: classes * f)
    for q in supportCount..<n {
        var logits = [Double](repeating: 0, count: classes)
        for c in 0..<classes {
            var dot = 0.0
            for j in 0..<f { dot += unit[q * f + j] * proto[c * f + j] }
            logits[c] = scale * dot
        }
        let top = logits.max()!
        let exps = logits.map { Foundation.exp($0 - top) }
        let total = exps.reduce(0, +)
        loss += (Foundation.log(total) + top - logits[labels[q]]) / Double(queries)
        for c in 0..<classes {
            let g = (exps[c] / total - (c == labels[q] ? 1 : 0)) / Double(queries)
            for j in 0..<f {
                dUnit[q * f + j] += g * scale * proto[c * f + j]
                dProto[c * f + j] += g * scale * unit[q * f + j]
            }
        }
    }
    // μ = m/‖m‖ → dL/dm = (dμ − μ(μ·dμ))/‖m‖; m = mean of support û → dL/dû_i = dL/dm_c / count_c.
    for c in 0..<classes {
        var dot = 0.0
        for j in 0..<f { dot += proto[c * f + j] * dProto[c * f + j] }
        for j in 0..<f { dProto[c * f + j] = (dProto[c * f + j] - proto[c * f + j] * dot) / protoNorms[c] }
    }
    for i in 0..<supportCount {
        for j in 0..<f { dUnit[i * f + j] += dProto[labels[i] * f + j] / counts[labels[i]] }
    }
    // û = f/‖f‖ → dL/df = (dû − û(û·dû))/‖f‖.
    var gradient = Tensor(zeros: [n, f])
    for i in 0..<n {
        var dot = 0.0
        for j in 0..<f { dot += unit[i * f + j] * dUnit[i * f + j] }
        for j in 0..<f { gradient.storage[i * f + j] = Float((dUnit[i * f + j] - unit[i * f + j] * dot) / norms[i]) }
    }
    return (loss, gradient)
}
