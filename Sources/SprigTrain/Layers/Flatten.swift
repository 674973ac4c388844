// Flatten: [N][d1]...[dk] -> [N][d1·...·dk]. No data moves.
//
//   x    [N][H][W][C]   (any rank ≥ 1)
//   y    [N][H·W·C]     NHWC order: (h, w, c) with c fastest, as the device runtime flattens
//   backward   dx = dy reshaped to the input shape

/// Collapses every axis after the first. No parameters.
public final class Flatten: Layer {
    private var inputShape: [Int]?

    public init() {}

    public var parameters: [Parameter] { [] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank >= 1, "Flatten.forward: needs a batch axis, got a scalar")
        inputShape = x.shape
        return x.reshaped([x.shape[0], x.shape.dropFirst().reduce(1, *)])
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let shape = saved(inputShape, "Flatten")
        precondition(dy.count == Tensor.elementCount(shape), "Flatten.backward: expected \(shape) values, got dy \(dy.shape)")
        return dy.reshaped(shape)
    }
}
