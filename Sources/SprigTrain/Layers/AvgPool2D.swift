// AvgPool2D: the mean over each window, per channel.
//
//   x    [N][H][W][C]
//   y    [N][OH][OW][C]      OH = (H + 2·pad − K) / stride + 1, likewise OW
//   y[n][oy][ox][c] = Σ valid taps x[...][c] / (number of valid taps)
//                     padding taps are excluded from sum and count, as in TFLite
//                     (PyTorch's count_include_pad=False); without padding it is K².
//   backward   each valid tap gets dy / (number of valid taps)

/// Average pooling over NHWC activations with a square window. No parameters.
public final class AvgPool2D: Layer {
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int

    private var inputShape: [Int]?

    /// - Parameters:
    ///   - stride: defaults to `kernelSize` (non-overlapping windows).
    /// - Precondition: `0 <= padding < kernelSize`, so every window holds an input tap.
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        precondition(kernelSize > 0 && (stride ?? 1) > 0 && padding >= 0 && padding < kernelSize,
                     "AvgPool2D: bad geometry k=\(kernelSize) stride=\(stride ?? kernelSize) pad=\(padding)")
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
        precondition(x.rank == 4, "AvgPool2D.forward: expected [N][H][W][C], got \(x.shape)")
        let n = x.shape[0], h = x.shape[1], w = x.shape[2], c = x.shape[3]
        let (oh, ow) = outputSize(height: h, width: w)
        precondition(oh > 0 && ow > 0, "AvgPool2D.forward: input \(x.shape) is smaller than the \(kernelSize)×\(kernelSize) window")
        inputShape = x.shape
        let k = kernelSize, s = stride, pad = padding
        var y = Tensor(zeros: [n, oh, ow, c])
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                let xb = xp.baseAddress!, yb = yp.baseAddress!
                for b in 0..<n {
                    for oy in 0..<oh {
                        let y0 = max(0, oy * s - pad), y1 = min(h, oy * s - pad + k)
                        for ox in 0..<ow {
                            let x0 = max(0, ox * s - pad), x1 = min(w, ox * s - pad + k)
                            let out = yb + ((b * oh + oy) * ow + ox) * c
                            for iy in y0..<y1 {
                                for ix in x0..<x1 {
                                    let row = xb + ((b * h + iy) * w + ix) * c
                                    for j in 0..<c { out[j] += row[j] }
                                }
                            }
                            let inverse = 1 / Float((y1 - y0) * (x1 - x0))
                            for j in 0..<c { out[j] *= inverse }
                        }
                    }
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let shape = saved(inputShape, "AvgPool2D")
        let n = shape[0], h = shape[1], w = shape[2], c = shape[3]
        let (oh, ow) = outputSize(height: h, width: w)
        precondition(dy.shape == [n, oh, ow, c], "AvgPool2D.backward: expected dy \([n, oh, ow, c]), got \(dy.shape)")
        let k = kernelSize, s = stride, pad = padding
        var dx = Tensor(zeros: shape)
        dy.withUnsafeBufferPointer { dyp in
            dx.withUnsafeMutableBufferPointer { dxp in
                let dyb = dyp.baseAddress!, dxb = dxp.baseAddress!
                for b in 0..<n {
                    for oy in 0..<oh {
                        let y0 = max(0, oy * s - pad), y1 = min(h, oy * s - pad + k)
                        for ox in 0..<ow {
                            let x0 = max(0, ox * s - pad), x1 = min(w, ox * s - pad + k)
                            let g = dyb + ((b * oh + oy) * ow + ox) * c
                            let inverse = 1 / Float((y1 - y0) * (x1 - x0))
                            for iy in y0..<y1 {
                                for ix in x0..<x1 {
                                    let row = dxb + ((b * h + iy) * w + ix) * c
                                    for j in 0..<c { row[j] += g[j] * inverse }
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx
    }
}
