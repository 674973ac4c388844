// Few-shot retraining on the host, for the transfer experiment's re-initialised arm: a fresh
// network of the same description (He init), SGD momentum 0.9 with cosine decay for `steps`
// full-batch steps over the shots (±1-pixel shifts), then the test images. The inherited arm
// uses the device runtime's own `head` (SprigPipelines/FewShotEpisodes.swift); there is no
// second implementation of it on the host.

import Foundation
import SprigTrain

/// Trains a freshly initialised `architecture` (outputs = `classes`) on the shots and returns its
/// accuracy on `test`.
public func retrainAccuracy(_ architecture: Architecture, classes: Int, shots: Dataset, test: Dataset, steps: Int,
                            learningRate: Float, seed: UInt64) throws -> Double {
    var a = architecture
    a.classes = classes
    let network = try buildNetwork(a, seed: seed)
    var options = TrainOptions()
    options.batchSize = shots.count
    options.epochs = steps
    options.learningRate = learningRate
    options.warmupFraction = 0.1
    options.augmentShift = architecture.isConvolutional ? 1 : 0
    options.normalization = architecture.normalization
    options.seed = seed
    _ = try train(network, on: shots, options: options)
    return try evaluate(network, on: test, normalization: architecture.normalization).accuracy
}

/// Mean and the half-width of its 95% confidence interval (Student t, n − 1 degrees of freedom).
///
/// Example: [0.7, 0.8, 0.9] → mean 0.8, s = 0.1, half-width t(0.975, 2) · 0.1/√3 = 4.303 · 0.0577 ≈ 0.248.
public func meanAndCI(_ values: [Double]) -> (mean: Double, ci: Double) {
    guard !values.isEmpty else { return (.nan, .nan) }
    let n = values.count
    let mean = values.reduce(0, +) / Double(n)
    guard n > 1 else { return (mean, 0) }
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)
    // t(0.975, df) for df = 1…30, then the normal value.
    let t: [Double] = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
                       2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
                       2.052, 2.048, 2.045, 2.042]
    let critical = n - 1 <= t.count ? t[n - 2] : 1.960
    return (mean, critical * (variance / Double(n)).squareRoot())
}
