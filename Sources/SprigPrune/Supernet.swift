// The named networks as gated supernets, and the extraction of a pruned sub-network.
//
// A gated view shares the network's layers and inserts a `Gate` after the
// activation of each unit group (the ReLU that follows a conv + BN or a hidden
// Dense), so z·unit is what every later layer reads:
//
//   mlp     Flatten → fc1 → ReLU → [g0] → fc2 → ReLU → [g1] → fc3
//   cnn     conv_i → BN → ReLU → [g_i] (→ MaxPool)   i = 1 … 4   → GAP → fc
//   resnet  stem → BN → ReLU → [g0]
//           stage s: body = conv1 → BN → ReLU → [inner_s] → conv2 → BN ;
//                    ReLU(body + shortcut) → [out_s]                        (out_1 = g0: tied)
//
// The gate columns follow `pruningSpace(for:)`'s unit order. A tied group is
// gated in every place it appears with the same column, so dL/dz sums over them.
//
// Extraction: with hard 0/1 gates, a dropped unit is exactly zero wherever it is
// read, so slicing it out of every tensor that writes or reads it (conv/dense
// weights along their input and output axes, biases, BatchNorm γ, β and running
// statistics) gives a smaller network that computes the same function.

import SprigTrain

/// Which unit groups a parametrised layer reads and writes (nil: a fixed side, not pruned).
struct LayerGroups {
    var input: Int?
    var output: Int?
}

/// A named network whose unit groups are gated, for DAP and the baselines.
public final class GatedSupernet: GatedNetwork {
    public let network: Sequential
    public let architecture: Architecture
    public let pruningSpace: PruningSpace
    /// The groups each parametrised layer touches, by its checkpoint path ("3.body.0").
    let layerGroups: [String: LayerGroups]
    private let view: Sequential
    private let gates: [(gate: Gate, group: Int)]
    private let offsets: [Int]

    public init(network: Sequential, architecture: Architecture) throws {
        self.network = network
        self.architecture = architecture
        pruningSpace = try SprigPrune.pruningSpace(for: architecture)
        offsets = pruningSpace.offsets
        var gates: [(gate: Gate, group: Int)] = []
        func gate(_ group: Int) -> Gate {
            let g = Gate()
            gates.append((g, group))
            return g
        }
        var groups: [String: LayerGroups] = [:]
        let l = network.layers
        switch architecture.family {
        case "mlp":
            view = Sequential([l[0], l[1], l[2], gate(0), l[3], l[4], gate(1), l[5]])
            groups = ["1": .init(input: nil, output: 0), "3": .init(input: 0, output: 1), "5": .init(input: 1, output: nil)]
        case "cnn":
            var layers: [any Layer] = []
            for (i, layer) in l.enumerated() {
                layers.append(layer)
                if layer is ReLU { layers.append(gate(gates.count)) }
                if layer is Conv2D {
                    let block = i / 4
                    groups["\(i)"] = .init(input: block == 0 ? nil : block - 1, output: block)
                    groups["\(i + 1)"] = .init(input: block, output: block)
                }
            }
            groups["\(l.count - 1)"] = .init(input: 3, output: nil)
            view = Sequential(layers)
        case "resnet":
            var layers: [any Layer] = [l[0], l[1], l[2], gate(0)]
            groups["0"] = .init(input: nil, output: 0)
            groups["1"] = .init(input: 0, output: 0)
            // Groups per stage: (inner, output), as in pruningSpace(for:).
            let stageGroups = [(1, 0), (2, 3), (4, 5)]
            var previous = 0
            for s in 0..<3 {
                guard let block = l[3 + s] as? Residual else {
                    throw NetworkError.checkpoint(path: "architecture", detail: "resnet layer \(3 + s) is not a residual block")
                }
                let (inner, out) = stageGroups[s]
                let b = block.body.layers
                layers.append(Residual(body: Sequential([b[0], b[1], b[2], gate(inner), b[3], b[4]]), shortcut: block.shortcut,
                                      activation: block.activation))
                layers.append(gate(out))
                let path = "\(3 + s)."
                groups[path + "body.0"] = .init(input: previous, output: inner)
                groups[path + "body.1"] = .init(input: inner, output: inner)
                groups[path + "body.3"] = .init(input: inner, output: out)
                groups[path + "body.4"] = .init(input: out, output: out)
                if !block.shortcut.layers.isEmpty {
                    groups[path + "shortcut.0"] = .init(input: previous, output: out)
                    groups[path + "shortcut.1"] = .init(input: out, output: out)
                }
                previous = out
            }
            layers += l[6...]
            groups["7"] = .init(input: previous, output: nil)
            view = Sequential(layers)
        default:
            throw NetworkError.unknownFamily(architecture.family)
        }
        self.gates = gates
        layerGroups = groups
    }

    public var parameters: [Parameter] { network.parameters }

    /// Logits for gates `[N][units]` (sampled per sample) or `[units]` (shared: masks, scales).
    public func forward(_ x: Tensor, gates z: Tensor, training: Bool) -> Tensor {
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
        return view.forward(x, training: training)
    }

    /// Accumulates the weights' gradients; returns dL/dz in the shape of the gates of the last forward.
    public func backward(_ dLogits: Tensor) -> Tensor {
        _ = view.backward(dLogits)
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
        var smaller = architecture
        smaller.widths = kept.map(\.count)
        let network = try buildNetwork(smaller, seed: 0)
        let source = namedTensors(self.network), target = namedTensors(network)
        precondition(source.map(\.name) == target.map(\.name), "extract: the pruned network's tensors differ in name")
        for (from, to) in zip(source, target) {
            let path = String(from.name[..<from.name.lastIndex(of: ".")!])
            let groups = layerGroups[path] ?? LayerGroups()
            let input = groups.input.map { kept[$0] }, output = groups.output.map { kept[$0] }
            let t = from.get()
            let sliced: Tensor
            switch t.rank {
            case 4: sliced = slice(t, axes: [2: input, 3: output])  // conv [KH][KW][Cin][Cout]
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
