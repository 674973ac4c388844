// ONNX graph → network description + checkpoint tensors (`sprig import`).
//
// The graph is walked from its one image input to its one output. A value used
// by one node continues the chain; a value used by two nodes opens a residual
// block, whose two branches must meet again at one Add:
//
//   x ─ Conv … Conv [BN] ─┐
//   │                     Add [─ Relu]      → {"residual": {"body": […], "shortcut": "identity"|"projection",
//   └─ [Conv 1×1 [BN]] ───┘                                 "activation": "relu"|"none"}}
//
// (a MobileNetV2 inverted residual is such a block: its body is
// conv 1×1, BN, ReLU6, depthwise, BN, ReLU6, conv 1×1, BN, and the add has no
// activation; when the body is exactly that, it becomes the description's
// `inverted_residual`). The last node must be a Gemm (or MatMul + Add): the head.
//
// Op → layer:
//   Conv (group 1)                 conv         W OIHW → [KH][KW][Cin][Cout]
//   Conv (group = C = outputs)     depthwise    W [C][1][KH][KW] → [KH][KW][C]
//   BatchNormalization             batch_norm   after a conv; a conv bias moves into the mean (μ' = μ − b);
//                                               ε other than 1e-5 moves into the variance (σ²' = σ² + ε − 1e-5)
//   Relu, Clip(0, 6), Clip(0, ∞)   relu6, relu
//   MaxPool, AveragePool           max_pool, avg_pool (square, symmetric)
//   GlobalAveragePool              global_average_pool (its [N][C][1][1] is flat to Sprig;
//                                  a Flatten or Reshape after it is dropped)
//   Flatten, Reshape to [N, −1]    flatten; ONNX flattens C·H·W, Sprig H·W·C, so the next
//                                  Dense's columns are permuted: Sprig column (y·W + x)·C + c
//                                  takes ONNX column c·H·W + y·W + x
//   Gemm, MatMul [+ Add]           dense        B [Out][In] (transB = 1) or [In][Out] (transposed)
//   Identity, Dropout              nothing
// A projection shortcut is a 1×1 conv + BN in the description: a conv with a
// bias and no BN (BN folded by the exporter) gets a BN of γ = 1, β = bias,
// μ = 0, σ² = 1 − ε, which is the identity on the bias.

/// How `importONNX` fills what the ONNX file does not hold.
public struct ONNXImportOptions: Sendable {
    /// The model's input normalisation `x = (p/255 − mean[c]) / std[c]` (one value or one per channel).
    public var mean: [Float] = [0]
    public var std: [Float] = [1]
    /// The names of the outputs, in order (nil: none).
    public var classNames: [String]?

    public init(mean: [Float] = [0], std: [Float] = [1], classNames: [String]? = nil) {
        self.mean = mean
        self.std = std
        self.classNames = classNames
    }
}

/// An imported model: its description and every checkpoint tensor by name ("3.body.0.weight").
public struct ImportedModel {
    public var architecture: Architecture
    public var tensors: [String: Tensor]
    /// The default domain's opset and the producer the file names.
    public var opset: Int64
    public var producer: String
    /// Nodes read from the graph (Constants included).
    public var nodeCount: Int
}

/// The ops `importONNX` maps.
public let onnxSupportedOps = ["Conv", "BatchNormalization", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool",
                               "Flatten", "Reshape", "Gemm", "MatMul", "Add", "Identity", "Dropout", "Constant"]

/// Decodes ONNX bytes and maps the graph onto a network description.
///
/// - Throws: ``ONNXError`` naming the field (for a malformed file) or the node, its op
///   type and attribute (for what the description cannot express).
public func importONNX(_ bytes: [UInt8], options: ONNXImportOptions = ONNXImportOptions()) throws -> ImportedModel {
    try importONNX(model: try ONNXModel.decode(bytes), options: options)
}

/// Maps a decoded model onto a network description.
public func importONNX(model: ONNXModel, options: ONNXImportOptions = ONNXImportOptions()) throws -> ImportedModel {
    var importer = try ONNXImporter(model)
    return try importer.run(options)
}

/// The imported network with its tensors in place, ready for ``saveCheckpoint``.
public func buildImportedNetwork(_ imported: ImportedModel) throws -> Sequential {
    let network = try buildNetwork(imported.architecture, seed: 0)
    for entry in namedTensors(network) {
        guard let t = imported.tensors[entry.name] else {
            throw ONNXError("import", "no tensor for '\(entry.name)' (an importer defect)")
        }
        guard t.shape == entry.get().shape else {
            throw ONNXError("import", "tensor '\(entry.name)' has shape \(t.shape), the network needs \(entry.get().shape) (an importer defect)")
        }
        guard let i = t.storage.firstIndex(where: { !$0.isFinite }) else {
            entry.set(t)
            continue
        }
        throw ONNXError("import", "tensor '\(entry.name)' element \(i) is \(t.storage[i]); weights must be finite")
    }
    return network
}

/// A map's NCHW sides or a flat length, as the walk tracks them.
private enum Shape: Equatable {
    case map(c: Int, h: Int, w: Int)
    case flat(Int)

    var text: String {
        switch self {
        case .map(let c, let h, let w): return "[N, \(c), \(h), \(w)]"
        case .flat(let n): return "[N, \(n)]"
        }
    }
}

/// One description layer (or block) with the tensors of its trainer layers, in walk order.
private struct Piece {
    var spec: LayerSpec
    var params: [[String: Tensor]]
}

/// What a chain walk returns.
private struct Chain {
    var pieces: [Piece] = []
    var end: String
    var shape: Shape
    /// The Add where a branch meets the other (nil for the main chain).
    var merge: Int?
    /// After a flatten of a map: its sides, for the next Dense's column order.
    var flattened: (c: Int, h: Int, w: Int)?
}

private struct ONNXImporter {
    let model: ONNXModel
    var graph: ONNXGraph { model.graph }
    let opset: Int64
    var constants: [String: ONNXTensor] = [:]
    var consumers: [String: [Int]] = [:]
    var produced: Set<String> = []
    var visited: [Bool]
    var inputName = ""
    var outputName = ""

    init(_ model: ONNXModel) throws {
        self.model = model
        guard let opset = model.defaultOpset else {
            throw ONNXError("opset_import", "no entry for the default ONNX domain")
        }
        guard opset >= 7 else {
            throw ONNXError("opset_import", "opset \(opset) is older than 7; export with opset_version=13 or newer")
        }
        self.opset = opset
        visited = [Bool](repeating: false, count: model.graph.nodes.count)
    }

    // MARK: - Graph index

    mutating func index() throws {
        for t in graph.initializers {
            guard !t.name.isEmpty else { throw ONNXError(t.place, "initializer without a name") }
            constants[t.name] = t
        }
        for node in graph.nodes where node.opType == "Constant" && (node.domain.isEmpty || node.domain == "ai.onnx") {
            guard node.inputs.isEmpty, node.outputs.count == 1 else { throw ONNXError(node.label, "a Constant has no inputs and one output") }
            guard node.attributes.count == 1, let a = node.attributes.first else {
                throw ONNXError(node.label, "a Constant has exactly one attribute, found \(node.attributes.count)")
            }
            var t = ONNXTensor()
            t.name = node.outputs[0]
            t.place = node.label
            switch a.name {
            case "value":
                guard let v = a.t else { throw ONNXError(node.label, "attribute 'value' is \(a.typeName), not a TENSOR") }
                t = v
                t.name = node.outputs[0]
                t.place = node.label
            case "value_float":
                guard let f = a.f else { throw ONNXError(node.label, "attribute 'value_float' has no float") }
                t.dataType = ONNXDataType.float; t.floats = [f]
            case "value_floats":
                t.dataType = ONNXDataType.float; t.floats = a.floats; t.dims = [a.floats.count]
            case "value_int":
                guard let i = a.i else { throw ONNXError(node.label, "attribute 'value_int' has no int") }
                t.dataType = ONNXDataType.int64; t.ints = [i]
            case "value_ints":
                t.dataType = ONNXDataType.int64; t.ints = a.ints; t.dims = [a.ints.count]
            default:
                throw ONNXError(node.label, "attribute '\(a.name)' of a Constant is not supported (value, value_float(s), value_int(s) are)")
            }
            constants[t.name] = t
            visited[node.index] = true
        }
        for node in graph.nodes where !visited[node.index] {
            for o in node.outputs where !o.isEmpty {
                guard !produced.contains(o), constants[o] == nil else {
                    throw ONNXError(node.label, "output '\(o)' is also produced elsewhere (a graph's values are assigned once)")
                }
                produced.insert(o)
            }
        }
        let dataInputs = graph.inputs.filter { constants[$0.name] == nil }
        guard dataInputs.count == 1, let input = dataInputs.first else {
            throw ONNXError("graph.input", "\(dataInputs.count) inputs besides the initializers (\(dataInputs.map(\.name))); "
                + "Sprig imports models of one image input")
        }
        inputName = input.name
        guard graph.outputs.count == 1 else {
            throw ONNXError("graph.output", "\(graph.outputs.count) outputs (\(graph.outputs.map(\.name))); Sprig imports models of one output, the logits")
        }
        outputName = graph.outputs[0].name
        for node in graph.nodes where !visited[node.index] {
            for i in node.inputs where !i.isEmpty && constants[i] == nil {
                guard produced.contains(i) || i == inputName else {
                    throw ONNXError(node.label, "input '\(i)' is neither the graph input, an initializer, a Constant nor any node's output")
                }
                consumers[i, default: []].append(node.index)
            }
        }
    }

    /// `[C, H, W]` of the graph input, which is `[N or 1, C, H, W]` FLOAT.
    func inputShape() throws -> (c: Int, h: Int, w: Int) {
        guard let i = graph.inputs.first(where: { $0.name == inputName }) else { throw ONNXError("graph.input", "missing") }
        let place = "graph.input '\(i.name)'"
        guard i.elemType == ONNXDataType.float else {
            throw ONNXError(place, "element type \(ONNXDataType.name(i.elemType)); Sprig imports FLOAT inputs")
        }
        guard let dims = i.dims, dims.count == 4, dims[0] == nil || dims[0] == 1,
              let c = dims[1], let h = dims[2], let w = dims[3] else {
            let text = (i.dims ?? []).map { $0.map(String.init) ?? "?" }.joined(separator: ", ")
            throw ONNXError(place, "shape [\(text)] is not [N, C, H, W] with fixed C, H and W (N may be 1 or symbolic)")
        }
        guard (1...4).contains(c), (1...NetworkPlan.maxSide).contains(h), (1...NetworkPlan.maxSide).contains(w) else {
            throw ONNXError(place, "shape [N, \(c), \(h), \(w)]: Sprig takes 1…4 channels and sides 1…\(NetworkPlan.maxSide)")
        }
        return (c, h, w)
    }

    // MARK: - Walk

    mutating func run(_ options: ONNXImportOptions) throws -> ImportedModel {
        try index()
        let (c, h, w) = try inputShape()
        var chain = try walk(Chain(end: inputName, shape: .map(c: c, h: h, w: w)), inBranch: false)
        guard chain.end == outputName else {
            throw ONNXError("graph", "the chain from the input ends at '\(chain.end)', not at the graph output '\(outputName)'")
        }
        if let n = visited.firstIndex(of: false) {
            throw ONNXError(graph.nodes[n].label, "is not on the path from the input '\(inputName)' to the output '\(outputName)'")
        }
        guard let head = chain.pieces.popLast(), case .dense(let d) = head.spec else {
            throw ONNXError("graph", "the graph must end in a Gemm (or MatMul + Add): Sprig's head is a Dense layer; it ends in "
                + (chain.pieces.last.map { $0.spec.kind } ?? "its input"))
        }
        var headParams = head.params[0]
        if !d.bias { headParams["bias"] = Tensor(zeros: [d.units]) }
        guard options.mean.count == 1 || options.mean.count == c, options.std.count == options.mean.count else {
            throw ONNXError("options", "mean \(options.mean) and std \(options.std) need 1 or \(c) values each (the input has \(c) channels)")
        }
        if let names = options.classNames, names.count != d.units {
            throw ONNXError("options", "\(names.count) class names for the \(d.units) outputs of the head")
        }
        let architecture = Architecture(preset: nil,
                                        input: InputSpec(height: h, width: w, channels: c, mean: options.mean, std: options.std),
                                        layers: chain.pieces.map(\.spec), classes: d.units, sourceClasses: Array(0..<d.units),
                                        classNames: options.classNames)
        let plan: NetworkPlan
        do {
            plan = try architecture.plan()
        } catch {
            throw ONNXError("graph", "maps to a description that does not fit: \(error)")
        }
        // Name the tensors by the plan's paths: its parameter layers come in walk order.
        var params = chain.pieces.flatMap(\.params) + [headParams]
        params.reverse()
        var tensors: [String: Tensor] = [:]
        for layer in plan.layers {
            switch layer.kind {
            case .conv, .depthwise, .dense, .batchNorm:
                guard let p = params.popLast() else { throw ONNXError("import", "fewer tensor sets than layers (an importer defect)") }
                for (k, t) in p { tensors["\(layer.path).\(k)"] = t }
            default: break
            }
        }
        guard params.isEmpty else { throw ONNXError("import", "more tensor sets than layers (an importer defect)") }
        return ImportedModel(architecture: architecture, tensors: tensors, opset: opset, producer: model.producer,
                             nodeCount: graph.nodes.count)
    }

    func isMerge(_ n: Int) -> Bool {
        let node = graph.nodes[n]
        return node.opType == "Add" && node.inputs.count == 2 && node.inputs.allSatisfy { constants[$0] == nil }
    }

    mutating func visit(_ n: Int) throws {
        guard !visited[n] else { throw ONNXError(graph.nodes[n].label, "is reached twice (a cycle, or a graph the description cannot express)") }
        visited[n] = true
        let node = graph.nodes[n]
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw ONNXError(node.label, "domain '\(node.domain)' is not the ONNX default domain")
        }
    }

    /// Walks single-use values from `value`; a branch stops at the Add where it meets the other one.
    mutating func walk(_ start: Chain, inBranch: Bool) throws -> Chain {
        var chain = start
        var steps = 0
        while true {
            steps += 1
            guard steps <= graph.nodes.count + 1 else { throw ONNXError("graph", "the walk does not end (a cycle)") }
            let value = chain.end
            let users = consumers[value] ?? []
            if users.isEmpty {
                if inBranch { throw ONNXError("graph", "value '\(value)' ends a branch without an Add joining it") }
                return chain
            }
            if users.count == 1, isMerge(users[0]) {
                if inBranch {
                    chain.merge = users[0]
                    return chain
                }
                throw ONNXError(graph.nodes[users[0]].label, "adds two computed values that do not branch from one value: "
                    + "a graph the description cannot express")
            }
            if value == outputName {
                throw ONNXError("graph", "the output '\(value)' is also used by \(graph.nodes[users[0]].label)")
            }
            switch users.count {
            case 1:
                try step(users[0], &chain)
            case 2:
                if inBranch {
                    throw ONNXError(graph.nodes[users[0]].label, "'\(value)' branches again inside a residual branch: "
                        + "the description cannot express nested branches")
                }
                try residual(from: value, users, &chain)
            default:
                throw ONNXError("graph", "value '\(value)' feeds \(users.count) nodes (\(users.map { graph.nodes[$0].label }.joined(separator: ", "))); "
                    + "the description expresses a residual branch (2 uses) only")
            }
        }
    }

    /// One residual block from the value `x` used by nodes `users`.
    mutating func residual(from x: String, _ users: [Int], _ chain: inout Chain) throws {
        guard users[0] != users[1] else {
            throw ONNXError(graph.nodes[users[0]].label, "uses '\(x)' twice: a graph the description cannot express")
        }
        var branches: [Chain] = []
        for u in users {
            if isMerge(u) {
                branches.append(Chain(end: x, shape: chain.shape, merge: u))
            } else {
                var b = Chain(end: x, shape: chain.shape, flattened: chain.flattened)
                try step(u, &b)
                branches.append(try walk(b, inBranch: true))
            }
        }
        guard let merge = branches[0].merge, branches[1].merge == merge else {
            throw ONNXError(graph.nodes[users[0]].label, "the two branches from '\(x)' do not meet at one Add: a graph the description cannot express")
        }
        try visit(merge)
        let add = graph.nodes[merge]
        try Attributes(add).allow([])
        guard add.outputs.count == 1 else { throw ONNXError(add.label, "has \(add.outputs.count) outputs") }
        guard branches[0].shape == branches[1].shape else {
            throw ONNXError(add.label, "adds \(branches[0].shape.text) and \(branches[1].shape.text) (broadcasting is not supported)")
        }
        guard case .map = branches[0].shape else { throw ONNXError(add.label, "adds flat values; Sprig's residual blocks add maps") }
        // The body is the longer branch; the shortcut is the identity or a 1×1 conv [+ BN].
        let (body, short) = branches[0].pieces.count >= branches[1].pieces.count ? (branches[0], branches[1]) : (branches[1], branches[0])
        var shortcut = ResidualSpec.Shortcut.identity
        var shortcutParams: [[String: Tensor]] = []
        if !short.pieces.isEmpty {
            shortcut = .projection
            shortcutParams = try projection(short.pieces, add)
        }
        var activation = ResidualSpec.Activation.none
        chain.end = add.outputs[0]
        if let next = consumers[chain.end], next.count == 1, graph.nodes[next[0]].opType == "Relu", chain.end != outputName {
            try visit(next[0])
            try Attributes(graph.nodes[next[0]]).allow([])
            activation = .relu
            chain.end = graph.nodes[next[0]].outputs.first ?? ""
        }
        let bodySpecs = body.pieces.map(\.spec)
        if shortcut == .identity, activation == .none, let block = ONNXImporter.invertedResidual(bodySpecs) {
            // Exactly MobileNetV2's block: the description's own (same layers, tensors and groups).
            chain.pieces.append(Piece(spec: .invertedResidual(block), params: body.pieces.flatMap(\.params)))
        } else {
            let spec = ResidualSpec(body: bodySpecs, shortcut: shortcut, activation: activation)
            chain.pieces.append(Piece(spec: .residual(spec), params: body.pieces.flatMap(\.params) + shortcutParams))
        }
        chain.shape = body.shape
        chain.flattened = nil
    }

    /// The inverted residual whose `layers` are exactly `body` (with its add), or nil.
    static func invertedResidual(_ body: [LayerSpec]) -> InvertedResidualSpec? {
        guard body.count == 8, case .conv(let expand) = body[0], case .depthwise(let dw) = body[3],
              case .conv(let project) = body[6] else { return nil }
        let block = InvertedResidualSpec(expand: expand.filters, filters: project.filters, kernel: dw.kernel, stride: dw.stride,
                                         residual: true)
        return block.layers == body ? block : nil
    }

    /// A shortcut branch as the description's projection: a 1×1 conv without bias, padding 0, then BN.
    func projection(_ pieces: [Piece], _ add: ONNXNode) throws -> [[String: Tensor]] {
        guard let first = pieces.first, case .conv(let c) = first.spec, c.kernel == 1, c.padding == 0,
              pieces.count == 1 || (pieces.count == 2 && pieces[1].spec == .batchNorm) else {
            throw ONNXError(add.label, "its shortcut branch is \(pieces.map(\.spec.kind)); the description's projection "
                + "shortcut is a 1×1 conv (padding 0) with an optional BatchNormalization")
        }
        if pieces.count == 2 { return [first.params[0], pieces[1].params[0]] }
        var conv = first.params[0]
        let bias = conv.removeValue(forKey: "bias") ?? Tensor(zeros: [c.filters])
        let bn: [String: Tensor] = ["weight": Tensor(shape: [c.filters], repeating: 1), "bias": bias,
                                    "running_mean": Tensor(zeros: [c.filters]),
                                    "running_var": Tensor(shape: [c.filters], repeating: 1 - 1e-5)]
        return [conv, bn]
    }

    // MARK: - Ops

    func constantFloats(_ node: ONNXNode, _ slot: Int, _ what: String) throws -> ONNXTensor {
        guard slot < node.inputs.count, !node.inputs[slot].isEmpty else {
            throw ONNXError(node.label, "input \(slot) (\(what)) is missing")
        }
        let name = node.inputs[slot]
        guard let t = constants[name] else {
            throw ONNXError(node.label, "input \(slot) (\(what)) '\(name)' is not an initializer or Constant; Sprig imports constant weights")
        }
        guard t.floats != nil else {
            throw ONNXError(node.label, "input \(slot) (\(what)) '\(name)' is \(ONNXDataType.name(t.dataType)), not FLOAT")
        }
        return t
    }

    func optionalConstant(_ node: ONNXNode, _ slot: Int) -> ONNXTensor? {
        guard slot < node.inputs.count, !node.inputs[slot].isEmpty else { return nil }
        return constants[node.inputs[slot]]
    }

    /// Converts node `n`, whose data input is `chain.end`, and appends its layer.
    mutating func step(_ n: Int, _ chain: inout Chain) throws {
        try visit(n)
        let node = graph.nodes[n]
        let a = try Attributes(node)
        func fail(_ detail: String) -> ONNXError { ONNXError(node.label, detail) }
        guard node.inputs.first == chain.end else {
            throw fail("takes '\(chain.end)' as input \(node.inputs.firstIndex(of: chain.end) ?? -1), not as its data input 0")
        }
        guard let out = node.outputs.first, !out.isEmpty else { throw fail("has no output") }
        for (k, extra) in node.outputs.enumerated().dropFirst() where !extra.isEmpty && consumers[extra] != nil {
            throw fail("output \(k) '\(extra)' is used; Sprig imports inference graphs whose nodes have one output")
        }
        for (k, i) in node.inputs.enumerated().dropFirst() where !i.isEmpty && constants[i] == nil {
            throw fail("input \(k) '\(i)' is computed, not a constant; Sprig imports constant weights and parameters")
        }
        func needMap() throws -> (c: Int, h: Int, w: Int) {
            guard case .map(let c, let h, let w) = chain.shape else {
                throw fail("needs an [N, C, H, W] input, but its input is \(chain.shape.text)")
            }
            return (c, h, w)
        }
        func append(_ spec: LayerSpec, _ params: [String: Tensor]? = nil) {
            chain.pieces.append(Piece(spec: spec, params: params.map { [$0] } ?? []))
        }
        chain.end = out
        switch node.opType {
        case "Conv":
            try a.allow(["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])
            let (c, h, w) = try needMap()
            let wt = try constantFloats(node, 1, "W")
            guard wt.dims.count == 4 else { throw fail("weight '\(wt.name)' has dims \(wt.dims), not [O, I, KH, KW]") }
            let (o, i, k) = (wt.dims[0], wt.dims[1], wt.dims[2])
            guard wt.dims[3] == k else { throw fail("kernel \(wt.dims[2])×\(wt.dims[3]) is not square; Sprig's kernels are") }
            if let ks = try a.ints("kernel_shape"), ks != [Int64(k), Int64(k)] {
                throw fail("attribute 'kernel_shape' \(ks) differs from the weight's \(k)×\(k)")
            }
            let (stride, pad) = try a.window(k, h: h, w: w)
            let group = try a.int("group") ?? 1
            var bias: [Float]?
            if let b = optionalConstant(node, 2) {
                guard let v = b.floats, v.count == o else { throw fail("bias '\(b.name)' has dims \(b.dims), not [\(o)] FLOAT") }
                bias = v
            }
            let values = wt.floats!
            let (oh, ow) = ((h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1)
            if group == 1 {
                guard i == c else { throw fail("weight '\(wt.name)' takes \(i) input channels, its input has \(c)") }
                var hwio = [Float](repeating: 0, count: values.count)
                for oc in 0..<o { for ic in 0..<i { for y in 0..<k { for x in 0..<k {
                    hwio[((y * k + x) * i + ic) * o + oc] = values[((oc * i + ic) * k + y) * k + x]
                } } } }
                var p = ["weight": Tensor(shape: [k, k, i, o], storage: hwio)]
                if let bias { p["bias"] = Tensor(shape: [o], storage: bias) }
                append(.conv(ConvSpec(filters: o, kernel: k, stride: stride, padding: pad, bias: bias != nil)), p)
            } else {
                guard group == Int64(c), o == c, i == 1 else {
                    throw fail("attribute 'group' is \(group) with \(c) input channels and weight dims \(wt.dims); Sprig imports "
                        + "group 1 and depthwise convolutions (group = input channels = outputs)")
                }
                var hwc = [Float](repeating: 0, count: values.count)
                for ch in 0..<c { for y in 0..<k { for x in 0..<k { hwc[(y * k + x) * c + ch] = values[(ch * k + y) * k + x] } } }
                var p = ["weight": Tensor(shape: [k, k, c], storage: hwc)]
                if let bias { p["bias"] = Tensor(shape: [c], storage: bias) }
                append(.depthwise(DepthwiseSpec(kernel: k, stride: stride, padding: pad, bias: bias != nil)), p)
            }
            chain.shape = .map(c: o, h: oh, w: ow)
        case "BatchNormalization":
            try a.allow(["epsilon", "momentum", "training_mode", "spatial"])
            let (c, _, _) = try needMap()
            if let t = try a.int("training_mode"), t != 0 { throw fail("attribute 'training_mode' is \(t); export the model in eval mode") }
            if let s = try a.int("spatial"), s != 1 { throw fail("attribute 'spatial' is \(s); Sprig's BatchNorm is per channel (spatial 1)") }
            var stats: [[Float]] = []
            for (slot, what) in [(1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")] {
                let t = try constantFloats(node, slot, what)
                guard t.elementCount == c else { throw fail("\(what) '\(t.name)' has dims \(t.dims), not [\(c)]") }
                stats.append(t.floats!)
            }
            let epsilon = try a.float("epsilon") ?? 1e-5
            guard epsilon.isFinite, epsilon >= 0 else { throw fail("attribute 'epsilon' is \(epsilon)") }
            let variance = stats[3].map { Float(Double($0) + Double(epsilon) - 1e-5) }
            if let bad = variance.firstIndex(where: { !($0 >= 0) }) {
                throw fail("attribute 'epsilon' \(epsilon) with input_var[\(bad)] = \(stats[3][bad]) cannot be expressed with Sprig's ε = 1e-5")
            }
            var mean = stats[2]
            guard var last = chain.pieces.popLast() else {
                throw fail("follows no Conv; Sprig folds a BatchNormalization into the conv before it")
            }
            switch last.spec {
            case .conv(var spec):
                if spec.bias, let b = last.params[0].removeValue(forKey: "bias") {
                    for ch in 0..<c { mean[ch] -= b.storage[ch] }
                    spec.bias = false
                }
                last.spec = .conv(spec)
            case .depthwise(var spec):
                if spec.bias, let b = last.params[0].removeValue(forKey: "bias") {
                    for ch in 0..<c { mean[ch] -= b.storage[ch] }
                    spec.bias = false
                }
                last.spec = .depthwise(spec)
            default:
                throw fail("follows \(last.spec.kind), not a Conv; Sprig folds a BatchNormalization into the conv before it")
            }
            chain.pieces.append(last)
            append(.batchNorm, ["weight": Tensor(shape: [c], storage: stats[0]), "bias": Tensor(shape: [c], storage: stats[1]),
                                "running_mean": Tensor(shape: [c], storage: mean), "running_var": Tensor(shape: [c], storage: variance)])
        case "Relu":
            try a.allow([])
            append(.relu)
        case "Clip":
            var low: Float?, high: Float?
            if opset >= 11 {
                try a.allow([])
                for (slot, name) in [(1, "min"), (2, "max")] {
                    guard let t = optionalConstant(node, slot) else { continue }
                    guard let v = t.floats, v.count == 1 else { throw fail("input '\(name)' is not one FLOAT value") }
                    if slot == 1 { low = v[0] } else { high = v[0] }
                }
            } else {
                try a.allow(["min", "max"])
                low = try a.float("min")
                high = try a.float("max")
            }
            guard low == 0 else { throw fail("min is \(low.map { "\($0)" } ?? "absent"); Sprig maps Clip(0, 6) to ReLU6 and Clip(0) to ReLU") }
            if high == nil || high == .infinity {
                append(.relu)
            } else if high == 6 {
                append(.relu6)
            } else {
                throw fail("max is \(high!); Sprig maps Clip(0, 6) to ReLU6 and Clip(0) to ReLU")
            }
        case "MaxPool", "AveragePool":
            let isMax = node.opType == "MaxPool"
            try a.allow(isMax ? ["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"]
                              : ["auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides"])
            let (c, h, w) = try needMap()
            guard let ks = try a.ints("kernel_shape"), ks.count == 2, ks[0] == ks[1], (1...15).contains(ks[0]) else {
                throw fail("attribute 'kernel_shape' \((try? a.ints("kernel_shape")).flatMap { $0 } ?? []) is not a square kernel of side 1…15")
            }
            let k = Int(ks[0])
            let (stride, pad) = try a.window(k, h: h, w: w)
            if let s = try a.int("storage_order"), s != 0 { throw fail("attribute 'storage_order' is \(s), not 0") }
            if let ceil = try a.int("ceil_mode"), ceil != 0,
               (h + 2 * pad - k) % stride != 0 || (w + 2 * pad - k) % stride != 0 {
                throw fail("attribute 'ceil_mode' is \(ceil) and changes the output size; Sprig's pools round down")
            }
            if !isMax, pad > 0, let include = try a.int("count_include_pad"), include != 0 {
                throw fail("attribute 'count_include_pad' is \(include) with padding \(pad); Sprig's AvgPool excludes padding "
                    + "(export with count_include_pad=False)")
            }
            let spec = PoolSpec(kernel: k, stride: stride, padding: pad)
            append(isMax ? .maxPool(spec) : .avgPool(spec))
            chain.shape = .map(c: c, h: (h + 2 * pad - k) / stride + 1, w: (w + 2 * pad - k) / stride + 1)
        case "GlobalAveragePool":
            try a.allow([])
            let (c, _, _) = try needMap()
            append(.globalAveragePool)
            chain.shape = .flat(c)
        case "Flatten", "Reshape":
            if node.opType == "Flatten" {
                try a.allow(["axis"])
                if let axis = try a.int("axis"), axis != 1 { throw fail("attribute 'axis' is \(axis); Sprig flattens from axis 1") }
            } else {
                try a.allow(["allowzero"])
                guard let t = optionalConstant(node, 1), let s = t.ints else { throw fail("input 1 (shape) is not a constant INT64") }
                let total: Int
                switch chain.shape {
                case .map(let c, let h, let w): total = c * h * w
                case .flat(let n): total = n
                }
                guard s.count == 2, [1, 0, -1].contains(s[0]), s[1] == -1 || s[1] == Int64(total), !(s[0] == -1 && s[1] == -1) else {
                    throw fail("shape \(s) is not [N, -1] (or [N, \(total)]); Sprig imports a Reshape that flattens")
                }
            }
            if case .map(let c, let h, let w) = chain.shape {
                append(.flatten)
                chain.shape = .flat(c * h * w)
                if h * w > 1 { chain.flattened = (c, h, w) }
            }
        case "Gemm", "MatMul":
            guard case .flat(let n) = chain.shape else {
                throw fail("needs a flat [N, K] input, but its input is \(chain.shape.text); put a Flatten before it")
            }
            let wt = try constantFloats(node, 1, "B")
            guard wt.dims.count == 2 else { throw fail("weight '\(wt.name)' has dims \(wt.dims), not 2") }
            var transposed = false
            var biasTensor: ONNXTensor?
            if node.opType == "Gemm" {
                try a.allow(["alpha", "beta", "transA", "transB"])
                if let alpha = try a.float("alpha"), alpha != 1 { throw fail("attribute 'alpha' is \(alpha), not 1") }
                if let beta = try a.float("beta"), beta != 1 { throw fail("attribute 'beta' is \(beta), not 1") }
                if let t = try a.int("transA"), t != 0 { throw fail("attribute 'transA' is \(t), not 0") }
                transposed = (try a.int("transB") ?? 0) != 0
                if optionalConstant(node, 2) != nil { biasTensor = try constantFloats(node, 2, "C") }
            } else {
                try a.allow([])
                // MatMul + Add(constant): the Add is the bias.
                if let users = consumers[out], users.count == 1, graph.nodes[users[0]].opType == "Add", !isMerge(users[0]), out != outputName {
                    let add = graph.nodes[users[0]]
                    try visit(users[0])
                    try Attributes(add).allow([])
                    guard let slot = add.inputs.firstIndex(where: { constants[$0] != nil }), add.inputs.count == 2,
                          add.inputs[1 - slot] == out else {
                        throw ONNXError(add.label, "is not the Add of a constant bias to '\(out)'")
                    }
                    biasTensor = try constantFloats(add, slot, "bias")
                    chain.end = add.outputs.first ?? ""
                }
            }
            let (units, inputs) = transposed ? (wt.dims[0], wt.dims[1]) : (wt.dims[1], wt.dims[0])
            guard inputs == n else { throw fail("weight '\(wt.name)' of dims \(wt.dims) takes \(inputs) inputs, its input has \(n)") }
            let values = wt.floats!
            var weight = [Float](repeating: 0, count: values.count)
            // Sprig's Dense weight is [Out][In], In in channels-last order.
            var column = Array(0..<n)
            if let (c, h, w) = chain.flattened {
                for ch in 0..<c { for y in 0..<h { for x in 0..<w { column[(y * w + x) * c + ch] = ch * h * w + y * w + x } } }
            }
            for o in 0..<units {
                for j in 0..<n {
                    let src = column[j]
                    weight[o * n + j] = transposed ? values[o * n + src] : values[src * units + o]
                }
            }
            var p = ["weight": Tensor(shape: [units, n], storage: weight)]
            if let b = biasTensor {
                guard let v = b.floats, v.count == units, b.dims.count <= 2 else {
                    throw fail("bias '\(b.name)' has dims \(b.dims), not [\(units)]")
                }
                p["bias"] = Tensor(shape: [units], storage: v)
            }
            append(.dense(DenseSpec(units: units, bias: biasTensor != nil)), p)
            chain.shape = .flat(units)
            chain.flattened = nil
        case "Identity":
            try a.allow([])
        case "Dropout":
            try a.allow(["ratio", "seed", "is_test"])
            if let mode = optionalConstant(node, 2), mode.ints?.contains(where: { $0 != 0 }) ?? false {
                throw fail("input 'training_mode' is true; export the model in eval mode")
            }
        case "Add":
            throw fail("adds a constant to a value other than a MatMul's output; Sprig imports Add as a residual add or a MatMul's bias")
        default:
            throw fail("op '\(node.opType)' is not supported (supported: \(onnxSupportedOps.joined(separator: ", ")))")
        }
    }
}

/// A node's attributes, with typed, checked accessors.
private struct Attributes {
    let node: ONNXNode
    var byName: [String: ONNXAttribute] = [:]

    init(_ node: ONNXNode) throws {
        self.node = node
        for (k, a) in node.attributes.enumerated() {
            guard byName[a.name] == nil else { throw ONNXError(node.label, "attribute \(k) '\(a.name)' appears twice") }
            byName[a.name] = a
        }
    }

    func fail(_ name: String, _ detail: String) -> ONNXError {
        ONNXError(node.label, "attribute '\(name)' \(detail)")
    }

    /// Refuses any attribute not in `names`.
    func allow(_ names: Set<String>) throws {
        for (k, a) in node.attributes.enumerated() where !names.contains(a.name) {
            throw ONNXError(node.label, "attribute \(k) '\(a.name)' (\(a.typeName)) is not supported for \(node.opType)"
                + (names.isEmpty ? "" : " (supported: \(names.sorted().joined(separator: ", ")))"))
        }
    }

    func int(_ name: String) throws -> Int64? {
        guard let a = byName[name] else { return nil }
        guard a.type == 2 || (a.type == 0 && a.i != nil) else { throw fail(name, "is \(a.typeName), not INT") }
        return a.i ?? 0
    }

    func float(_ name: String) throws -> Float? {
        guard let a = byName[name] else { return nil }
        guard a.type == 1 || (a.type == 0 && a.f != nil) else { throw fail(name, "is \(a.typeName), not FLOAT") }
        return a.f ?? 0
    }

    func ints(_ name: String) throws -> [Int64]? {
        guard let a = byName[name] else { return nil }
        guard a.type == 7 || (a.type == 0 && !a.ints.isEmpty) else { throw fail(name, "is \(a.typeName), not INTS") }
        return a.ints
    }

    func string(_ name: String) throws -> String? {
        guard let a = byName[name] else { return nil }
        guard let s = a.s, a.type == 3 || a.type == 0 else { throw fail(name, "is \(a.typeName), not STRING") }
        return s
    }

    /// The stride and padding of a square window of side `k` over `h`×`w`: strides, pads,
    /// dilations and auto_pad must describe one symmetric window.
    func window(_ k: Int, h: Int, w: Int) throws -> (stride: Int, pad: Int) {
        guard (1...15).contains(k) else { throw ONNXError(node.label, "kernel \(k)×\(k) is not in 1…15 per side") }
        if let mode = try string("auto_pad"), mode != "NOTSET", mode != "VALID" {
            throw fail("auto_pad", "is '\(mode)'; Sprig imports explicit pads (NOTSET) or VALID")
        }
        if let d = try ints("dilations"), d.contains(where: { $0 != 1 }) { throw fail("dilations", "is \(d); Sprig's windows are not dilated") }
        let strides = try ints("strides") ?? [1, 1]
        guard strides.count == 2, strides[0] == strides[1], (1...8).contains(strides[0]) else {
            throw fail("strides", "is \(strides); Sprig needs one stride 1…8 for both axes")
        }
        let pads = try ints("pads") ?? [0, 0, 0, 0]
        guard pads.count == 4, Set(pads).count == 1, let p = pads.first, p >= 0, p < Int64(k) else {
            throw fail("pads", "is \(pads); Sprig needs the same padding 0…\(k - 1) on every side")
        }
        guard k <= h + 2 * Int(p), k <= w + 2 * Int(p) else {
            throw ONNXError(node.label, "kernel \(k)×\(k) is larger than its input \(h)×\(w) with padding \(p)")
        }
        return (Int(strides[0]), Int(p))
    }
}
