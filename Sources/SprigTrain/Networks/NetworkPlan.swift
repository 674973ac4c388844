// The one walk over a network description.
//
// `NetworkPlan(architecture)` checks every layer against the shape it receives and
// records, per trainer layer, its checkpoint path, input and output shapes, and the
// unit groups it reads and writes. Building the trainer network, counting tensor
// values, the pruning space and its cost model (SprigPrune), the gated supernet and
// extraction all read the plan, so no stage restates a family's layers.
//
// Unit groups (what DAP and the baselines prune):
//   - every conv and Dense output of the backbone starts a group (the head does not);
//   - a depthwise conv and a BatchNorm keep their input's group;
//   - a residual block's add ties its body's last conv to the shortcut: the input's
//     group for an identity shortcut, one new group written by both for a projection;
//   - an inverted residual's expansion channels are their own group; its projection
//     is tied to the input when the block adds its input.
// A gate (for the gated supernet) follows each group's writer, after the BatchNorm
// and activation that follow it in the same chain; for the last conv of a residual
// body it follows the block instead, so that what later layers read is gated.
//
// Checkpoint paths are the trainer network's: "3.weight" for layer 3 of the top
// chain, "3.body.0.weight" for a residual block's body, "3.shortcut.0.weight" for its
// projection, "3.0.weight" for an inverted residual without an add (a plain chain).

/// One trainer layer of a planned network.
public struct PlannedLayer: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case conv(ConvSpec)
        case depthwise(DepthwiseSpec)
        case dense(DenseSpec)
        case batchNorm
        case relu, relu6
        case maxPool(PoolSpec), avgPool(PoolSpec)
        case globalAveragePool, flatten
        /// The add (and activation) of a residual block, whose body and shortcut precede it.
        case add(ResidualSpec.Activation)
    }

    /// The checkpoint path of the layer ("3.body.0"); an add has its block's path.
    public var path: String
    /// A readable name ("conv2", "block3.expand"), unique in the network.
    public var name: String
    public var kind: Kind
    /// `[H][W][C]` or `[N]`.
    public var input: [Int]
    public var output: [Int]
    /// The group of the input's channels (nil: a fixed side, such as the image).
    public var inputGroup: Int?
    /// The group of the output's channels (nil: fixed, such as the head's classes).
    public var outputGroup: Int?
    /// For a Dense after Flatten: input values per input channel (H·W of the flattened map); else 1.
    public var spread: Int

    /// Trained parameters of the layer, as the trainer holds them.
    public var parameters: Int {
        switch kind {
        case .conv(let c): return c.kernel * c.kernel * input[2] * c.filters + (c.bias ? c.filters : 0)
        case .depthwise(let d): return d.kernel * d.kernel * input[2] + (d.bias ? input[2] : 0)
        case .dense(let d): return input[0] * d.units + (d.bias ? d.units : 0)
        case .batchNorm: return 2 * input[input.count - 1]
        default: return 0
        }
    }

    /// Multiply-accumulates of one inference through the layer.
    public var macs: Int {
        let outputs = output.reduce(1, *)
        switch kind {
        case .conv(let c): return outputs * c.kernel * c.kernel * input[2]
        case .depthwise(let d): return outputs * d.kernel * d.kernel
        case .dense: return outputs * input[0]
        default: return 0
        }
    }

    /// Parameters and BatchNorm running statistics: the float values of its checkpoint tensors.
    public var tensorValues: Int { parameters + (kind == .batchNorm ? 2 * input[input.count - 1] : 0) }
}

/// A prunable unit group.
public struct PlannedGroup: Sendable, Equatable {
    public var name: String
    public var size: Int
}

/// A description that does not fit its input, naming the layer by its place.
public struct NetworkSpecError: Error, CustomStringConvertible, Equatable {
    /// Where: "layers[3]", "layers[2].residual.body[1]", "input", "head".
    public var place: String
    public var detail: String
    public var description: String { "\(place): \(detail)" }
}

/// A network description walked once: its layers with shapes and groups.
public struct NetworkPlan: Sendable {
    public internal(set) var layers: [PlannedLayer] = []
    public internal(set) var groups: [PlannedGroup] = []
    /// Layer path → the group whose gate follows that layer in its chain.
    public internal(set) var gatesAfter: [String: Int] = [:]
    /// For every conv and Dense of the backbone, in description order (inverted
    /// residuals give expand then project): the group it writes.
    public internal(set) var writerGroups: [Int] = []
    /// For every inverted residual, in description order: whether it adds its input.
    public internal(set) var invertedResidualAdds: [Bool] = []

    /// The largest side, channel count, layer count and nesting the walk accepts.
    public static let maxSide = 4096, maxLayers = 4096, maxDepth = 8

    /// The input the plan starts from.
    public internal(set) var input = InputSpec.fashionMNIST

    init() {}

    /// Walks `a`, checking every layer against its input.
    ///
    /// - Throws: ``NetworkSpecError`` naming the layer whose shape or field does not fit.
    public init(_ a: Architecture) throws {
        var walker = Walker(build: false, rng: SprigRNG(seed: 0))
        _ = try walker.walkNetwork(a)
        self = walker.plan
    }

    /// The group sizes, in group order: a pruned network's widths.
    public var widths: [Int] { groups.map(\.size) }

    /// The shape the network returns: `[classes]`, the logits.
    public var outputShape: [Int] { layers.last?.output ?? [] }

    /// Total trained parameters.
    public var parameters: Int { layers.reduce(0) { $0 + $1.parameters } }

    /// MACs of one inference.
    public var macs: Int { layers.reduce(0) { $0 + $1.macs } }

    /// Float values of the network's checkpoint tensors (parameters and BatchNorm running
    /// statistics), saturating at `Int.max`.
    public var tensorValues: Int {
        layers.reduce(0) { a, l in
            let (s, o) = a.addingReportingOverflow(l.tensorValues)
            return o ? Int.max : s
        }
    }
}

/// Builds the network of `architecture` with He-initialised weights from `seed`.
///
/// - Throws: ``NetworkSpecError`` naming the layer whose shape does not fit.
public func buildNetwork(_ a: Architecture, seed: UInt64) throws -> Sequential {
    var walker = Walker(build: true, rng: SprigRNG(seed: seed))
    return try walker.walkNetwork(a)
}

/// The value flowing between layers during the walk.
private struct Flow {
    var shape: [Int]
    var group: Int?
    var spread: Int
}

private struct Walker {
    var build: Bool
    var rng: SprigRNG
    var plan = NetworkPlan()
    var counters: [String: Int] = [:]
    var blocks = 0

    mutating func walkNetwork(_ a: Architecture) throws -> Sequential {
        let i = a.input
        plan.input = i
        guard (1...NetworkPlan.maxSide).contains(i.height), (1...NetworkPlan.maxSide).contains(i.width) else {
            throw NetworkSpecError(place: "input", detail: "\(i.height)×\(i.width) is not in 1…\(NetworkPlan.maxSide) per side")
        }
        guard (1...4).contains(i.channels) else {
            throw NetworkSpecError(place: "input", detail: "channels is \(i.channels), not 1…4")
        }
        guard i.mean.count == 1 || i.mean.count == i.channels, i.std.count == i.mean.count else {
            throw NetworkSpecError(place: "input", detail: "mean \(i.mean) and std \(i.std) need 1 or \(i.channels) values each")
        }
        guard i.mean.allSatisfy(\.isFinite), i.std.allSatisfy({ $0.isFinite && $0 >= 1e-6 }) else {
            throw NetworkSpecError(place: "input", detail: "mean \(i.mean) must be finite and std \(i.std) at least 1e-6")
        }
        guard (1...Architecture.maxUnits).contains(a.classes) else {
            throw NetworkSpecError(place: "head", detail: "classes is \(a.classes), not in 1…\(Architecture.maxUnits)")
        }
        guard a.layers.count <= NetworkPlan.maxLayers else {
            throw NetworkSpecError(place: "layers", detail: "\(a.layers.count) layers, more than \(NetworkPlan.maxLayers)")
        }
        var out: [any Layer] = []
        let flow = try walk(a.layers, from: Flow(shape: i.shape, group: nil, spread: 1), prefix: "", place: "layers",
                            scope: "", depth: 0, tie: nil, into: &out)
        guard flow.shape.count == 1 else {
            throw NetworkSpecError(place: "head", detail: "the head is a Dense and needs a flat input, but the layers end in "
                + "\(flow.shape); end them with global_average_pool or flatten")
        }
        let head = DenseSpec(units: a.classes)
        plan.layers.append(PlannedLayer(path: "\(a.layers.count)", name: "head", kind: .dense(head), input: flow.shape,
                                        output: [a.classes], inputGroup: flow.group, outputGroup: nil, spread: flow.spread))
        if build { out.append(Dense(inputDimensions: flow.shape[0], outputDimensions: a.classes, rng: &rng)) }
        return Sequential(out)
    }

    mutating func name(_ kind: String, _ scope: String) -> String {
        let key = scope + kind
        counters[key, default: 0] += 1
        return "\(scope)\(kind)\(kind.last!.isNumber ? "_" : "")\(counters[key]!)"
    }

    /// Gives an inverted residual's layers and groups (from `layer`, `group` on) their roles:
    /// expand, depthwise, project.
    mutating func nameInvertedResidual(_ block: String, fromLayer layer: Int, fromGroup group: Int) {
        let roles = ["conv1": "expand", "dwconv1": "depthwise", "conv2": "project"]
        func renamed(_ name: String) -> String {
            guard name.hasPrefix(block), let role = roles[String(name.dropFirst(block.count))] else { return name }
            return block + role
        }
        for i in layer..<plan.layers.count { plan.layers[i].name = renamed(plan.layers[i].name) }
        for g in group..<plan.groups.count { plan.groups[g].name = renamed(plan.groups[g].name) }
    }

    mutating func newGroup(_ name: String, _ size: Int) -> Int {
        plan.groups.append(PlannedGroup(name: name, size: size))
        return plan.groups.count - 1
    }

    /// Index of the last layer that writes a group (a conv or Dense) in `specs`, when only
    /// BatchNorm and activations follow it.
    static func terminalWriter(_ specs: [LayerSpec]) -> Int? {
        for j in stride(from: specs.count - 1, through: 0, by: -1) {
            switch specs[j] {
            case .batchNorm, .relu, .relu6: continue
            case .conv, .dense: return j
            default: return nil
            }
        }
        return nil
    }

    /// The index after the BatchNorm and activations that follow `specs[j]`, minus one:
    /// where a gate for `specs[j]`'s output goes.
    static func gateIndex(after j: Int, _ specs: [LayerSpec]) -> Int {
        var k = j
        while k + 1 < specs.count {
            switch specs[k + 1] {
            case .batchNorm, .relu, .relu6: k += 1
            default: return k
            }
        }
        return k
    }

    /// Walks one chain. `tie`: the group the chain's terminal writer writes (nil: a new
    /// group, gated as usual); a tied terminal writer gets no gate (the block's add follows).
    mutating func walk(_ specs: [LayerSpec], from input: Flow, prefix: String, place: String, scope: String,
                       depth: Int, tie: Tie?, into out: inout [any Layer]) throws -> Flow {
        guard depth <= NetworkPlan.maxDepth else {
            throw NetworkSpecError(place: place, detail: "blocks nest deeper than \(NetworkPlan.maxDepth)")
        }
        var v = input
        let terminal = tie == nil ? nil : Walker.terminalWriter(specs)
        for (i, spec) in specs.enumerated() {
            let path = "\(prefix)\(i)", at = "\(place)[\(i)]"
            func fail(_ detail: String) -> NetworkSpecError { NetworkSpecError(place: "\(at) (\(spec.kind))", detail: detail) }
            func needMap() throws -> (h: Int, w: Int, c: Int) {
                guard v.shape.count == 3 else { throw fail("needs an [H][W][C] input, but its input is flat \(v.shape)") }
                return (v.shape[0], v.shape[1], v.shape[2])
            }
            func window(_ k: Int, _ s: Int, _ p: Int, _ h: Int, _ w: Int) throws -> (Int, Int) {
                guard (1...15).contains(k) else { throw fail("kernel \(k) is not in 1…15") }
                guard (1...8).contains(s) else { throw fail("stride \(s) is not in 1…8") }
                guard p >= 0, p < k else { throw fail("padding \(p) is not in 0…\(k - 1)") }
                guard k <= h + 2 * p, k <= w + 2 * p else {
                    throw fail("kernel \(k)×\(k) is larger than its input \(h)×\(w) with padding \(p)")
                }
                return ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
            }
            func units(_ n: Int, _ field: String) throws {
                guard (1...Architecture.maxUnits).contains(n) else { throw fail("\(field) is \(n), not in 1…\(Architecture.maxUnits)") }
            }
            func record(_ kind: PlannedLayer.Kind, _ name: String, output: [Int], outputGroup: Int?, spread: Int = 1) {
                plan.layers.append(PlannedLayer(path: path, name: name, kind: kind, input: v.shape, output: output,
                                                inputGroup: v.group, outputGroup: outputGroup, spread: spread))
            }
            /// The group a writer writes and whether it gets its own gate.
            func writerGroup(_ label: String, _ size: Int) -> (group: Int, gated: Bool) {
                if i == terminal, let tie {
                    switch tie {
                    case .group(let g): return (g, false)
                    case .new(let name): return (newGroup(name, size), false)
                    }
                }
                return (newGroup(label, size), true)
            }
            switch spec {
            case .conv(let c):
                let (h, w, cin) = try needMap()
                try units(c.filters, "filters")
                let (oh, ow) = try window(c.kernel, c.stride, c.padding, h, w)
                let label = name("conv", scope)
                let (g, gated) = writerGroup(label, c.filters)
                if i == terminal, case .group(let tied) = tie!, plan.groups[tied].size != c.filters {
                    throw fail("filters \(c.filters) must equal the block's \(plan.groups[tied].size) input channels for the identity add")
                }
                plan.writerGroups.append(g)
                record(.conv(c), label, output: [oh, ow, c.filters], outputGroup: g)
                if build {
                    out.append(Conv2D(inputChannels: cin, outputChannels: c.filters, kernelSize: c.kernel, stride: c.stride,
                                      padding: c.padding, bias: c.bias, rng: &rng))
                }
                if gated { plan.gatesAfter["\(prefix)\(Walker.gateIndex(after: i, specs))"] = g }
                v = Flow(shape: [oh, ow, c.filters], group: g, spread: 1)
            case .depthwise(let d):
                let (h, w, c) = try needMap()
                let (oh, ow) = try window(d.kernel, d.stride, d.padding, h, w)
                record(.depthwise(d), name("dwconv", scope), output: [oh, ow, c], outputGroup: v.group)
                if build {
                    out.append(DepthwiseConv2D(channels: c, kernelSize: d.kernel, stride: d.stride, padding: d.padding,
                                               bias: d.bias, rng: &rng))
                }
                // A dropped channel leaves BN's shift behind: gate it again, tied to the input.
                if let g = v.group { plan.gatesAfter["\(prefix)\(Walker.gateIndex(after: i, specs))"] = g }
                v.shape = [oh, ow, c]
            case .dense(let d):
                guard v.shape.count == 1 else {
                    throw fail("needs a flat input, but its input is \(v.shape); put flatten or global_average_pool before it")
                }
                try units(d.units, "units")
                let label = name("fc", scope)
                let (g, gated) = writerGroup(label, d.units)
                plan.writerGroups.append(g)
                record(.dense(d), label, output: [d.units], outputGroup: g, spread: v.spread)
                if build { out.append(Dense(inputDimensions: v.shape[0], outputDimensions: d.units, bias: d.bias, rng: &rng)) }
                if gated { plan.gatesAfter["\(prefix)\(Walker.gateIndex(after: i, specs))"] = g }
                v = Flow(shape: [d.units], group: g, spread: 1)
            case .batchNorm:
                let (_, _, c) = try needMap()
                record(.batchNorm, name("bn", scope), output: v.shape, outputGroup: v.group)
                if build { out.append(BatchNorm2D(channels: c)) }
            case .relu:
                record(.relu, name("relu", scope), output: v.shape, outputGroup: v.group)
                if build { out.append(ReLU()) }
            case .relu6:
                record(.relu6, name("relu6", scope), output: v.shape, outputGroup: v.group)
                if build { out.append(ReLU6()) }
            case .maxPool(let p), .avgPool(let p):
                let (h, w, c) = try needMap()
                let (oh, ow) = try window(p.kernel, p.stride, p.padding, h, w)
                let isMax: Bool
                if case .maxPool = spec { isMax = true } else { isMax = false }
                record(isMax ? .maxPool(p) : .avgPool(p), name(isMax ? "maxpool" : "avgpool", scope), output: [oh, ow, c],
                       outputGroup: v.group)
                if build {
                    out.append(isMax ? MaxPool2D(kernelSize: p.kernel, stride: p.stride, padding: p.padding)
                                     : AvgPool2D(kernelSize: p.kernel, stride: p.stride, padding: p.padding))
                }
                v.shape = [oh, ow, c]
            case .globalAveragePool:
                let (_, _, c) = try needMap()
                record(.globalAveragePool, name("gap", scope), output: [c], outputGroup: v.group)
                if build { out.append(GlobalAveragePool()) }
                v = Flow(shape: [c], group: v.group, spread: 1)
            case .flatten:
                let n = v.shape.reduce(1, *)
                let spread = v.shape.count == 3 ? v.shape[0] * v.shape[1] * v.spread : v.spread
                record(.flatten, name("flatten", scope), output: [n], outputGroup: v.group)
                if build { out.append(Flatten()) }
                v = Flow(shape: [n], group: v.group, spread: spread)
            case .residual(let r):
                blocks += 1
                let block = "block\(blocks)."
                _ = try needMap()
                guard let last = Walker.terminalWriter(r.body), case .conv = r.body[last] else {
                    throw fail("a residual body must end with a conv (then BatchNorm or activation only)")
                }
                let tie: Tie
                switch r.shortcut {
                case .identity:
                    guard let g = v.group else {
                        throw fail("an identity shortcut needs an input written by a conv, not the image")
                    }
                    tie = .group(g)
                case .projection: tie = .new(block + "out")
                }
                var body: [any Layer] = []
                let a = try walk(r.body, from: v, prefix: "\(path).body.", place: "\(at).residual.body", scope: block,
                                 depth: depth + 1, tie: tie, into: &body)
                var shortcut: [any Layer] = []
                var s = v
                if r.shortcut == .projection {
                    let (h, w) = (v.shape[0], v.shape[1])
                    guard a.shape.count == 3 else { throw fail("the body's output \(a.shape) is not a map") }
                    let stride = Walker.totalStride(r.body)
                    let spec = ConvSpec(filters: a.shape[2], kernel: 1, stride: stride, padding: 0)
                    let (oh, ow) = ((h - 1) / stride + 1, (w - 1) / stride + 1)
                    plan.layers.append(PlannedLayer(path: "\(path).shortcut.0", name: block + "shortcut", kind: .conv(spec),
                                                    input: v.shape, output: [oh, ow, a.shape[2]], inputGroup: v.group,
                                                    outputGroup: a.group, spread: 1))
                    plan.layers.append(PlannedLayer(path: "\(path).shortcut.1", name: block + "shortcut.bn", kind: .batchNorm,
                                                    input: [oh, ow, a.shape[2]], output: [oh, ow, a.shape[2]],
                                                    inputGroup: a.group, outputGroup: a.group, spread: 1))
                    if build {
                        shortcut = [Conv2D(inputChannels: v.shape[2], outputChannels: a.shape[2], kernelSize: 1, stride: stride,
                                           bias: false, rng: &rng), BatchNorm2D(channels: a.shape[2])]
                    }
                    s = Flow(shape: [oh, ow, a.shape[2]], group: a.group, spread: 1)
                }
                guard a.shape == s.shape else {
                    throw fail("the body's output \(a.shape) differs from the shortcut's \(s.shape)"
                        + (r.shortcut == .identity ? "; use \"shortcut\": \"projection\"" : ""))
                }
                plan.layers.append(PlannedLayer(path: path, name: block + "add", kind: .add(r.activation), input: a.shape,
                                                output: a.shape, inputGroup: a.group, outputGroup: a.group, spread: 1))
                if build {
                    out.append(Residual(body: Sequential(body), shortcut: Sequential(shortcut),
                                        activation: r.activation == .relu ? .relu : .none))
                }
                plan.gatesAfter[path] = a.group
                v = a
            case .invertedResidual(let b):
                blocks += 1
                let block = "block\(blocks)."
                let (_, _, c) = try needMap()
                try units(b.expand, "expand")
                try units(b.filters, "filters")
                let adds = b.residual ?? (b.stride == 1 && c == b.filters)
                plan.invertedResidualAdds.append(adds)
                let (firstLayer, firstGroup) = (plan.layers.count, plan.groups.count)
                defer { nameInvertedResidual(block, fromLayer: firstLayer, fromGroup: firstGroup) }
                if adds {
                    guard b.stride == 1, c == b.filters, let g = v.group else {
                        throw fail("adds its input, which needs stride 1, filters equal to its \(c) input channels and an "
                            + "input written by a conv; set \"residual\": false")
                    }
                    var body: [any Layer] = []
                    let a = try walk(b.layers, from: v, prefix: "\(path).body.", place: "\(at).inverted_residual",
                                     scope: block, depth: depth + 1, tie: .group(g), into: &body)
                    plan.layers.append(PlannedLayer(path: path, name: block + "add", kind: .add(.none), input: a.shape,
                                                    output: a.shape, inputGroup: g, outputGroup: g, spread: 1))
                    if build { out.append(Residual(body: Sequential(body), activation: .none)) }
                    plan.gatesAfter[path] = g
                    v = a
                } else {
                    var chain: [any Layer] = []
                    v = try walk(b.layers, from: v, prefix: "\(path).", place: "\(at).inverted_residual", scope: block,
                                 depth: depth + 1, tie: nil, into: &chain)
                    if build { out.append(Sequential(chain)) }
                }
            }
        }
        return v
    }

    /// The product of the strides in a chain: the projection shortcut's stride.
    static func totalStride(_ specs: [LayerSpec]) -> Int {
        specs.reduce(1) { s, spec in
            switch spec {
            case .conv(let c): return s * c.stride
            case .depthwise(let d): return s * d.stride
            case .maxPool(let p), .avgPool(let p): return s * p.stride
            case .residual(let r): return s * totalStride(r.body)
            case .invertedResidual(let b): return s * b.stride
            default: return s
            }
        }
    }

    enum Tie {
        /// The terminal writer writes this existing group (identity add).
        case group(Int)
        /// It starts a new group of this name that the shortcut also writes (projection).
        case new(String)
    }
}

extension Architecture {
    /// The most classes and units per layer a description may declare.
    public static let maxUnits = 65_536

    /// The walk of this description.
    public func plan() throws -> NetworkPlan { try NetworkPlan(self) }

    /// The group sizes (a pruned network's widths), or [] when the description does not walk.
    public var widths: [Int] { (try? NetworkPlan(self))?.widths ?? [] }

    /// Float values the network holds (parameters and BatchNorm running statistics),
    /// counted without building it, saturating; 0 when the description does not walk.
    public var tensorElements: Int {
        (try? NetworkPlan(self))?.tensorValues ?? 0
    }

    /// The same description with each group resized to `widths[g]`: the form of a pruned network.
    /// Inverted residuals get an explicit `residual` flag, so that a block keeps (or keeps
    /// not) its add whatever the new widths.
    public func withWidths(_ widths: [Int]) throws -> Architecture {
        let plan = try NetworkPlan(self)
        guard widths.count == plan.groups.count else {
            throw NetworkSpecError(place: "widths", detail: "\(widths.count) widths for \(plan.groups.count) groups")
        }
        var writer = 0, block = 0
        func next() -> Int {
            defer { writer += 1 }
            return widths[plan.writerGroups[writer]]
        }
        func resize(_ specs: [LayerSpec]) -> [LayerSpec] {
            specs.map { spec in
                switch spec {
                case .conv(var c):
                    c.filters = next()
                    return .conv(c)
                case .dense(var d):
                    d.units = next()
                    return .dense(d)
                case .residual(var r):
                    r.body = resize(r.body)
                    return .residual(r)
                case .invertedResidual(var b):
                    b.residual = plan.invertedResidualAdds[block]
                    block += 1
                    b.expand = next()
                    b.filters = next()
                    return .invertedResidual(b)
                default:
                    return spec
                }
            }
        }
        var copy = self
        copy.layers = resize(layers)
        return copy
    }
}
