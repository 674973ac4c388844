// Add: the residual join, y = a + b.
//
//   a, b, y   the same shape
//   backward  da = dy, db = dy
//
// Two inputs, so the main API is `forward(_:_:)` / `backward(_:) -> (Tensor, Tensor)`.
// A residual block composed by hand:
//
//   let h = relu2.forward(bn2.forward(conv2.forward(relu1.forward(bn1.forward(conv1.forward(x))))))
//   let y = add.forward(h, x)
//   ...
//   let (dh, dxShortcut) = add.backward(dy)
//   let dxBody = conv1.backward(bn1.backward(relu1.backward(conv2.backward(bn2.backward(relu2.backward(dh))))))
//   dx = dxBody + dxShortcut   (Add.sum)

/// Elementwise sum of two tensors of the same shape. No parameters.
public final class Add {
    private var shape: [Int]?

    public init() {}

    public func forward(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "Add.forward: shapes differ, \(a.shape) and \(b.shape)")
        shape = a.shape
        return Add.sum(a, b)
    }

    /// Gradients with respect to both inputs (each is dy).
    public func backward(_ dy: Tensor) -> (Tensor, Tensor) {
        let s = saved(shape, "Add")
        precondition(dy.shape == s, "Add.backward: expected dy \(s), got \(dy.shape)")
        return (dy, dy)
    }

    /// `a + b` elementwise, for joining gradients of a branched graph.
    ///
    /// - Precondition: equal shapes.
    public static func sum(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "Add.sum: shapes differ, \(a.shape) and \(b.shape)")
        var y = Tensor(uninitializedShape: a.shape)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                y.withUnsafeMutableBufferPointer { yp in
                    for i in 0..<ap.count { yp[i] = ap[i] + bp[i] }
                }
            }
        }
        return y
    }
}
