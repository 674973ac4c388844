// BatchNorm2D: per-channel normalisation over every axis but the last (channels last).
//
//   x, y   [N][H][W][C]  or  [N][C]       viewed as [M][C], M = count / C
//   γ, β   [C]   ("weight", "bias", as in PyTorch)
//   running mean, running var   [C]       buffers, not parameters
//
//   train:  μ = Σ_m x / M      σ² = Σ_m (x − μ)² / M  (biased)      r = 1 / sqrt(σ² + ε)
//           x̂ = (x − μ)·r      y = γ·x̂ + β
//           running ← (1 − momentum)·running + momentum·batch   (variance unbiased: σ²·M/(M−1))
//   eval:   μ, σ² = running statistics; the same y
//
//   backward (train; the batch statistics depend on x):
//           dβ += Σ_m dy      dγ += Σ_m dy·x̂
//           dx  = γ·r · (dy − Σ_m dy / M − x̂ · Σ_m dy·x̂ / M)
//   backward (eval; statistics are constants):
//           dx  = γ·r · dy
//
// Per-channel sums are taken in Float over blocks of rows and added in Double, in a fixed block
// order, so results do not depend on the thread count. The input is saved (not x̂): backward
// recomputes x̂ from x, μ and r, which costs less than writing x̂ out.

/// Batch normalisation for channels-last activations, PyTorch semantics (momentum 0.1, ε 1e-5).
public final class BatchNorm2D: Layer {
    public let channels: Int
    public let momentum: Float
    public let epsilon: Float
    /// γ `[C]`, ones at init.
    public let weight: Parameter
    /// β `[C]`, zeros at init.
    public let bias: Parameter
    /// `[C]`, zeros at init; updated by every training-mode forward.
    public var runningMean: Tensor
    /// `[C]`, ones at init; updated by every training-mode forward with the unbiased batch variance.
    public var runningVariance: Tensor
    /// Threads for the reductions; nil uses `GEMM.defaultThreads`.
    public var threads: Int?

    private var input: Tensor?
    private var mean: [Float] = []
    private var invStd: [Float] = []
    private var trainedOnBatch = false

    public init(channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5) {
        precondition(channels > 0, "BatchNorm2D: channels must be positive, got \(channels)")
        self.channels = channels
        self.momentum = momentum
        self.epsilon = epsilon
        weight = Parameter(name: "weight", value: Tensor(shape: [channels], repeating: 1))
        bias = Parameter(name: "bias", value: Tensor(zeros: [channels]))
        runningMean = Tensor(zeros: [channels])
        runningVariance = Tensor(shape: [channels], repeating: 1)
    }

    public var parameters: [Parameter] { [weight, bias] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank >= 2 && x.shape.last == channels,
                     "BatchNorm2D.forward: expected [..., \(channels)], got \(x.shape)")
        let c = channels
        let m = x.count / c
        let threads = resolvedThreads(self.threads)
        input = x
        trainedOnBatch = training
        if training {
            precondition(m > 1, "BatchNorm2D.forward: training needs more than one value per channel, got \(x.shape)")
            let sums = x.withUnsafeBufferPointer { xp in
                let xb = xp.baseAddress!
                return channelSums(rows: m, channels: c, threads: threads) { row, acc in
                    let r = xb + row * c
                    for j in 0..<c { acc[j] += r[j] }
                }
            }
            let mu = sums.map { Float($0 / Double(m)) }
            let squares = x.withUnsafeBufferPointer { xp in
                mu.withUnsafeBufferPointer { mp in
                    let xb = xp.baseAddress!, mb = mp.baseAddress!
                    return channelSums(rows: m, channels: c, threads: threads) { row, acc in
                        let r = xb + row * c
                        for j in 0..<c {
                            let d = r[j] - mb[j]
                            acc[j] += d * d
                        }
                    }
                }
            }
            mean = mu
            invStd = squares.map { Float(1 / ($0 / Double(m) + Double(epsilon)).squareRoot()) }
            let unbias = Double(m) / Double(m - 1)
            runningMean.withUnsafeMutableBufferPointer { rm in
                runningVariance.withUnsafeMutableBufferPointer { rv in
                    for j in 0..<c {
                        rm[j] = (1 - momentum) * rm[j] + momentum * mu[j]
                        rv[j] = (1 - momentum) * rv[j] + momentum * Float(squares[j] / Double(m) * unbias)
                    }
                }
            }
        } else {
            mean = runningMean.storage
            invStd = runningVariance.storage.map { 1 / ($0 + epsilon).squareRoot() }
        }
        // y = (x − μ)·s + β with s = γ·r (centre first: no cancellation when |μ| ≫ σ)
        let gamma = weight.value.storage
        let scale = (0..<c).map { gamma[$0] * invStd[$0] }
        var y = Tensor(uninitializedShape: x.shape)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                scale.withUnsafeBufferPointer { sp in
                    mean.withUnsafeBufferPointer { mp in
                        bias.value.withUnsafeBufferPointer { bp in
                            let xb = xp.baseAddress!, yb = yp.baseAddress!
                            let sb = sp.baseAddress!, mb = mp.baseAddress!, bb = bp.baseAddress!
                            parallelFor(m, threads: threadsFor(values: m * c, threads)) { rows in
                                for row in rows {
                                    let xr = xb + row * c, yr = yb + row * c
                                    for j in 0..<c { yr[j] = (xr[j] - mb[j]) * sb[j] + bb[j] }
                                }
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let x = saved(input, "BatchNorm2D")
        precondition(dy.shape == x.shape, "BatchNorm2D.backward: expected dy \(x.shape), got \(dy.shape)")
        let c = channels
        let m = x.count / c
        let threads = resolvedThreads(self.threads)
        // Σ dy and Σ dy·x̂ per channel.
        let (sumDy, sumDyXhat) = x.withUnsafeBufferPointer { xp in
            dy.withUnsafeBufferPointer { dyp in
                mean.withUnsafeBufferPointer { mp in
                    invStd.withUnsafeBufferPointer { rp in
                        let xb = xp.baseAddress!, dyb = dyp.baseAddress!, mb = mp.baseAddress!, rb = rp.baseAddress!
                        let both = channelSums(rows: m, channels: 2 * c, threads: threads) { row, acc in
                            let xr = xb + row * c, dr = dyb + row * c
                            for j in 0..<c {
                                acc[j] += dr[j]
                                acc[c + j] += dr[j] * (xr[j] - mb[j]) * rb[j]
                            }
                        }
                        return (Array(both[0..<c]), Array(both[c...]))
                    }
                }
            }
        }
        weight.grad.withUnsafeMutableBufferPointer { g in
            for j in 0..<c { g[j] += Float(sumDyXhat[j]) }
        }
        bias.grad.withUnsafeMutableBufferPointer { g in
            for j in 0..<c { g[j] += Float(sumDy[j]) }
        }
        // dx = a·dy + b·(x − μ) + d, per channel; coefficients = [a | b | d | μ], c each:
        //   train: a = γr, b = −γr·r·Σdy·x̂/M, d = −γr·Σdy/M
        //   eval:  a = γr, b = 0, d = 0
        let gamma = weight.value.storage
        var coefficients = [Float](repeating: 0, count: 4 * c)
        for j in 0..<c {
            let gr = gamma[j] * invStd[j]
            coefficients[j] = gr
            if trainedOnBatch {
                coefficients[c + j] = Float(-Double(gr) * Double(invStd[j]) * sumDyXhat[j] / Double(m))
                coefficients[2 * c + j] = Float(-Double(gr) * sumDy[j] / Double(m))
            }
            coefficients[3 * c + j] = mean[j]
        }
        var dx = Tensor(uninitializedShape: x.shape)
        x.withUnsafeBufferPointer { xp in
            dy.withUnsafeBufferPointer { dyp in
                dx.withUnsafeMutableBufferPointer { dxp in
                    coefficients.withUnsafeBufferPointer { cp in
                        let xb = xp.baseAddress!, dyb = dyp.baseAddress!, dxb = dxp.baseAddress!
                        let ab = cp.baseAddress!, bb = ab + c, db = ab + 2 * c, mb = ab + 3 * c
                        parallelFor(m, threads: threadsFor(values: m * c, threads)) { rows in
                            for row in rows {
                                let xr = xb + row * c, dr = dyb + row * c, o = dxb + row * c
                                for j in 0..<c { o[j] = ab[j] * dr[j] + bb[j] * (xr[j] - mb[j]) + db[j] }
                            }
                        }
                    }
                }
            }
        }
        return dx
    }
}

/// Per-channel sums over `rows` rows: `accumulate(row, acc)` adds row `row` into the Float
/// block accumulator `acc` (`channels` wide). Blocks of 64 rows are summed in Float, then the
/// block sums are added in Double in block order, so the result is independent of `threads`.
@inline(__always)
func channelSums(rows: Int, channels: Int, threads: Int,
                 _ accumulate: (Int, UnsafeMutablePointer<Float>) -> Void) -> [Double] {
    let block = 64
    let blocks = (rows + block - 1) / block
    var partials = [Float](repeating: 0, count: blocks * channels)
    partials.withUnsafeMutableBufferPointer { pp in
        let partialBase = pp.baseAddress!
        parallelFor(blocks, threads: threadsFor(values: rows * channels, threads)) { range in
            for bi in range {
                let acc = partialBase + bi * channels
                for row in (bi * block)..<min(rows, (bi + 1) * block) { accumulate(row, acc) }
            }
        }
    }
    var sums = [Double](repeating: 0, count: channels)
    for bi in 0..<blocks {
        for j in 0..<channels { sums[j] += Double(partials[bi * channels + j]) }
    }
    return sums
}
