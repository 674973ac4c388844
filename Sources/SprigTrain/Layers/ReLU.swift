// ReLU: y = max(x, 0), elementwise.
//
//   x, y   any shape
//   forward    y = max(x, 0)                 the output is saved
//   backward   dx = dy · [y > 0]             at the kink x = 0 the derivative is taken as 0

/// Rectified linear unit. No parameters.
public final class ReLU: Layer {
    private var output: Tensor?

    public init() {}

    public var parameters: [Parameter] { [] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var y = Tensor(uninitializedShape: x.shape)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                for i in 0..<xp.count { yp[i] = max(xp[i], 0) }
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
                    for i in 0..<yp.count { dxp[i] = yp[i] > 0 ? dyp[i] : 0 }
                }
            }
        }
        return dx
    }
}
