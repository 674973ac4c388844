// Few-shot adaptation on the host, for the transfer experiment: the device's `head` method on
// features computed by the trainer (so thousands of episodes stay cheap), and retraining a
// re-initialised architecture from the shots alone.
//
//   features   the input of the last Dense (after global average pooling), eval mode
//   head       the runtime's defaults (docs/finetune.md): rows imprinted as 10 · normalised class
//              mean of the L2-normalised features, then softmax cross-entropy on W·f + b with
//              Adam (lr 0.05, batch 32, 30 epochs); shots augmented with their four 1-pixel shifts
//   retrain    a fresh network of the same widths (He init), SGD momentum 0.9 with cosine
//              decay for `steps` full-batch steps over the shots (±1-pixel shifts), then the
//              test images

import Foundation
import SprigTrain

/// Penultimate features `[N][D]` of `images` (NHWC, normalised, each of `shape` [H, W, C])
/// through all layers but the last.
public func penultimateFeatures(_ network: Sequential, images: [Float], count: Int, shape: [Int],
                                batch: Int = 256) -> (values: [Float], dim: Int) {
    let trunk = Sequential(Array(network.layers.dropLast()))
    let size = shape.reduce(1, *)
    var out: [Float] = []
    var dim = 0
    var start = 0
    while start < count {
        let n = min(batch, count - start)
        let x = Tensor(shape: [n] + shape, storage: Array(images[(start * size)..<((start + n) * size)]))
        let f = trunk.forward(x, training: false)
        dim = f.count / n
        out += f.storage
        start += n
    }
    return (out, dim)
}

/// The runtime's `head` defaults, for host-side episodes.
public struct HeadSettings: Sendable {
    public var epochs = 30
    public var learningRate: Float = 0.05
    public var batchSize = 32
    public var scale: Float = 10
    public var augment = 1

    public init() {}
}

/// Rows normalised to unit length (zero rows stay zero).
func normalizedRows(_ v: [Float], dim: Int) -> [Float] {
    var out = v
    for r in 0..<(v.count / dim) {
        var s: Float = 0
        for j in 0..<dim { s += v[r * dim + j] * v[r * dim + j] }
        let inv = s > 0 ? 1 / s.squareRoot() : 0
        for j in 0..<dim { out[r * dim + j] *= inv }
    }
    return out
}

/// Imprints a cosine classifier from shot features, trains it, and returns the accuracy on the
/// query features. Features are normalised here. Deterministic for a seed.
public func headAccuracy(shots: [Float], shotLabels: [Int], queries: [Float], queryLabels: [Int], dim: Int, classes: Int,
                         settings: HeadSettings, seed: UInt64) -> Double {
    let f = normalizedRows(shots, dim: dim), q = normalizedRows(queries, dim: dim)
    let n = shotLabels.count
    // Imprint: W_c = scale · normalise(mean of class c's features).
    var w = [Float](repeating: 0, count: classes * dim)
    for i in 0..<n { for j in 0..<dim { w[shotLabels[i] * dim + j] += f[i * dim + j] } }
    w = normalizedRows(w, dim: dim).map { $0 * settings.scale }
    var b = [Float](repeating: 0, count: classes)
    var mW = [Float](repeating: 0, count: w.count), vW = mW, mB = b, vB = b
    var rng = SprigRNG(seed: seed)
    var order = Array(0..<n)
    var step = 0
    var gW = [Float](repeating: 0, count: w.count), gB = b
    var z = [Float](repeating: 0, count: classes)
    for _ in 0..<settings.epochs {
        for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        var start = 0
        while start < n {
            let batch = order[start..<min(n, start + settings.batchSize)]
            for k in gW.indices { gW[k] = 0 }
            for k in gB.indices { gB[k] = 0 }
            for i in batch {
                var top: Float = -.infinity
                for c in 0..<classes {
                    var s = b[c]
                    for j in 0..<dim { s += w[c * dim + j] * f[i * dim + j] }
                    z[c] = s
                    top = max(top, s)
                }
                var sum: Float = 0
                for c in 0..<classes { z[c] = exp(z[c] - top); sum += z[c] }
                for c in 0..<classes {
                    let d = (z[c] / sum - (c == shotLabels[i] ? 1 : 0)) / Float(batch.count)
                    gB[c] += d
                    for j in 0..<dim { gW[c * dim + j] += d * f[i * dim + j] }
                }
            }
            step += 1
            adam(&w, gW, &mW, &vW, step: step, lr: settings.learningRate)
            adam(&b, gB, &mB, &vB, step: step, lr: settings.learningRate)
            start += settings.batchSize
        }
    }
    var correct = 0
    for i in 0..<queryLabels.count {
        var best = 0
        var bestScore: Float = -.infinity
        for c in 0..<classes {
            var s = b[c]
            for j in 0..<dim { s += w[c * dim + j] * q[i * dim + j] }
            if s > bestScore { bestScore = s; best = c }
        }
        if best == queryLabels[i] { correct += 1 }
    }
    return Double(correct) / Double(max(queryLabels.count, 1))
}

/// One Adam step (β 0.9, 0.999, ε 1e-8).
func adam(_ theta: inout [Float], _ g: [Float], _ m: inout [Float], _ v: inout [Float], step: Int, lr: Float) {
    let c1 = 1 - pow(0.9, Float(step)), c2 = 1 - pow(0.999, Float(step))
    for k in theta.indices {
        m[k] = 0.9 * m[k] + 0.1 * g[k]
        v[k] = 0.999 * v[k] + 0.001 * g[k] * g[k]
        theta[k] -= lr * (m[k] / c1) / ((v[k] / c2).squareRoot() + 1e-8)
    }
}

/// `images` with its four `shift`-pixel shifts appended after each image (`[N·5][H][W][C]`),
/// labels repeated. Pixels shifted in from outside take the normalised value of byte 0.
public func withShifts(_ data: Dataset, indices: [Int], labels: [Int], shift: Int,
                       normalization: Normalization) -> (images: [Float], labels: [Int]) {
    let plain = data.makeBatch(indices: indices, normalization: normalization).images
    guard shift > 0 else { return (plain, labels) }
    let (h, w, c) = (data.rows, data.cols, data.channels)
    let size = h * w * c
    let background = (0..<c).map { normalization.apply(0, channel: $0) }
    var images: [Float] = [], out: [Int] = []
    for (k, label) in labels.enumerated() {
        let src = Array(plain[(k * size)..<((k + 1) * size)])
        images += src
        out.append(label)
        for (dy, dx) in [(0, shift), (0, -shift), (shift, 0), (-shift, 0)] {
            var moved = [Float](repeating: 0, count: size)
            for y in 0..<h {
                for x in 0..<w {
                    let (sy, sx) = (y - dy, x - dx)
                    let inside = sy >= 0 && sy < h && sx >= 0 && sx < w
                    for ch in 0..<c { moved[(y * w + x) * c + ch] = inside ? src[(sy * w + sx) * c + ch] : background[ch] }
                }
            }
            images += moved
            out.append(label)
        }
    }
    return (images, out)
}

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
