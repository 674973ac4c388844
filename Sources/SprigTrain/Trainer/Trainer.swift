// The training loop: mini-batch SGD with momentum and weight decay, cosine
// learning rate with linear warm-up, shift augmentation, evaluation.
// Deterministic for a seed: shuffles and augmentation come from it, and the
// layers' reductions do not depend on the thread count.

import Foundation

public struct TrainOptions: Sendable {
    public var epochs = 5
    public var batchSize = 64
    public var learningRate: Float = 0.05
    public var momentum: Float = 0.9
    public var weightDecay: Float = 5e-4
    public var warmupFraction = 0.05
    /// Random shift of up to this many pixels (0 = none).
    public var augmentShift = 2
    public var seed: UInt64 = 1
    /// The input normalisation: the architecture's (`Architecture.normalization`).
    public var normalization: Normalization = .fashionMNIST

    public init() {}
}

public struct TrainProgress: Sendable {
    public var epoch: Int
    public var step: Int
    public var totalSteps: Int
    public var loss: Float
    public var accuracy: Float
    public var imagesPerSecond: Double
}

public struct TrainResult: Sendable {
    public var trainLoss: Float
    public var trainAccuracy: Float
    public var seconds: Double
    public var imagesPerSecond: Double
    public var steps: Int
}

public enum TrainError: Error, Equatable, CustomStringConvertible {
    case diverged(step: Int, epoch: Int)
    case emptyData(String)

    public var description: String {
        switch self {
        case .diverged(let step, let epoch):
            return "training diverged: the loss became NaN or infinite at step \(step) (epoch \(epoch)); try a smaller --lr"
        case .emptyData(let what): return "no \(what) images"
        }
    }
}

/// Trains `network` on `data` (labels 0 ..< classes); `beforeEpoch(e)` runs before epoch e (0-based).
public func train(_ network: Sequential, on data: Dataset, options: TrainOptions,
                  progress: (TrainProgress) -> Void = { _ in },
                  beforeEpoch: (Int) throws -> Void = { _ in }) throws -> TrainResult {
    guard data.count > 0 else { throw TrainError.emptyData("training") }
    let stepsPerEpoch = (data.count + options.batchSize - 1) / options.batchSize
    let total = stepsPerEpoch * options.epochs
    let schedule = LearningRateSchedule.cosine(base: options.learningRate,
                                               warmupSteps: Int(Double(total) * options.warmupFraction),
                                               totalSteps: total, minimum: 0)
    let optimizer = SGD(learningRate: options.learningRate, momentum: options.momentum, weightDecay: options.weightDecay)
    var store = ParameterList(network.parameters)
    let loss = SoftmaxCrossEntropy()
    let start = Date()
    var step = 0
    var seen = 0
    var runningLoss: Float = 0, runningAccuracy: Float = 0
    for epoch in 0..<options.epochs {
        try beforeEpoch(epoch)
        let batches = data.batches(size: options.batchSize, normalization: options.normalization,
                                   shuffleSeed: options.seed &+ UInt64(epoch) &* 7919,
                                   augmentation: options.augmentShift > 0 ? .shift(options.augmentShift) : .none)
        for batch in batches {
            let x = Tensor(shape: batch.shape, storage: batch.images)
            network.zeroGrad()
            let logits = network.forward(x, training: true)
            let l = loss.forward(logits, labels: batch.labels)
            guard l.isFinite else { throw TrainError.diverged(step: step, epoch: epoch + 1) }
            _ = network.backward(loss.backward())
            optimizer.learningRate = schedule.learningRate(at: step)
            optimizer.step(&store)
            let accuracy = SoftmaxCrossEntropy.accuracy(logits, labels: batch.labels)
            runningLoss = step == 0 ? l : 0.98 * runningLoss + 0.02 * l
            runningAccuracy = step == 0 ? accuracy : 0.98 * runningAccuracy + 0.02 * accuracy
            step += 1
            seen += batch.labels.count
            if step % 10 == 0 || step == total {
                let elapsed = Date().timeIntervalSince(start)
                progress(TrainProgress(epoch: epoch + 1, step: step, totalSteps: total, loss: runningLoss,
                                       accuracy: runningAccuracy, imagesPerSecond: Double(seen) / max(elapsed, 1e-9)))
            }
        }
    }
    // The last update is not followed by a loss: check that it left every weight finite.
    guard network.parameters.allSatisfy({ $0.value.storage.allSatisfy(\.isFinite) }) else {
        throw TrainError.diverged(step: max(step - 1, 0), epoch: options.epochs)
    }
    let seconds = Date().timeIntervalSince(start)
    return TrainResult(trainLoss: runningLoss, trainAccuracy: runningAccuracy, seconds: seconds,
                       imagesPerSecond: Double(seen) / max(seconds, 1e-9), steps: step)
}

/// Accuracy and mean loss of `network` (eval mode) on `data`.
public func evaluate(_ network: Sequential, on data: Dataset, normalization: Normalization = .fashionMNIST,
                     batchSize: Int = 256) throws -> (accuracy: Double, loss: Double, imagesPerSecond: Double) {
    guard data.count > 0 else { throw TrainError.emptyData("evaluation") }
    let loss = SoftmaxCrossEntropy()
    var correct = 0.0, total = 0.0
    let start = Date()
    for batch in data.batches(size: batchSize, normalization: normalization) {
        let x = Tensor(shape: batch.shape, storage: batch.images)
        let logits = network.forward(x, training: false)
        let n = Double(batch.labels.count)
        total += Double(loss.forward(logits, labels: batch.labels)) * n
        correct += Double(SoftmaxCrossEntropy.accuracy(logits, labels: batch.labels)) * n
    }
    let seconds = Date().timeIntervalSince(start)
    return (correct / Double(data.count), total / Double(data.count), Double(data.count) / max(seconds, 1e-9))
}

extension ParameterList: ParameterStore {}
