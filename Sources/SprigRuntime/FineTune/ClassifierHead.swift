// Finding the classifier head of a blob: the last Dense op whose output
// reaches the graph output, and the feature vector it reads.
//
// Accepted tails, walking back from the single graph output (ops in
// brackets are optional; each appears at most once):
//
//   features ─[Dequantize]─[L2Normalize]─ Dense ─[Dequantize]─[Softmax]─[Dequantize]─▶ output
//
// - a compiled f32 blob:   gap[D] ─ Dense ─ logits (─ Softmax ─ probs)
// - a compiled q8 blob:    gap[D] i8 ─ Dense i8 (─ Softmax i8) ─ Dequantize ─ out f32
// - a tuned blob (ours):   gap[D] (i8 ─ Dequantize) ─ L2Normalize ─ Dense f32 (─ Softmax)
//
// The ops of the tail must be the last ops of the graph; everything before
// them is the backbone, kept as it is when the head is replaced. The
// "features" tensor is the input of the first tail op: D values, f32 or
// per-tensor int8 (dequantized with its scale and zero point).

/// Where the classifier head of a model starts and what it reads.
public struct ClassifierHead: Equatable, Sendable {
    /// Index of the first op of the head tail; ops `0 ..< firstOp` are the backbone.
    public var firstOp: Int
    /// The Dense op of the classifier.
    public var denseOp: Int
    /// The tensor the head reads: the backbone's feature vector.
    public var featureTensor: Int
    /// Its element count D.
    public var featureCount: Int
    /// True when the features are int8 (the tuned head dequantizes them first).
    public var quantizedFeatures: Bool
    /// True when the original output is a Softmax of the logits; the tuned head keeps one.
    public var softmax: Bool
    /// Classes of the original classifier.
    public var originalClasses: Int

    /// Finds the head of `model`.
    ///
    /// - Throws: ``FineTuneError/ioCount(inputs:outputs:)`` unless the graph
    ///   has one input and one output; ``FineTuneError/noClassifierHead(op:)``
    ///   when the output is not a Dense op's (through Softmax/Dequantize only);
    ///   ``FineTuneError/opAfterHead(op:)`` when another op runs after the head.
    /// - Complexity: O(ops).
    public init(model: Model) throws(SprigError) {
        var inputs = 0, outputs = 0
        for i in 0..<model.ioCount {
            if model.io(i).role == 0 { inputs += 1 } else { outputs += 1 }
        }
        guard inputs == 1, outputs == 1, let output = model.output(0) else {
            throw .fineTune(.ioCount(inputs: inputs, outputs: outputs))
        }
        // Walk back from the output through Softmax and Dequantize to a Dense.
        var chain = OpSet()
        var usedSoftmax = false, dequantizeAfter = 0
        var p = producer(model, output, before: model.opCount)
        var dense = -1
        while p >= 0 {
            let op = model.op(p)
            chain.insert(p)
            if op.opcode == .dense {
                dense = p
                break
            }
            if op.opcode == .softmax && !usedSoftmax {
                usedSoftmax = true
            } else if op.opcode == .dequantize && dequantizeAfter < 2 {
                dequantizeAfter += 1
            } else {
                throw .fineTune(.noClassifierHead(op: p))
            }
            p = producer(model, op.inputs.0, before: p)
        }
        guard dense >= 0 else { throw .fineTune(.noClassifierHead(op: p)) }
        let denseInfo = model.op(dense)
        let weights = model.tensor(denseInfo.inputs.1)
        // Before the Dense: an L2Normalize of ours, itself maybe after a Dequantize.
        var feature = denseInfo.inputs.0
        let q = producer(model, feature, before: dense)
        if q >= 0 && model.op(q).opcode == .l2Normalize {
            chain.insert(q)
            feature = model.op(q).inputs.0
            let r = producer(model, feature, before: q)
            if r >= 0 && model.op(r).opcode == .dequantize {
                chain.insert(r)
                feature = model.op(r).inputs.0
            }
        }
        // The head ops must be exactly the last ops of the graph.
        let first = chain.minimum
        for k in first..<model.opCount where !chain.contains(k) {
            throw .fineTune(.opAfterHead(op: k))
        }
        let info = model.tensor(feature)
        firstOp = first
        denseOp = dense
        featureTensor = feature
        featureCount = info.elementCount
        quantizedFeatures = info.dtype == .i8
        softmax = usedSoftmax
        originalClasses = weights.dim(0)
    }
}

/// The op before `limit` that writes tensor `t`, or -1.
func producer(_ model: Model, _ t: Int, before limit: Int) -> Int {
    var p = limit - 1
    while p >= 0 {
        if model.op(p).output == t { return p }
        p -= 1
    }
    return -1
}

/// At most six op indices (the longest head tail), without the heap.
struct OpSet {
    private var items: (Int, Int, Int, Int, Int, Int) = (-1, -1, -1, -1, -1, -1)
    private(set) var count = 0

    mutating func insert(_ k: Int) {
        switch count {
        case 0: items.0 = k
        case 1: items.1 = k
        case 2: items.2 = k
        case 3: items.3 = k
        case 4: items.4 = k
        case 5: items.5 = k
        default: return
        }
        count += 1
    }

    func contains(_ k: Int) -> Bool {
        (count > 0 && items.0 == k) || (count > 1 && items.1 == k) || (count > 2 && items.2 == k)
            || (count > 3 && items.3 == k) || (count > 4 && items.4 == k) || (count > 5 && items.5 == k)
    }

    /// The smallest index (Int.max when empty).
    var minimum: Int {
        var m = Int.max
        if count > 0 { m = min(m, items.0) }
        if count > 1 { m = min(m, items.1) }
        if count > 2 { m = min(m, items.2) }
        if count > 3 { m = min(m, items.3) }
        if count > 4 { m = min(m, items.4) }
        if count > 5 { m = min(m, items.5) }
        return m
    }
}
