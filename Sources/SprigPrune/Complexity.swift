// The cost model of a prunable network: expected complexity C(p) and its gradient.
//
// Units are grouped (a conv's output channels, a dense layer's neurons;
// channels joined by a residual add form one tied group). A layer reads the
// units of one group (or a fixed number of inputs) and writes those of
// another (or a fixed number of outputs, e.g. the classifier). With
// independent gates, the expected number of live units of group g is
// n_g = Σ_{u∈g} p_u, and per layer
//
//   params = n_in · n_out · k² (+ n_out bias)       depthwise: n_out · k² (+ n_out)
//   MACs   = n_in · n_out · k² · pixels_out          depthwise: n_out · k² · pixels_out
//   arena  = bytes·params (weights) + bytes·max_l (n_in·pixels_in + n_out·pixels_out)
//
// The arena cost's activation term is the peak over layers of the input and
// output activations that live together; its gradient is that of the layer
// at the peak (a subgradient where two layers tie).

/// What a budget counts.
public enum CostKind: String, CaseIterable, Sendable {
    case params, macs, arena
}

/// A prunable network's structure, for the cost model.
public struct PruningSpace: Sendable {
    public struct Group: Sendable, Equatable {
        public var name: String
        public var size: Int
        public init(name: String, size: Int) {
            self.name = name
            self.size = size
        }
    }

    /// One side of a layer: a group of units, or a fixed count.
    public enum Side: Sendable, Equatable {
        case group(Int)
        case fixed(Int)
    }

    public struct Layer: Sendable, Equatable {
        public var name: String
        public var input: Side
        public var output: Side
        /// k² for convolutions, 1 for dense layers.
        public var kernelArea: Int
        public var inputPixels: Int
        public var outputPixels: Int
        public var bias: Bool
        public var depthwise: Bool

        public init(name: String, input: Side, output: Side, kernelArea: Int = 1, inputPixels: Int = 1,
                    outputPixels: Int = 1, bias: Bool = true, depthwise: Bool = false) {
            self.name = name
            self.input = input
            self.output = output
            self.kernelArea = kernelArea
            self.inputPixels = inputPixels
            self.outputPixels = outputPixels
            self.bias = bias
            self.depthwise = depthwise
        }
    }

    public var groups: [Group]
    public var layers: [Layer]
    /// Bytes per weight and per activation element for the arena cost (4 for f32, 1 for int8).
    public var bytesPerElement: Int

    public init(groups: [Group], layers: [Layer], bytesPerElement: Int = 1) {
        self.groups = groups
        self.layers = layers
        self.bytesPerElement = bytesPerElement
    }

    /// Total units; unit indices run over the groups in order.
    public var unitCount: Int { groups.reduce(0) { $0 + $1.size } }

    /// Index of the first unit of each group.
    public var offsets: [Int] {
        var o: [Int] = []
        var at = 0
        for g in groups {
            o.append(at)
            at += g.size
        }
        return o
    }

    /// The expected cost and its gradient with respect to every unit's probability.
    ///
    /// - Parameter probabilities: p_u for every unit (1 everywhere gives the full network's cost).
    public func cost(_ kind: CostKind, probabilities p: [Double]) -> (value: Double, gradient: [Double]) {
        let offsets = self.offsets
        // n_g and its derivative ∂n_g/∂p_u = 1 for u in g.
        let counts = groups.indices.map { g in (0..<groups[g].size).reduce(0.0) { $0 + p[offsets[g] + $1] } }
        func n(_ side: Side) -> Double {
            switch side {
            case .group(let g): return counts[g]
            case .fixed(let k): return Double(k)
            }
        }
        var dCount = [Double](repeating: 0, count: groups.count)  // ∂C/∂n_g
        func add(_ side: Side, _ d: Double) {
            if case .group(let g) = side { dCount[g] += d }
        }
        var total = 0.0
        var peak = -1.0
        var peakLayer = -1
        let bytes = Double(bytesPerElement)
        for (l, layer) in layers.enumerated() {
            let a = n(layer.input), b = n(layer.output), k = Double(layer.kernelArea)
            let biasTerm = layer.bias ? 1.0 : 0.0
            switch kind {
            case .params, .arena:
                let scale = kind == .arena ? bytes : 1
                if layer.depthwise {
                    total += scale * b * (k + biasTerm)
                    add(layer.output, scale * (k + biasTerm))
                } else {
                    total += scale * (a * b * k + b * biasTerm)
                    add(layer.input, scale * b * k)
                    add(layer.output, scale * (a * k + biasTerm))
                }
                if kind == .arena {
                    let live = bytes * (a * Double(layer.inputPixels) + b * Double(layer.outputPixels))
                    if live > peak {
                        peak = live
                        peakLayer = l
                    }
                }
            case .macs:
                let pixels = Double(layer.outputPixels)
                if layer.depthwise {
                    total += b * k * pixels
                    add(layer.output, k * pixels)
                } else {
                    total += a * b * k * pixels
                    add(layer.input, b * k * pixels)
                    add(layer.output, a * k * pixels)
                }
            }
        }
        if kind == .arena && peakLayer >= 0 {
            total += peak
            let layer = layers[peakLayer]
            add(layer.input, bytes * Double(layer.inputPixels))
            add(layer.output, bytes * Double(layer.outputPixels))
        }
        var gradient = [Double](repeating: 0, count: unitCount)
        for g in groups.indices {
            for u in 0..<groups[g].size { gradient[offsets[g] + u] = dCount[g] }
        }
        return (total, gradient)
    }

    /// The cost of keeping exactly `kept[g]` units of each group.
    public func cost(_ kind: CostKind, kept: [Int]) -> Double {
        var p = [Double](repeating: 0, count: unitCount)
        let offsets = self.offsets
        for g in groups.indices {
            for u in 0..<min(kept[g], groups[g].size) { p[offsets[g] + u] = 1 }
        }
        return cost(kind, probabilities: p).value
    }

    /// The full network's cost.
    public func fullCost(_ kind: CostKind) -> Double {
        cost(kind, kept: groups.map(\.size))
    }
}

/// The budget penalty λ·relu(C/C_full − b)² and its derivative with respect to C.
///
/// Example: λ 100, C/C_full 0.12, b 0.10 → 100 · 0.02² = 0.04; below the budget it is 0.
public func budgetPenalty(cost: Double, fullCost: Double, budget: Double, lambda: Double) -> (value: Double, derivative: Double) {
    let excess = cost / fullCost - budget
    guard excess > 0 else { return (0, 0) }
    return (lambda * excess * excess, 2 * lambda * excess / fullCost)
}
