// ReLU: y = max(x, 0), elementwise.
//
//   x, y   any shape
//   forward    y = max(x, 0)                 the output is saved
//   backward   dx = dy · [y > 0]             at the kink x = 0 the derivative is taken as 0

/// Rectified linear unit. No parameters.
public final class ReLU: Layer {
    /// Threads for large tensors; nil uses `GEMM.defaultThreads`.
    public var threads: Int?

    private var output: Tensor?

    public init() {}

    public var parameters: [Parameter] { [] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var y = Tensor(uninitializedShape: x.shape)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                let src = xp.baseAddress!, dst = yp.baseAddress!
                forEachChunk(xp.count, threads: threads) { range in
                    for i in range { dst[i] = max(src[i], 0) }
                }
            }
        }
        output = y
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let y = saved(output, "ReLU")
        precondition(dy.shape == y.shape, "ReLU.backward: expected dy \(y.shape), got \(dy.shape)")
        var dx = Tensor(uninitializedShape: y.shape)
        y.withUnsafeBufferPointer { yp in
            dy.withUnsafeBufferPointer { dyp in
                dx.withUnsafeMutableBufferPointer { dxp in
                    let out = yp.baseAddress!, grad = dyp.baseAddress!, dst = dxp.baseAddress!
                    forEachChunk(yp.count, threads: threads) { range in
                        for i in range { dst[i] = out[i] > 0 ? grad[i] : 0 }
                    }
                }
            }
        }
        return dx
    }
}
