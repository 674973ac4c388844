// Residual: y = act(body(x) + shortcut(x)), the basic block of `resnet` and, with no activation,
// MobileNetV2's inverted residual.
//
//   x       [N][H][W][Cin]
//   body    a Sequential ending without activation     → [N][H'][W'][C]
//   shortcut a Sequential (1×1 projection + BN) or empty (identity) → [N][H'][W'][C]
//   y       act(body(x) + shortcut(x)),  act = ReLU (the default) or the identity (`.none`)
//
//   backward  dy' = dy · [y > 0] (ReLU) or dy (none);  dx = body.backward(dy') + shortcut.backward(dy')  (or + dy')
//
// The channels of body's output and of the shortcut are tied: DAP prunes them as one group.

/// A residual block with a ReLU after the add, or nothing after it.
public final class Residual: Layer {
    /// What follows the add.
    public enum Activation: Sendable, Equatable {
        /// `max(·, 0)`: the resnet basic block.
        case relu
        /// The identity: an inverted residual (1×1 expand, depthwise, 1×1 linear project).
        case none
    }

    public let body: Sequential
    public let shortcut: Sequential
    public let activation: Activation
    private var output: Tensor?

    public init(body: Sequential, shortcut: Sequential = Sequential([]), activation: Activation = .relu) {
        self.body = body
        self.shortcut = shortcut
        self.activation = activation
    }

    public var parameters: [Parameter] { body.parameters + shortcut.parameters }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let a = body.forward(x, training: training)
        let b = shortcut.layers.isEmpty ? x : shortcut.forward(x, training: training)
        var y = Add.sum(a, b)
        if activation == .relu {
            for i in y.storage.indices where y.storage[i] < 0 { y.storage[i] = 0 }
        }
        output = y
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var g = dy
        if activation == .relu, let y = output {
            for i in g.storage.indices where y.storage[i] <= 0 { g.storage[i] = 0 }
        }
        let dxBody = body.backward(g)
        let dxShort = shortcut.layers.isEmpty ? g : shortcut.backward(g)
        return Add.sum(dxBody, dxShort)
    }
}
