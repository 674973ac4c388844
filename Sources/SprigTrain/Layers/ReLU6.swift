// ReLU6: y = min(max(x, 0), 6), elementwise (MobileNet's activation; the runtime's `.relu6` clamp).
//
//   x, y   any shape
//   forward    y = min(max(x, 0), 6)         the output is saved
//   backward   dx = dy · [0 < y < 6]
//
// At the two kinks the derivative is taken as 0: at exactly x = 0 (as ReLU does) and at exactly
// x = 6, so the gradient flows only strictly inside (0, 6), as PyTorch's hardtanh backward does.
// 0 < y < 6 holds exactly when 0 < x < 6, so the output alone decides it.

/// Rectified linear unit capped at 6. No parameters.
public final class ReLU6: Layer {
    /// The cap.
    public static let upperBound: Float = 6
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
                    for i in range { dst[i] = min(max(src[i], 0), ReLU6.upperBound) }
                }
            }
        }
        output = y
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let y = saved(output, "ReLU6")
        precondition(dy.shape == y.shape, "ReLU6.backward: expected dy \(y.shape), got \(dy.shape)")
        var dx = Tensor(uninitializedShape: y.shape)
        y.withUnsafeBufferPointer { yp in
            dy.withUnsafeBufferPointer { dyp in
                dx.withUnsafeMutableBufferPointer { dxp in
                    let out = yp.baseAddress!, grad = dyp.baseAddress!, dst = dxp.baseAddress!
                    forEachChunk(yp.count, threads: threads) { range in
                        for i in range { dst[i] = out[i] > 0 && out[i] < ReLU6.upperBound ? grad[i] : 0 }
                    }
                }
            }
        }
        return dx
    }
}
