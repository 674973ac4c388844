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

/// The 0.975 quantile of Student's t with `degreesOfFreedom` degrees of freedom: the factor of a
/// two-sided 95% confidence interval.
///
/// df 1…30 from the printed table (3 decimals: 1 → 12.706, 2 → 4.303, 9 → 2.262, 30 → 2.042);
/// above 30 the Cornish–Fisher expansion in 1/df about z = 1.959964 (four terms; 40 → 2.0211,
/// 60 → 2.0003, 120 → 1.9799; the expansion alone is within 1e-5 of the exact quantile from
/// df 10 up), tending to z. Before, every df above 30 took z, an interval 4% too narrow at 31.
///
/// - Precondition: `degreesOfFreedom >= 1`.
public func studentT975(degreesOfFreedom df: Int) -> Double {
    precondition(df >= 1, "studentT975: degrees of freedom must be at least 1, got \(df)")
    let table: [Double] = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
                           2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
                           2.052, 2.048, 2.045, 2.042]
    if df <= table.count { return table[df - 1] }
    let z = 1.959963984540054, v = Double(df)
    let z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z, z9 = z7 * z * z
    let g1 = (z3 + z) / 4
    let g2 = (5 * z5 + 16 * z3 + 3 * z) / 96
    let g3 = (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / 384
    let g4 = (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / 92160
    return z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v)
}

/// Mean and the half-width of its 95% confidence interval (Student t, n − 1 degrees of freedom;
/// one value: half-width 0; none: NaN).
///
/// Example: [0.7, 0.8, 0.9] → mean 0.8, s = 0.1, half-width t(0.975, 2) · 0.1/√3 = 4.303 · 0.0577 ≈ 0.248.
public func meanAndCI(_ values: [Double]) -> (mean: Double, ci: Double) {
    guard !values.isEmpty else { return (.nan, .nan) }
    let n = values.count
    let mean = values.reduce(0, +) / Double(n)
    guard n > 1 else { return (mean, 0) }
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)
    return (mean, studentT975(degreesOfFreedom: n - 1) * (variance / Double(n)).squareRoot())
}

/// The paired difference `a − b` over the same episodes: the mean of the per-episode differences
/// `a[i] − b[i]` and the half-width of its 95% CI (Student t over those n differences; NaN for
/// one difference, which gives no interval), or nil when the two do not pair up (different
/// counts, or none).
///
/// Example: a = [0.80, 0.75, 0.90, 0.70], b = [0.78, 0.70, 0.86, 0.69] → differences
/// [0.02, 0.05, 0.04, 0.01], mean 0.03, s = 0.018257, half-width 3.182 · 0.018257/2 = 0.029047:
/// 0.030 ± 0.029, the interval (0.001, 0.059) above 0 although the two means' own CIs overlap.
public func pairedDifference(_ a: [Double], minus b: [Double]) -> (mean: Double, ci: Double, n: Int)? {
    guard a.count == b.count, !a.isEmpty else { return nil }
    let (mean, ci) = meanAndCI(zip(a, b).map { $0 - $1 })
    return (mean, a.count > 1 ? ci : .nan, a.count)
}
