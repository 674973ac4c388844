// Sequential: a chain of layers, y = f_k(...f_2(f_1(x))), backward in reverse.
//
//   parameters are named "<index>.<name>" (e.g. "0.weight", "1.bias"), as PyTorch's
//   nn.Sequential names them, so checkpoints line up with a PyTorch model built the same way.

/// Layers applied in order. Itself a `Layer`, so chains nest.
public final class Sequential: Layer {
    public var layers: [any Layer]

    public init(_ layers: [any Layer]) { self.layers = layers }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var h = x
        for layer in layers { h = layer.forward(h, training: training) }
        return h
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var g = dy
        for layer in layers.reversed() { g = layer.backward(g) }
        return g
    }

    public var parameters: [Parameter] { layers.flatMap { $0.parameters } }

    /// Every parameter with its dotted path, e.g. `("0.weight", p)`; nested chains add their index.
    public var namedParameters: [(name: String, parameter: Parameter)] {
        layers.enumerated().flatMap { index, layer -> [(name: String, parameter: Parameter)] in
            if let chain = layer as? Sequential {
                return chain.namedParameters.map { ("\(index).\($0.name)", $0.parameter) }
            }
            return layer.parameters.map { ("\(index).\($0.name)", $0) }
        }
    }
}
