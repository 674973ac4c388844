// A whole pruning job, as `sprig prune`, `sprig transfer` and `sprig demo` run it:
// select units with a method, extract the smaller network, fine-tune it on the source
// task for a few epochs (every method gets the same), and count its costs.

import Foundation
import SprigTrain

/// What the device pays for a network, by the cost model (BatchNorm folded into biases).
public struct NetworkCosts: Sendable, Equatable {
    public var params: Int
    public var macs: Int
    /// int8 weights plus the peak of live int8 activations (the runtime's arena plan adds
    /// alignment and the input's f32 buffer; `sprig compile` reports the exact figure).
    public var arenaBytes: Int

    public init(_ space: PruningSpace, kept: [Int]) {
        params = Int(space.cost(.params, kept: kept).rounded())
        macs = Int(space.cost(.macs, kept: kept).rounded())
        arenaBytes = Int(space.cost(.arena, kept: kept).rounded())
    }
}

public struct PruneOutcome {
    public var network: Sequential
    public var architecture: Architecture
    /// Per unit of the supernet, whether it survives.
    public var keep: [Bool]
    /// Group names, sizes before and after.
    public var groups: [(name: String, total: Int, kept: Int)]
    public var before: NetworkCosts
    public var after: NetworkCosts
    /// The requested budget in its unit, and the achieved cost in the same unit.
    public var target: Double
    public var achieved: Double
    public var trace: SearchTrace?
    public var searchSeconds: Double
    public var finetuneSeconds: Double
}

/// Where a job is: the stage ("search", "slim", "finetune") and its progress.
public typealias PruneJobProgress = (_ stage: String, _ progress: PruneProgress) -> Void

/// Prunes `network` (of `architecture`) to `settings.budget` with `settings.method`.
///
/// - Parameters:
///   - source: the source task's training images (labels 0..<classes).
///   - finetuneEpochs: epochs of source training for the extracted network (0: none).
///   - quantizationAwareEpochs: epochs after those that train with the int8 blob's rounding
///     (`withQuantizationAwareness`, at a quarter of the fine-tuning rate), for a network that
///     will be compiled to q8; its weights are then left on their int8 grid (0: none).
public func pruneNetwork(_ network: Sequential, architecture: Architecture, source: Dataset, settings: PruneSettings,
                         finetuneEpochs: Int = 1, finetuneLearningRate: Float = 0.02, quantizationAwareEpochs: Int = 0,
                         progress: PruneJobProgress = { _, _ in }) throws -> PruneOutcome {
    let supernet = try GatedSupernet(network: network, architecture: architecture)
    let space = supernet.pruningSpace
    let start = Date()
    let stage = settings.method == .dap ? "search" : settings.method == .slim ? "slim" : "select"
    let (keep, trace) = try pruneSelection(supernet, source: source, settings: settings) { progress(stage, $0) }
    let searchSeconds = Date().timeIntervalSince(start)
    let (small, smallArchitecture) = try supernet.extract(keep: keep)
    let kept = supernet.keptIndices(keep).map(\.count)
    let finetuneStart = Date()
    var options = TrainOptions()
    options.augmentShift = architecture.isConvolutional ? 1 : 0
    options.normalization = architecture.normalization
    func finetune(_ stage: String, epochs: Int, learningRate: Float, seed: UInt64,
                  beforeEpoch: (Int) throws -> Void = { _ in }) throws {
        options.epochs = epochs
        options.learningRate = learningRate
        options.seed = seed
        let total = ((source.count + options.batchSize - 1) / options.batchSize) * epochs
        _ = try train(small, on: source, options: options, progress: { p in
            progress(stage, PruneProgress(step: p.step, total: total, loss: Double(p.loss), cost: nil, t1: nil, t2: nil))
        }, beforeEpoch: beforeEpoch)
    }
    if finetuneEpochs > 0 {
        try finetune("finetune", epochs: finetuneEpochs, learningRate: finetuneLearningRate, seed: settings.seed &+ 1000)
    }
    if quantizationAwareEpochs > 0 {
        // The ranges trained against are measured as `sprig compile` will measure them: the
        // [min, max] over `CompileOptions().calibrationCount` shuffled training images.
        let calibration = source.batches(size: 64, normalization: options.normalization, shuffleSeed: settings.seed &+ 3000)
            .prefix((calibrationImageCount + 63) / 64).map { Tensor(shape: $0.shape, storage: $0.images) }
        try withQuantizationAwareness(small) { qat in
            try finetune("qat", epochs: quantizationAwareEpochs, learningRate: finetuneLearningRate / 4, seed: settings.seed &+ 2000,
                         beforeEpoch: { _ in qat.calibrate(on: calibration) })
        }
    }
    let full = space.fullCost(settings.budget.kind)
    return PruneOutcome(
        network: small, architecture: smallArchitecture, keep: keep,
        groups: space.groups.indices.map { (space.groups[$0].name, space.groups[$0].size, kept[$0]) },
        before: NetworkCosts(space, kept: space.groups.map(\.size)), after: NetworkCosts(space, kept: kept),
        target: settings.budget.target(full: full), achieved: space.cost(settings.budget.kind, kept: kept),
        trace: trace, searchSeconds: searchSeconds, finetuneSeconds: Date().timeIntervalSince(finetuneStart))
}
