// The part of the backbone that `bias` and `last` train: ops
// `firstOp ..< head.firstOp`, which the runtime runs forward with every
// activation kept, then backward to the first trained layer.
//
//   ops 0 ..< firstOp          frozen prefix: the interpreter, in the inference arena
//   ops firstOp ..< head       the segment: each tensor in a slot of its own
//       arena tensor           activation slot (inputs from the prefix are copied in)
//       op output              + gradient slot (its inputs from the prefix need none)
//       trained constant       parameter slot (a copy; the blob is never written),
//                              with a gradient and two optimizer moments beside it
//
//   bias: firstOp = the first Dense/Conv2D/DepthwiseConv2D with a bias; every
//         such bias from there on is trained (TinyTL). Ops without a bias stay as they are.
//   last: firstOp = the L-th Dense/Conv2D/DepthwiseConv2D counted back from the
//         head; their weights and biases are trained.
//   reinit: last with every such layer; the parameters start from a He-uniform
//         draw instead of the blob's (Reinitialise.swift).
//
// Only f32 ops with a backward may lie in the segment: Dense, Conv2D,
// DepthwiseConv2D (fused ReLU/ReLU6 included), MaxPool2D, AvgPool2D,
// GlobalAveragePool, Reshape and Add. The sizes here fix the plan's bytes;
// the slot table (`slots` region, T × 16 bytes) is filled at the start of a fine-tune.

/// Where `bias`, `last` or `reinit` trains and what its memory is.
public struct BackboneSegment: Equatable, Sendable {
    public var method: FineTuneMethod
    /// First op of the segment; the segment ends at the head's first op.
    public var firstOp: Int
    public var endOp: Int
    /// Parameterised layers (Dense, Conv2D, DepthwiseConv2D) whose parameters are trained.
    public var trainedLayers: Int
    /// Bytes of the activation slots: every arena tensor the segment reads or writes.
    public var activationBytes: Int
    /// Bytes of the activation-gradient slots: every tensor the segment writes.
    public var gradientBytes: Int
    /// Bytes of the trained parameters (each tensor 16-aligned); their
    /// gradients and the two optimizer moments take as much again each.
    public var parameterBytes: Int

    /// No segment (the sizes of `imprint` and `head`).
    static let empty = BackboneSegment(method: .head, firstOp: 0, endOp: 0, trainedLayers: 0, activationBytes: 0,
                                       gradientBytes: 0, parameterBytes: 0)

    private init(method: FineTuneMethod, firstOp: Int, endOp: Int, trainedLayers: Int, activationBytes: Int,
                 gradientBytes: Int, parameterBytes: Int) {
        self.method = method
        self.firstOp = firstOp
        self.endOp = endOp
        self.trainedLayers = trainedLayers
        self.activationBytes = activationBytes
        self.gradientBytes = gradientBytes
        self.parameterBytes = parameterBytes
    }

    /// The segment of `method` (`bias`, `last` with `layers`, or `reinit`:
    /// `last` with every Dense/Conv2D/DepthwiseConv2D before the head) in `model`.
    ///
    /// - Throws: ``FineTuneError/methodNeedsFloat32(method:)`` for int8
    ///   features or an int8 op in the segment; ``FineTuneError/notEnoughLayers(requested:available:)``;
    ///   ``FineTuneError/noBiasToTrain``; ``FineTuneError/cannotBackprop(op:)``
    ///   for an op without a backward, or when the features are computed before the segment.
    /// - Complexity: O(ops² × 7) for the first-use checks; no allocation.
    public init(model: Model, head: ClassifierHead, method: FineTuneMethod, layers: Int) throws(SprigError) {
        if head.quantizedFeatures { throw .fineTune(.methodNeedsFloat32(method: method)) }
        let end = head.firstOp
        var first = -1, trained = 0
        switch method {
        case .last, .reinit:
            // reinit: `last` with every parameterised layer before the head.
            let wanted = method == .reinit ? Int.max : layers
            var o = end - 1
            while o >= 0 && trained < wanted {
                if isParameterised(model.op(o).opcode) {
                    trained += 1
                    first = o
                }
                o -= 1
            }
            if method == .reinit {
                guard trained >= 1 else { throw .fineTune(.notEnoughLayers(requested: 1, available: 0)) }
            } else {
                guard trained == layers, layers >= 1 else {
                    throw .fineTune(.notEnoughLayers(requested: layers, available: trained))
                }
            }
        default:  // .bias (callers pass only bias, last and reinit)
            for o in 0..<end where isParameterised(model.op(o).opcode) && model.op(o).inputs.2 >= 0 {
                if first < 0 { first = o }
                trained += 1
            }
            guard first >= 0 else { throw .fineTune(.noBiasToTrain) }
        }
        // Every op must have a backward and run in f32; the features must come out of the segment.
        for o in first..<end {
            let op = model.op(o)
            guard op.opcode.hasBackward else { throw .fineTune(.cannotBackprop(op: o)) }
            if model.tensor(op.inputs.0).dtype != .f32 { throw .fineTune(.methodNeedsFloat32(method: method)) }
        }
        guard producer(model, head.featureTensor, before: end) >= first else { throw .fineTune(.cannotBackprop(op: end)) }
        self.method = method
        firstOp = first
        endOp = end
        trainedLayers = trained
        // Sizes: each tensor counted at its first use in the segment.
        var activations = 0, gradients = 0, parameters = 0
        for o in first..<end {
            let op = model.op(o)
            for s in 0..<BlobLayout.maxInputs {
                let t = op.input(s)
                guard t >= 0, isFirstUse(model, t, op: o, slot: s, from: first) else { continue }
                let info = model.tensor(t)
                if info.storage == .arena {
                    activations += roundUp(info.dataBytes, BlobLayout.alignment)
                } else if isTrained(op, slot: s, method: method) {
                    // A trained constant read outside the segment would differ between the two.
                    for p in 0..<first {
                        for k in 0..<BlobLayout.maxInputs where model.op(p).input(k) == t {
                            throw .fineTune(.cannotBackprop(op: p))
                        }
                    }
                    parameters += roundUp(info.dataBytes, BlobLayout.alignment)
                }
            }
            let out = roundUp(model.tensor(op.output).dataBytes, BlobLayout.alignment)
            activations += out
            gradients += out
        }
        activationBytes = activations
        gradientBytes = gradients
        parameterBytes = parameters
    }

    /// Fills the slot table (`tensorCount` × four i32: activation, gradient and
    /// parameter offsets inside their regions, -1 where none; the fourth is 0)
    /// in the same order the sizes were counted.
    func fillSlots(_ table: UnsafeMutablePointer<Int32>, model: Model) {
        for i in 0..<(model.tensorCount &* 4) { table[i] = i % 4 == 3 ? 0 : -1 }
        var activations = 0, gradients = 0, parameters = 0
        for o in firstOp..<endOp {
            let op = model.op(o)
            for s in 0..<BlobLayout.maxInputs {
                let t = op.input(s)
                guard t >= 0 else { continue }
                let info = model.tensor(t)
                let e = table + 4 &* t
                if info.storage == .arena {
                    if e[0] < 0 {
                        e[0] = Int32(truncatingIfNeeded: activations)
                        activations &+= roundUp(info.dataBytes, BlobLayout.alignment)
                    }
                } else if isTrained(op, slot: s, method: method) && e[2] < 0 {
                    e[2] = Int32(truncatingIfNeeded: parameters)
                    parameters &+= roundUp(info.dataBytes, BlobLayout.alignment)
                }
            }
            let e = table + 4 &* op.output
            let out = roundUp(model.tensor(op.output).dataBytes, BlobLayout.alignment)
            e[0] = Int32(truncatingIfNeeded: activations)
            e[1] = Int32(truncatingIfNeeded: gradients)
            activations &+= out
            gradients &+= out
        }
    }
}

/// Dense, Conv2D and DepthwiseConv2D: the layers `last` counts (and the
/// compiler's Float32 tail for `last:L` with them).
public func isParameterised(_ opcode: Opcode) -> Bool {
    opcode == .dense || opcode == .conv2d || opcode == .depthwiseConv2d
}

/// True when input `slot` of `op` is a parameter that `method` trains:
/// the bias (slot 2) for `bias`; the weights (slot 1) and bias for `last` and `reinit`.
func isTrained(_ op: OpInfo, slot: Int, method: FineTuneMethod) -> Bool {
    guard isParameterised(op.opcode), op.input(slot) >= 0 else { return false }
    return slot == 2 || (slot == 1 && (method == .last || method == .reinit))
}

/// True when tensor `t`, read by `op` in `slot`, appears in no earlier slot of
/// that op nor in any op `from ..< op` (as an input or the output).
private func isFirstUse(_ model: Model, _ t: Int, op o: Int, slot: Int, from first: Int) -> Bool {
    for p in first..<o {
        let earlier = model.op(p)
        if earlier.output == t { return false }
        for s in 0..<BlobLayout.maxInputs where earlier.input(s) == t { return false }
    }
    let op = model.op(o)
    for s in 0..<slot where op.input(s) == t { return false }
    return true
}
