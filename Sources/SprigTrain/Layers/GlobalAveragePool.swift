// GlobalAveragePool: the mean over the spatial axes.
//
//   x    [N][H][W][C]
//   y    [N][C]            y[n][c] = Σ_{h,w} x[n][h][w][c] / (H·W)
//   backward   dx[n][h][w][c] = dy[n][c] / (H·W)

/// Spatial mean of NHWC activations, `[N][H][W][C] -> [N][C]`. No parameters.
public final class GlobalAveragePool: Layer {
    private var inputShape: [Int]?

    public init() {}

    public var parameters: [Parameter] { [] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == 4, "GlobalAveragePool.forward: expected [N][H][W][C], got \(x.shape)")
        inputShape = x.shape
        let n = x.shape[0], hw = x.shape[1] * x.shape[2], c = x.shape[3]
        let inverse = 1 / Float(hw)
        var y = Tensor(zeros: [n, c])
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                for s in 0..<n {
                    let out = yp.baseAddress! + s * c
                    for p in 0..<hw {
                        let row = xp.baseAddress! + (s * hw + p) * c
                        for j in 0..<c { out[j] += row[j] }
                    }
                    for j in 0..<c { out[j] *= inverse }
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let shape = saved(inputShape, "GlobalAveragePool")
        let n = shape[0], hw = shape[1] * shape[2], c = shape[3]
        precondition(dy.shape == [n, c], "GlobalAveragePool.backward: expected dy \([n, c]), got \(dy.shape)")
        let inverse = 1 / Float(hw)
        var dx = Tensor(uninitializedShape: shape)
        dy.withUnsafeBufferPointer { dyp in
            dx.withUnsafeMutableBufferPointer { dxp in
                for s in 0..<n {
                    let g = dyp.baseAddress! + s * c
                    for p in 0..<hw {
                        let row = dxp.baseAddress! + (s * hw + p) * c
                        for j in 0..<c { row[j] = g[j] * inverse }
                    }
                }
            }
        }
        return dx
    }
}
