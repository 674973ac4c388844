// SoftmaxCrossEntropy: the classification loss, fused with its softmax.
//
//   logits   [N][K]       labels [N], each in 0..<K
//   p        [N][K]       p[n] = softmax(logits[n])  (max subtracted first)
//   loss     scalar       L = −(1/N) Σ_n log p[n][label n]
//   backward dlogits = (p − onehot(labels)) / N

import Foundation

/// Mean softmax cross-entropy over a batch, with its gradient.
///
/// ```
/// let lossFn = SoftmaxCrossEntropy()
/// let loss = lossFn.forward(logits, labels: batch.labels)
/// let dLogits = lossFn.backward()
/// ```
public final class SoftmaxCrossEntropy {
    private var probabilities: Tensor?
    private var labels: [Int] = []

    public init() {}

    /// The mean loss over the batch; saves the softmax for `backward`.
    ///
    /// - Precondition: logits are `[N][K]` with `N == labels.count`, every label in `0..<K`.
    public func forward(_ logits: Tensor, labels: [Int]) -> Float {
        precondition(logits.rank == 2 && logits.shape[0] == labels.count,
                     "SoftmaxCrossEntropy.forward: expected logits [\(labels.count)][K], got \(logits.shape)")
        let n = logits.shape[0], k = logits.shape[1]
        precondition(n > 0 && k > 0, "SoftmaxCrossEntropy.forward: empty logits \(logits.shape)")
        var p = Tensor(uninitializedShape: logits.shape)
        var total = 0.0
        logits.withUnsafeBufferPointer { lp in
            p.withUnsafeMutableBufferPointer { pp in
                for s in 0..<n {
                    let label = labels[s]
                    precondition(label >= 0 && label < k, "SoftmaxCrossEntropy.forward: label \(label) of sample \(s) not in 0..<\(k)")
                    let row = lp.baseAddress! + s * k, out = pp.baseAddress! + s * k
                    var top = row[0]
                    for j in 1..<k { top = max(top, row[j]) }
                    var sum: Float = 0
                    for j in 0..<k {
                        out[j] = expf(row[j] - top)
                        sum += out[j]
                    }
                    let inverse = 1 / sum
                    for j in 0..<k { out[j] *= inverse }
                    // log p[label] = (z − max) − log Σ exp(z − max)
                    total -= Double(row[label] - top) - Double(logf(sum))
                }
            }
        }
        probabilities = p
        self.labels = labels
        return Float(total / Double(n))
    }

    /// dL/dlogits for the most recent `forward`.
    public func backward() -> Tensor {
        var g = saved(probabilities, "SoftmaxCrossEntropy")
        let n = g.shape[0], k = g.shape[1]
        let inverse = 1 / Float(n)
        g.withUnsafeMutableBufferPointer { gp in
            for s in 0..<n {
                gp[s * k + labels[s]] -= 1
            }
            for i in 0..<gp.count { gp[i] *= inverse }
        }
        return g
    }

    /// Fraction of rows whose largest logit (the first, on ties) is at the label.
    public static func accuracy(_ logits: Tensor, labels: [Int]) -> Float {
        let predicted = argmax(logits)
        precondition(predicted.count == labels.count, "SoftmaxCrossEntropy.accuracy: \(predicted.count) rows, \(labels.count) labels")
        if labels.isEmpty { return 0 }
        return Float(zip(predicted, labels).filter { $0 == $1 }.count) / Float(labels.count)
    }

    /// Index of the largest value of each row of a `[N][K]` tensor (the first, on ties).
    public static func argmax(_ logits: Tensor) -> [Int] {
        precondition(logits.rank == 2 && logits.shape[1] > 0, "SoftmaxCrossEntropy.argmax: expected [N][K], got \(logits.shape)")
        let n = logits.shape[0], k = logits.shape[1]
        return logits.withUnsafeBufferPointer { lp in
            (0..<n).map { s in
                var best = 0
                for j in 1..<k where lp[s * k + j] > lp[s * k + best] { best = j }
                return best
            }
        }
    }
}
