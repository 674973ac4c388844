// One entry point for every pruning method: from a trained supernet, the source data
// and a budget to the kept units (and, for DAP, the trajectory of the search).
//
//   dap      split the source training set in halves A and B; `DAPSearch` for `steps` steps
//            (a weight step on a batch of A, an architecture step on a batch of B), then the
//            hard selection
//   slim     `slimEpochs` of training with λ_s·|γ| added to the loss, then a global threshold
//   l1, random, uniform   read the weights (or a seed) only; no data
//
// The supernet's weights are modified by dap and slim (they train); callers that need the
// original weights afterwards reload the checkpoint.

import Foundation
import SprigTrain

public enum PruneMethod: String, CaseIterable, Sendable {
    case dap, l1, slim, random, uniform
}

public struct PruneSettings: Sendable {
    public var method = PruneMethod.dap
    public var budget: Budget
    /// Seeds the search's gates and data order, the random baseline, and slimming's shuffles.
    public var seed: UInt64 = 1
    public var dap = DAPConfig()
    public var batchSize = 64
    public var slimEpochs = 1
    /// λ_s of the slimming penalty (Liu et al. use 1e-4 to 1e-5).
    public var slimLambda: Float = 1e-4
    public var slimLearningRate: Float = 0.01
    /// Every method's hard selection rounds each group's kept count up to a multiple of this
    /// (at least it, at most the group's size; a group's full size is always allowed). 1: no rounding.
    public var widthMultiple = 1

    public init(budget: Budget) { self.budget = budget }
}

/// What a long-running selection reports.
public struct PruneProgress: Sendable {
    public var step: Int
    public var total: Int
    public var loss: Double
    /// Expected cost as a fraction of the full network's (DAP), else nil.
    public var cost: Double?
    public var t1: Double?
    public var t2: Double?
}

/// The inclusion probabilities during a DAP search, sampled about 100 times.
public struct SearchTrace: Sendable {
    public var steps: [Int] = []
    public var probabilities: [[Double]] = []
    public var costs: [Double] = []
    public var losses: [Double] = []
}

/// Chooses the units to keep with `settings.method`, within `settings.budget`.
///
/// - Parameter source: the source task's training images, labels 0..<classes.
public func pruneSelection(_ supernet: GatedSupernet, source: Dataset, settings: PruneSettings,
                           progress: (PruneProgress) -> Void = { _ in }) throws -> (keep: [Bool], trace: SearchTrace?) {
    let space = supernet.pruningSpace
    // An impossible budget fails here, before any training.
    _ = try uniformWidths(space, budget: settings.budget)
    let n = settings.widthMultiple
    guard n >= 1 else { throw PruneError.badWidthMultiple(n) }
    switch settings.method {
    case .uniform:
        return (try selectUniform(space, budget: settings.budget, widthMultiple: n), nil)
    case .l1:
        return (try selectL1(space, norms: supernet.filterNorms(), budget: settings.budget, widthMultiple: n), nil)
    case .random:
        return (try selectRandom(space, budget: settings.budget, seed: settings.seed, widthMultiple: n), nil)
    case .slim:
        let scales = try slimmingScales(supernet, source: source, settings: settings, progress: progress)
        return (try selectSlim(space, scales: scales, budget: settings.budget, widthMultiple: n), nil)
    case .dap:
        return try dapSelection(supernet, source: source, settings: settings, progress: progress)
    }
}

func dapSelection(_ supernet: GatedSupernet, source: Dataset, settings: PruneSettings,
                  progress: (PruneProgress) -> Void) throws -> (keep: [Bool], trace: SearchTrace?) {
    guard source.count >= 2 else { throw TrainError.emptyData("source training") }
    var config = settings.dap
    config.seed = settings.seed
    let halves = try source.split(validationFraction: 0.5, seed: settings.seed &+ 17, stratified: true)
    let normalization = supernet.architecture.normalization
    // Pseudo-target: the held-out classes leave A and B's source batches and feed the episodes.
    var sampler: PseudoTargetSampler?
    var (trainA, trainB) = (halves.train, halves.validation)
    if config.pseudoTargetClasses > 0 {
        guard supernet.hasFeatureLayer else { throw PruneError.badPseudoTarget("the network's last layer is not a Dense classifier") }
        let held = try pseudoTargetClasses(present: source.labelsPresent, count: config.pseudoTargetClasses)
        trainA = trainA.subset(trainA.labels.indices.filter { !held.contains(Int(trainA.labels[$0])) })
        let b = halves.validation
        trainB = b.subset(b.labels.indices.filter { !held.contains(Int(b.labels[$0])) })
        sampler = try PseudoTargetSampler(b, classes: held, shots: config.pseudoTargetShots, queries: config.pseudoTargetQueries,
                                          normalization: normalization, seed: settings.seed &* 31 &+ 3)
    }
    var a = Batches(trainA, size: settings.batchSize, seed: settings.seed &* 31 &+ 1, normalization: normalization)
    var b = Batches(trainB, size: settings.batchSize, seed: settings.seed &* 31 &+ 2, normalization: normalization)
    let search = DAPSearch(network: supernet, budget: settings.budget, config: config)
    if config.scalePrior > 0, let scales = supernet.batchNormScales() {
        search.seedLogits(prior: scales, scale: config.scalePrior)
    }
    var trace = SearchTrace()
    let every = max(1, config.steps / 100)
    var smoothed = 0.0
    for step in 0..<config.steps {
        let (xA, yA) = a.next(), (xB, yB) = b.next()
        let r = search.step(xA: xA, yA: yA, xB: xB, yB: yB, pseudo: sampler?.next())
        guard r.loss.isFinite else { throw TrainError.diverged(step: step, epoch: 0) }
        smoothed = step == 0 ? r.loss : 0.95 * smoothed + 0.05 * r.loss
        if step % every == 0 || step == config.steps - 1 {
            trace.steps.append(step + 1)
            trace.probabilities.append(search.probabilities)
            trace.costs.append(r.cost)
            trace.losses.append(smoothed)
            progress(PruneProgress(step: step + 1, total: config.steps, loss: smoothed, cost: r.cost, t1: search.t1, t2: search.t2))
        }
    }
    return (try search.select(widthMultiple: settings.widthMultiple), trace)
}

/// The source classes held out as the pseudo-target: the last `count` of the labels present
/// (with source classes 0–4 and count 2: classes 3 and 4).
///
/// - Throws: ``PruneError/badPseudoTarget(_:)`` unless 2 ≤ count ≤ classes − 2 (a prototype head
///   needs two classes, and the source loss two).
public func pseudoTargetClasses(present: [Int], count: Int) throws -> [Int] {
    let classes = present.sorted()
    guard count >= 2, count <= classes.count - 2 else {
        throw PruneError.badPseudoTarget("\(count) held-out classes of \(classes.count); need at least 2 held out and 2 left")
    }
    return Array(classes.suffix(count))
}

/// Seeded pseudo-target episodes: per held-out class `shots` support and `queries` query samples,
/// distinct within an episode; support rows first.
struct PseudoTargetSampler {
    let data: Dataset
    let byClass: [[Int]]
    let shots: Int
    let queries: Int
    let normalization: Normalization
    var rng: SprigRNG

    init(_ data: Dataset, classes: [Int], shots: Int, queries: Int, normalization: Normalization, seed: UInt64) throws {
        guard shots >= 1, queries >= 1 else { throw PruneError.badPseudoTarget("\(shots) shots and \(queries) queries per class; need at least 1 each") }
        byClass = classes.map { c in data.labels.indices.filter { Int(data.labels[$0]) == c } }
        for (c, indices) in zip(classes, byClass) where indices.count < shots + queries {
            throw PruneError.badPseudoTarget("class \(c) has \(indices.count) samples in the search's split B; an episode needs \(shots + queries)")
        }
        self.data = data
        self.shots = shots
        self.queries = queries
        self.normalization = normalization
        rng = SprigRNG(seed: seed)
    }

    mutating func next() -> PseudoTargetBatch {
        var support: [Int] = [], query: [Int] = [], supportLabels: [Int] = [], queryLabels: [Int] = []
        for (c, indices) in byClass.enumerated() {
            // A partial Fisher–Yates shuffle draws shots + queries distinct samples.
            var pool = indices
            for i in 0..<(shots + queries) {
                let j = i + Int(rng.nextDouble() * Double(pool.count - i)) % (pool.count - i)
                pool.swapAt(i, j)
            }
            support += pool[0..<shots]
            query += pool[shots..<(shots + queries)]
            supportLabels += [Int](repeating: c, count: shots)
            queryLabels += [Int](repeating: c, count: queries)
        }
        let batch = data.makeBatch(indices: support + query, normalization: normalization)
        return PseudoTargetBatch(x: Tensor(shape: batch.shape, storage: batch.images), labels: supportLabels + queryLabels,
                                 supportCount: support.count, classes: byClass.count)
    }
}

/// Network slimming's scales after sparsity training: BatchNorm γ, or for mlp a learned
/// per-neuron scale that is folded into the weights afterwards (so the network is unchanged).
func slimmingScales(_ supernet: GatedSupernet, source: Dataset, settings: PruneSettings,
                    progress: (PruneProgress) -> Void) throws -> [Double] {
    guard source.count > 0 else { throw TrainError.emptyData("source training") }
    let units = supernet.pruningSpace.unitCount
    let gammas = supernet.batchNormWeights
    let useScales = supernet.batchNormScales() == nil
    var scale = Tensor(shape: [units], repeating: 1)
    let optimizer = SGD(learningRate: settings.slimLearningRate, momentum: 0.9, weightDecay: 0)
    var store = ParameterList(supernet.parameters)
    let loss = SoftmaxCrossEntropy()
    let steps = (source.count + settings.batchSize - 1) / settings.batchSize
    let total = steps * settings.slimEpochs
    var step = 0
    var smoothed = 0.0
    for epoch in 0..<settings.slimEpochs {
        for batch in source.batches(size: settings.batchSize, normalization: supernet.architecture.normalization,
                                    shuffleSeed: settings.seed &+ UInt64(epoch) &* 7919) {
            let x = Tensor(shape: batch.shape, storage: batch.images)
            supernet.network.zeroGrad()
            let ones = Tensor(shape: [units], repeating: 1)
            let logits = supernet.forward(x, gates: useScales ? scale : ones, training: true)
            let l = Double(loss.forward(logits, labels: batch.labels))
            guard l.isFinite else { throw TrainError.diverged(step: step, epoch: epoch + 1) }
            let dScale = supernet.backward(loss.backward())
            for gamma in gammas {
                for i in gamma.value.storage.indices {
                    let g = gamma.value.storage[i]
                    gamma.grad.storage[i] += settings.slimLambda * (g > 0 ? 1 : g < 0 ? -1 : 0)
                }
            }
            optimizer.step(&store)
            if useScales {
                for u in 0..<units {
                    let s = scale.storage[u]
                    let g = dScale.storage[u] + settings.slimLambda * (s > 0 ? 1 : 0)
                    scale.storage[u] = max(0, s - settings.slimLearningRate * 10 * g)
                }
            }
            step += 1
            smoothed = step == 1 ? l : 0.95 * smoothed + 0.05 * l
            if step % 10 == 0 || step == total {
                progress(PruneProgress(step: step, total: total, loss: smoothed, cost: nil, t1: nil, t2: nil))
            }
        }
    }
    if let gammaScales = supernet.batchNormScales() { return gammaScales }
    supernet.foldUnitScales(scale.storage)
    return scale.storage.map(Double.init)
}

extension GatedSupernet {
    /// Multiplies each unit's producing weights and bias by its scale s ≥ 0 (ReLU(s·a) = s·ReLU(a)).
    func foldUnitScales(_ s: [Float]) {
        let offsets = pruningSpace.offsets
        for entry in namedTensors(network) {
            let dot = entry.name.lastIndex(of: ".")!
            let path = String(entry.name[..<dot])
            guard let groups = layerGroups[path], let g = groups.output, groups.input != g else { continue }
            var t = entry.get()
            let units = pruningSpace.groups[g].size
            let inner = t.count / units
            switch t.rank {
            case 2, 1:  // dense [Out][In], bias [Out]
                for i in t.storage.indices { t.storage[i] *= s[offsets[g] + i / inner] }
            default:  // conv [KH][KW][Cin][Cout]
                for i in t.storage.indices { t.storage[i] *= s[offsets[g] + i % units] }
            }
            entry.set(t)
        }
    }
}

/// Endless seeded mini-batches over a data set, reshuffled every pass.
struct Batches {
    let data: Dataset
    let size: Int
    let seed: UInt64
    let normalization: Normalization
    var pass = 0
    var iterator: BatchSequence

    init(_ data: Dataset, size: Int, seed: UInt64, normalization: Normalization) {
        self.data = data
        self.size = min(size, max(1, data.count))
        self.seed = seed
        self.normalization = normalization
        iterator = data.batches(size: self.size, normalization: normalization, shuffleSeed: seed, dropLast: true)
    }

    mutating func next() -> (Tensor, [Int]) {
        if let batch = iterator.next() { return (Tensor(shape: batch.shape, storage: batch.images), batch.labels) }
        pass += 1
        iterator = data.batches(size: size, normalization: normalization, shuffleSeed: seed &+ UInt64(pass) &* 104_729,
                                dropLast: true)
        let batch = iterator.next()!
        return (Tensor(shape: batch.shape, storage: batch.images), batch.labels)
    }
}
