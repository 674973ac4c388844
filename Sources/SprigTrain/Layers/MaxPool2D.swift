// MaxPool2D: the maximum over each window, per channel.
//
//   x    [N][H][W][C]
//   y    [N][OH][OW][C]      OH = (H + 2·pad − K) / stride + 1, likewise OW
//   y[n][oy][ox][c] = max over valid taps x[n][oy·stride − pad + ky][ox·stride − pad + kx][c]
//                     (padding taps are skipped, never counted as 0)
//   argmax [N·OH·OW·C] Int32: flat input index of the winner (the first one on ties)
//   backward   dx = 0; dx[argmax[o]] += dy[o]        the kink (a tie) routes to the first winner

/// Max pooling over NHWC activations with a square window. No parameters.
///
/// `MaxPool2D(kernelSize: 2)` halves 28×28 to 14×14 and 7×7 to 3×3 (floor, as in PyTorch).
public final class MaxPool2D: Layer {
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    /// Threads (split by sample); nil uses `GEMM.defaultThreads`.
    public var threads: Int?

    private var inputShape: [Int]?
    private var argmax: [Int32] = []

    /// - Parameters:
    ///   - stride: defaults to `kernelSize` (non-overlapping windows).
    /// - Precondition: `0 <= padding < kernelSize`, so every window holds an input tap.
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        precondition(kernelSize > 0 && (stride ?? 1) > 0 && padding >= 0 && padding < kernelSize,
                     "MaxPool2D: bad geometry k=\(kernelSize) stride=\(stride ?? kernelSize) pad=\(padding)")
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
    }

    public var parameters: [Parameter] { [] }

    /// Output height and width for an input of `height × width`.
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernelSize) / stride + 1, (width + 2 * padding - kernelSize) / stride + 1)
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == 4, "MaxPool2D.forward: expected [N][H][W][C], got \(x.shape)")
        let n = x.shape[0], h = x.shape[1], w = x.shape[2], c = x.shape[3]
        let (oh, ow) = outputSize(height: h, width: w)
        precondition(oh > 0 && ow > 0, "MaxPool2D.forward: input \(x.shape) is smaller than the \(kernelSize)×\(kernelSize) window")
        precondition(x.count <= Int(Int32.max), "MaxPool2D.forward: input \(x.shape) too large for Int32 indices")
        inputShape = x.shape
        let outCount = n * oh * ow * c
        if argmax.count != outCount { argmax = [Int32](repeating: 0, count: outCount) }
        var y = Tensor(uninitializedShape: [n, oh, ow, c])
        let k = kernelSize, s = stride, pad = padding
        let threads = resolvedThreads(self.threads)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                argmax.withUnsafeMutableBufferPointer { ip in
                    let xb = xp.baseAddress!, yb = yp.baseAddress!, ib = ip.baseAddress!
                    parallelFor(n, threads: threadsFor(values: x.count, threads)) { samples in
                        for b in samples {
                            for oy in 0..<oh {
                                let y0 = max(0, oy * s - pad), y1 = min(h, oy * s - pad + k)
                                for ox in 0..<ow {
                                    let x0 = max(0, ox * s - pad), x1 = min(w, ox * s - pad + k)
                                    let o = ((b * oh + oy) * ow + ox) * c
                                    let first = ((b * h + y0) * w + x0) * c
                                    maxOverWindow(xb, first: first, rows: y0..<y1, columns: x0..<x1, rowStride: w * c,
                                                  channels: c, best: yb + o, index: ib + o)
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
        let shape = saved(inputShape, "MaxPool2D")
        precondition(dy.count == argmax.count, "MaxPool2D.backward: expected \(argmax.count) values, got dy \(dy.shape)")
        var dx = Tensor(uninitializedShape: shape)      // each thread zeroes its samples first
        let perSampleOut = dy.count / max(1, shape[0])
        let perSampleIn = dx.count / max(1, shape[0])
        dy.withUnsafeBufferPointer { dyp in
            argmax.withUnsafeBufferPointer { ip in
                dx.withUnsafeMutableBufferPointer { dxp in
                    let dst = dxp.baseAddress!, grad = dyp.baseAddress!, winners = ip.baseAddress!
                    // A sample's winners lie in that sample, so samples split over threads safely.
                    parallelFor(shape[0], threads: threadsFor(values: perSampleIn * shape[0], resolvedThreads(threads))) { samples in
                        (dst + samples.lowerBound * perSampleIn).update(repeating: 0, count: samples.count * perSampleIn)
                        for o in (samples.lowerBound * perSampleOut)..<(samples.upperBound * perSampleOut) {
                            dst[Int(winners[o])] += grad[o]
                        }
                    }
                }
            }
        }
        return dx
    }
}

/// Max and first arg-max over one window, for every channel: eight channels at a time in SIMD
/// registers (compare, then blend value and index), the remainder one by one.
@inline(__always)
private func maxOverWindow(_ x: UnsafePointer<Float>, first: Int, rows: Range<Int>, columns: Range<Int>, rowStride: Int,
                           channels c: Int, best: UnsafeMutablePointer<Float>, index: UnsafeMutablePointer<Int32>) {
    let lanes = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
    var j = 0
    while j + 8 <= c {
        var value = UnsafeRawPointer(x + first + j).loadUnaligned(as: SIMD8<Float>.self)
        var winner = SIMD8<Int32>(repeating: Int32(first + j)) &+ lanes
        for iy in rows {
            for ix in columns {
                let p = first + (iy - rows.lowerBound) * rowStride + (ix - columns.lowerBound) * c + j
                let v = UnsafeRawPointer(x + p).loadUnaligned(as: SIMD8<Float>.self)
                let better = v .> value
                value.replace(with: v, where: better)
                winner.replace(with: SIMD8<Int32>(repeating: Int32(p)) &+ lanes, where: better)
            }
        }
        UnsafeMutableRawPointer(best + j).storeBytes(of: value, as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(index + j).storeBytes(of: winner, as: SIMD8<Int32>.self)
        j += 8
    }
    while j < c {
        var value = x[first + j]
        var winner = first + j
        for iy in rows {
            for ix in columns {
                let p = first + (iy - rows.lowerBound) * rowStride + (ix - columns.lowerBound) * c + j
                if x[p] > value {
                    value = x[p]
                    winner = p
                }
            }
        }
        best[j] = value
        index[j] = Int32(winner)
        j += 1
    }
}
