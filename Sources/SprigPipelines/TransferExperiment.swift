// The transfer experiment of docs/method.md, as library code (`sprig transfer` renders it):
//
//   for every budget × method × search seed: prune the supernet, extract, one source epoch;
//   for every pruned net and the full supernet, on the target classes:
//     inherited  the net compiled to a Float32 blob, adapted by the device runtime's own
//                `head` (fewShotEpisodes: imprint, then Adam on cached features), k shots
//     reinit     the same architecture re-initialised and trained on the k shots alone
//   over the same seeded episodes for every net (paired), accuracy on all target test images;
//   then, per budget × arm × shot count, DAP minus the best baseline and DAP minus slimming,
//   episode by episode (pairedComparisons).

import Foundation
import SprigCompile
import SprigPrune
import SprigRuntime
import SprigTrain

/// What the experiment runs; the defaults are `sprig transfer`'s full run.
public struct TransferSettings: Sendable {
    /// Budgets with the text they were given in ("10%", "macs:25%").
    public var budgets: [(text: String, budget: Budget)] = []
    public var methods: [PruneMethod] = PruneMethod.allCases
    public var shots = [1, 5, 10, 20]
    public var episodes = 10
    /// Search/selection seeds per method and budget.
    public var seeds = 3
    /// The first search/selection seed: the seeds are firstSeed ..< firstSeed + seeds, so that more
    /// seeds can be added in a later run without repeating the earlier searches.
    public var firstSeed = 1
    public var reinitShots = [1, 5, 10, 20]
    public var reinitEpisodes = 10
    public var reinitSteps = 100
    public var reinitLearningRate: Float = 0.05
    /// DAP's settings (steps, perturbation, …); the seed is each search's.
    public var dap = DAPConfig()
    /// The re-init arm runs this many trainings at once, one thread each.
    public var threads = 2
    /// Episode e of every net draws its shots from `episodeSeed + e`.
    public var episodeSeed: UInt64 = 10_000

    public init() {}
}

/// One measured row: a method at a budget, an arm, a shot count.
public struct TransferRow: Sendable {
    public var method: String
    public var budget: String
    public var arm: String
    public var shots: Int
    public var accuracies: [Double]
}

/// One pruned net (or the supernet).
public struct TransferNet: Sendable {
    public var method: String
    public var budget: String
    public var seed: Int
    public var widths: [Int]
    public var costs: NetworkCosts
    public var sourceAccuracy: Double
    public var searchSeconds: Double
}

/// One DAP search's trajectory.
public struct TransferSearch: Sendable {
    public var budget: String
    public var seed: Int
    public var trace: SearchTrace
    public var groups: [(name: String, total: Int, kept: Int)]
}

/// DAP against one baseline over the same episodes (and search seeds), as a paired difference.
public struct TransferComparison: Sendable {
    public var budget: String
    public var arm: String
    public var shots: Int
    /// "best_baseline" (the baseline with the highest mean in this cell) or "slim".
    public var against: String
    /// The baseline's method name.
    public var baseline: String
    public var dapMean: Double
    public var baselineMean: Double
    /// Mean of the per-episode differences DAP − baseline (a fraction of the test images).
    public var difference: Double
    /// Half-width of its 95% CI (Student t over the n differences).
    public var ci: Double
    public var n: Int
}

/// Everything the experiment measured.
public struct TransferResult: Sendable {
    public var rows: [TransferRow]
    public var nets: [TransferNet]
    public var searches: [TransferSearch]
    public var comparisons: [TransferComparison]
}

/// For every budget (in `budgets`' order) × arm × shot count with a DAP row: DAP minus the best
/// baseline (highest mean over the same episodes; ties to the first by name) and DAP minus `slim`,
/// each as the mean and 95% CI of the per-episode differences.
///
/// The rows' accuracies pair up index by index: each is per search seed, then per episode, and
/// episode e draws the same shots for every net. Rows of other lengths are not compared.
public func pairedComparisons(_ rows: [TransferRow], budgets: [String]) -> [TransferComparison] {
    var out: [TransferComparison] = []
    for budget in budgets {
        for arm in ["inherited", "reinit"] {
            let cell = rows.filter { $0.budget == budget && $0.arm == arm }
            for k in Set(cell.map(\.shots)).sorted() {
                guard let dap = cell.first(where: { $0.method == PruneMethod.dap.rawValue && $0.shots == k }) else { continue }
                let baselines = cell.filter { $0.shots == k && $0.method != dap.method && $0.method != "full"
                                              && $0.accuracies.count == dap.accuracies.count && !$0.accuracies.isEmpty }
                    .sorted { $0.method < $1.method }
                func compare(_ b: TransferRow, _ against: String) {
                    guard let d = pairedDifference(dap.accuracies, minus: b.accuracies) else { return }
                    out.append(TransferComparison(budget: budget, arm: arm, shots: k, against: against, baseline: b.method,
                                                  dapMean: meanAndCI(dap.accuracies).mean, baselineMean: meanAndCI(b.accuracies).mean,
                                                  difference: d.mean, ci: d.ci, n: d.n))
                }
                var best: TransferRow?
                for b in baselines where best == nil || meanAndCI(b.accuracies).mean > meanAndCI(best!.accuracies).mean { best = b }
                if let best { compare(best, "best_baseline") }
                if let slim = baselines.first(where: { $0.method == PruneMethod.slim.rawValue }) { compare(slim, "slim") }
            }
        }
    }
    return out
}

/// The data of the experiment: the source split (pruning, source accuracy) and the target
/// split (shots from `targetTrain`, accuracy on `targetTest`), labels relabelled 0 ..< n.
public struct TransferData: Sendable {
    public var source: Dataset
    public var sourceTest: Dataset
    public var targetTrain: Dataset
    public var targetTest: Dataset
    public var targetClasses: [Int]

    public init(source: Dataset, sourceTest: Dataset, targetTrain: Dataset, targetTest: Dataset, targetClasses: [Int]) {
        self.source = source
        self.sourceTest = sourceTest
        self.targetTrain = targetTrain
        self.targetTest = targetTest
        self.targetClasses = targetClasses
    }
}

/// Progress of the experiment: episodes done of the total, and what runs now.
public typealias TransferProgress = (_ done: Int, _ total: Int, _ status: String) -> Void

/// Runs the experiment on the supernet checkpoint at `supernetPath`.
///
/// - Throws: the errors of pruning, compiling and few-shot adaptation, naming the net.
public func runTransferExperiment(supernetPath: String, data: TransferData, settings: TransferSettings,
                                  pruneProgress: PruneJobProgress = { _, _ in },
                                  progress: TransferProgress = { _, _, _ in }) throws -> TransferResult {
    let supernet = try loadCheckpoint(path: supernetPath)
    let normalization = supernet.architecture.normalization
    let sampler = EpisodeSampler(dataset: data.targetTrain)
    let n = data.targetClasses.count
    // The shots of the re-init arm's episodes, the same for every net (paired comparisons);
    // the inherited arm draws the same ones inside fewShotEpisodes.
    var shotSets: [Int: [Episode]] = [:]
    for k in Set(settings.reinitShots) {
        shotSets[k] = try (0..<settings.reinitEpisodes).map {
            try sampler.sample(nWay: n, kShot: k, query: .perClass(0), seed: settings.episodeSeed &+ UInt64($0))
        }
    }
    var rows: [String: TransferRow] = [:]
    func record(_ method: String, _ budget: String, _ arm: String, _ k: Int, _ value: Double) {
        let key = "\(method)|\(budget)|\(arm)|\(k)"
        rows[key, default: TransferRow(method: method, budget: budget, arm: arm, shots: k, accuracies: [])].accuracies.append(value)
    }
    let runsPerNet = settings.shots.count * settings.episodes + settings.reinitShots.count * settings.reinitEpisodes
    let total = (1 + settings.budgets.count * settings.methods.count * settings.seeds) * runsPerNet
    var done = 0

    /// Both arms for one network.
    func measure(_ network: Sequential, _ architecture: Architecture, method: String, budget: String, seed: Int) throws {
        var compile = CompileOptions()
        compile.precision = .f32
        compile.maxClasses = max(n, 1)
        compile.maxShots = max(settings.shots.max() ?? 1, 1)
        let name = "\(method) \(budget) seed \(seed)"
        let blob: [UInt8]
        do {
            blob = try compileNetwork(network, architecture: architecture, calibration: nil, options: compile)
        } catch {
            throw PipelineError("\(name): \(error)")
        }
        for k in settings.shots {
            var fewShot = FewShotSettings(method: .head)
            fewShot.shots = k
            fewShot.episodes = settings.episodes
            fewShot.seed = settings.episodeSeed
            let report = try fewShotEpisodes(blob: blob, path: name, train: data.targetTrain, test: data.targetTest,
                                             classes: data.targetClasses, settings: fewShot) { e, _ in
                progress(done + e, total, "\(name) inherited \(k)-shot")
            }
            for a in report.accuracies { record(method, budget, "inherited", k, a) }
            done += settings.episodes
        }
        // The trainings are independent and small: one per core, `threads` at a time.
        for k in settings.reinitShots {
            for first in stride(from: 0, to: settings.reinitEpisodes, by: settings.threads) {
                let chunk = Array(first..<min(settings.reinitEpisodes, first + settings.threads))
                let accuracies = try concurrentMap(chunk.count, workers: settings.threads) { i in
                    let e = chunk[i]
                    let shots = data.targetTrain.subset(shotSets[k]![e].supportIndices)
                    return try retrainAccuracy(architecture, classes: n, shots: shots, test: data.targetTest,
                                               steps: settings.reinitSteps, learningRate: settings.reinitLearningRate,
                                               seed: UInt64(1000 + e))
                }
                for a in accuracies { record(method, budget, "reinit", k, a) }
                done += chunk.count
                progress(done, total, "\(name) reinit \(k)-shot")
            }
        }
    }

    var nets: [TransferNet] = []
    var searches: [TransferSearch] = []
    do {
        let space = try pruningSpace(for: supernet.architecture)
        let widths = supernet.architecture.widths
        nets.append(TransferNet(method: "full", budget: "100%", seed: 0, widths: widths, costs: NetworkCosts(space, kept: widths),
                                sourceAccuracy: try evaluate(supernet.network, on: data.sourceTest, normalization: normalization).accuracy,
                                searchSeconds: 0))
        try measure(supernet.network, supernet.architecture, method: "full", budget: "100%", seed: 0)
    }
    for (budgetText, budget) in settings.budgets {
        for method in settings.methods {
            for seed in settings.firstSeed..<(settings.firstSeed + max(settings.seeds, 1)) {
                let (network, architecture) = try loadCheckpoint(path: supernetPath)
                var prune = PruneSettings(budget: budget)
                prune.method = method
                prune.seed = UInt64(seed)
                prune.dap = settings.dap
                let outcome = try pruneNetwork(network, architecture: architecture, source: data.source, settings: prune,
                                               progress: pruneProgress)
                nets.append(TransferNet(method: method.rawValue, budget: budgetText, seed: seed, widths: outcome.architecture.widths,
                                        costs: outcome.after,
                                        sourceAccuracy: try evaluate(outcome.network, on: data.sourceTest,
                                                                     normalization: normalization).accuracy,
                                        searchSeconds: outcome.searchSeconds))
                if let trace = outcome.trace { searches.append(TransferSearch(budget: budgetText, seed: seed, trace: trace, groups: outcome.groups)) }
                try measure(outcome.network, outcome.architecture, method: method.rawValue, budget: budgetText, seed: seed)
            }
        }
    }
    let ordered = rows.values.sorted { ($0.arm, $0.shots, $0.method, $0.budget) < ($1.arm, $1.shots, $1.method, $1.budget) }
    return TransferResult(rows: ordered, nets: nets, searches: searches,
                          comparisons: pairedComparisons(ordered, budgets: settings.budgets.map(\.text)))
}
