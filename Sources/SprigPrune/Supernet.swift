// Any described network as a gated supernet, and the extraction of a pruned sub-network.
//
// A gated view shares the network's layers and inserts a `Gate` where the network's
// plan puts one (NetworkPlan.gatesAfter): after each group's writer and the BatchNorm
// and activation that follow it, after each depthwise conv (tied to its input's
// group), and after each residual block (its add's group). So z·unit is what every
// later layer reads. For the cnn preset:
//
//   conv_i → BN → ReLU → [g_i] (→ MaxPool)   i = 1 … 4   → GAP → fc
//
// The gate columns follow the plan's group order. A tied group is gated in every
// place it appears with the same column, so dL/dz sums over them.
//
// Extraction: with hard 0/1 gates, a dropped unit is exactly zero wherever it is
// read, so slicing it out of every tensor that writes or reads it (conv/dense
// weights along their input and output axes, depthwise weights along their channel
// axis, biases, BatchNorm γ, β and running statistics) gives a smaller network that
// computes the same function. A Dense after Flatten reads each channel at every
// pixel: its input columns p·C + c are kept for every pixel p of a kept channel c.

import SprigTrain

/// Which unit groups a parametrised layer reads and writes (nil: a fixed side, not pruned).
struct LayerGroups {
    var input: Int?
    var output: Int?
    /// Input values per input channel (a Dense after Flatten), else 1.
    var spread: Int = 1
    var depthwise = false
}

/// A described network whose unit groups are gated, for DAP and the baselines.
public final class GatedSupernet: FeatureGatedNetwork {
    public let network: Sequential
    public let architecture: Architecture
    public let pruningSpace: PruningSpace
    /// The groups each parametrised layer touches, by its checkpoint path ("3.body.0").
    let layerGroups: [String: LayerGroups]
    private let view: Sequential
    /// The view without its last layer when that is the Dense classifier: the features' network.
    private let body: Sequential?
    private let gates: [(gate: Gate, group: Int)]
    private let offsets: [Int]

    public init(network: Sequential, architecture: Architecture) throws {
        self.network = network
        self.architecture = architecture
        let plan = try architecture.plan()
        pruningSpace = SprigPrune.pruningSpace(plan)
        offsets = pruningSpace.offsets
        var groups: [String: LayerGroups] = [:]
        for l in plan.layers {
            var isDepthwise = false
            if case .depthwise = l.kind { isDepthwise = true }
            groups[l.path] = LayerGroups(input: l.inputGroup, output: l.outputGroup, spread: l.spread, depthwise: isDepthwise)
        }
        layerGroups = groups
        var gates: [(gate: Gate, group: Int)] = []
        func gated(_ chain: Sequential, prefix: String) throws -> Sequential {
            var layers: [any Layer] = []
            for (i, layer) in chain.layers.enumerated() {
                let path = "\(prefix)\(i)"
                if let block = layer as? Residual {
                    layers.append(Residual(body: try gated(block.body, prefix: path + ".body."),
                                           shortcut: try gated(block.shortcut, prefix: path + ".shortcut."),
                                           activation: block.activation))
                } else if let inner = layer as? Sequential {
                    layers.append(try gated(inner, prefix: path + "."))
                } else {
                    layers.append(layer)
                }
                if let g = plan.gatesAfter[path] {
                    let gate = Gate()
                    gates.append((gate, g))
                    layers.append(gate)
                }
            }
            return Sequential(layers)
        }
        view = try gated(network, prefix: "")
        body = view.layers.last is Dense ? Sequential(Array(view.layers.dropLast())) : nil
        self.gates = gates
    }

    public var parameters: [Parameter] { network.parameters }

    /// Logits for gates `[N][units]` (sampled per sample) or `[units]` (shared: masks, scales).
    public func forward(_ x: Tensor, gates z: Tensor, training: Bool) -> Tensor {
        setGates(z)
        return view.forward(x, training: training)
    }

    /// Accumulates the weights' gradients; returns dL/dz in the shape of the gates of the last forward.
    public func backward(_ dLogits: Tensor) -> Tensor {
        _ = view.backward(dLogits)
        return gateGradients()
    }

    /// Whether the last layer is a Dense classifier, so that ``forwardFeatures(_:gates:training:)`` exists.
    public var hasFeatureLayer: Bool { body != nil }

    /// The classifier's input `[N][F]` for gates `[N][units]` or `[units]`.
    /// - Precondition: ``hasFeatureLayer``.
    public func forwardFeatures(_ x: Tensor, gates z: Tensor, training: Bool) -> Tensor {
        guard let body else { preconditionFailure("GatedSupernet: the last layer is not a Dense classifier") }
        setGates(z)
        return body.forward(x, training: training)
    }

    /// From dL/dfeatures: accumulates the weights' gradients below the classifier; returns dL/dz.
    public func backwardFeatures(_ dFeatures: Tensor) -> Tensor {
        guard let body else { preconditionFailure("GatedSupernet: the last layer is not a Dense classifier") }
        _ = body.backward(dFeatures)
        return gateGradients()
    }

    private func setGates(_ z: Tensor) {
        let units = pruningSpace.unitCount
        let perSample = z.rank == 2
        precondition(z.shape.last == units, "GatedSupernet: gates must have \(units) columns, got \(z.shape)")
        let rows = perSample ? z.shape[0] : 1
        for (gate, g) in gates {
            let size = pruningSpace.groups[g].size, start = offsets[g]
            var slice = Tensor(zeros: perSample ? [rows, size] : [size])
            for r in 0..<rows {
                for u in 0..<size { slice.storage[r * size + u] = z.storage[r * units + start + u] }
            }
            gate.gate = slice
        }
    }

    private func gateGradients() -> Tensor {
        let units = pruningSpace.unitCount
        guard let first = gates.first?.gate.gateGradient else { return Tensor(zeros: [units]) }
        let perSample = first.rank == 2
        let rows = perSample ? first.shape[0] : 1
        var dz = Tensor(zeros: perSample ? [rows, units] : [units])
        for (gate, g) in gates {
            guard let d = gate.gateGradient else { continue }
            let size = pruningSpace.groups[g].size, start = offsets[g]
            for r in 0..<rows {
                for u in 0..<size { dz.storage[r * units + start + u] += d.storage[r * size + u] }
            }
        }
        return dz
    }

    /// The unit indices kept in each group.
    public func keptIndices(_ keep: [Bool]) -> [[Int]] {
        pruningSpace.groups.indices.map { g in
            (0..<pruningSpace.groups[g].size).filter { keep[offsets[g] + $0] }
        }
    }

    /// The physically smaller network that keeps the units marked in `keep`, with sliced weights.
    ///
    /// In eval mode it computes what `forward(x, gates: keep as 0/1, training: false)` computes.
    /// - Throws: when a group would keep no unit.
    public func extract(keep: [Bool]) throws -> (network: Sequential, architecture: Architecture) {
        precondition(keep.count == pruningSpace.unitCount, "extract: \(keep.count) flags for \(pruningSpace.unitCount) units")
        let kept = keptIndices(keep)
        for (g, k) in kept.enumerated() where k.isEmpty {
            throw PruneError.emptyGroup(pruningSpace.groups[g].name)
        }
        let smaller = try architecture.withWidths(kept.map(\.count))
        let network = try buildNetwork(smaller, seed: 0)
        let source = namedTensors(self.network), target = namedTensors(network)
        precondition(source.map(\.name) == target.map(\.name), "extract: the pruned network's tensors differ in name")
        for (from, to) in zip(source, target) {
            let path = String(from.name[..<from.name.lastIndex(of: ".")!])
            let groups = layerGroups[path] ?? LayerGroups()
            let output = groups.output.map { kept[$0] }
            var input = groups.input.map { kept[$0] }
            if let channels = input, groups.spread > 1, let g = groups.input {
                // Flattened [H][W][C]: column p·C + c for every pixel p of a kept channel c.
                let c = pruningSpace.groups[g].size
                input = (0..<groups.spread).flatMap { p in channels.map { p * c + $0 } }
            }
            let t = from.get()
            let sliced: Tensor
            switch t.rank {
            case 4: sliced = slice(t, axes: [2: input, 3: output])  // conv [KH][KW][Cin][Cout]
            case 3: sliced = slice(t, axes: [2: output])            // depthwise [KH][KW][C]
            case 2: sliced = slice(t, axes: [0: output, 1: input])  // dense [Out][In]
            default: sliced = slice(t, axes: [0: output])           // bias, BatchNorm vectors
            }
            precondition(sliced.shape == to.get().shape, "extract: \(from.name) sliced to \(sliced.shape), expected \(to.get().shape)")
            to.set(sliced)
        }
        return (network, smaller)
    }
}

/// `t` restricted to the given indices along some axes (nil: the whole axis).
func slice(_ t: Tensor, axes: [Int: [Int]?]) -> Tensor {
    let picks: [[Int]] = t.shape.indices.map { axis in
        if let chosen = axes[axis], let indices = chosen { return indices }
        return Array(0..<t.shape[axis])
    }
    let shape = picks.map(\.count)
    var out = Tensor(zeros: shape)
    var strides = [Int](repeating: 1, count: t.rank)
    for axis in stride(from: t.rank - 2, through: 0, by: -1) { strides[axis] = strides[axis + 1] * t.shape[axis + 1] }
    var index = [Int](repeating: 0, count: t.rank)
    for o in 0..<out.count {
        var offset = 0
        for axis in 0..<t.rank { offset += picks[axis][index[axis]] * strides[axis] }
        out.storage[o] = t.storage[offset]
        var axis = t.rank - 1
        while axis >= 0 {
            index[axis] += 1
            if index[axis] < shape[axis] { break }
            index[axis] = 0
            axis -= 1
        }
    }
    return out
}
