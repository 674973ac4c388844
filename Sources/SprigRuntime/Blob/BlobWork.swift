// What one invoke costs, counted at load from the declared shapes.
//
// No loop of an invoke depends on the data: every kernel's trip counts are
// fixed by the shapes the validator has proven. So the counts below are exact,
// and a caller can refuse a model before running it (`sprig-edge run
// --max-macs`, `sprig_macs` in the C API). docs/blob-format.md ("Work") gives
// the same table:
//
//   op                      macs                      element_ops
//   Dense [Out][In]         Out·In                    Out
//   Conv2D HWIO             OH·OW·Cout·KH·KW·Cin      OH·OW·Cout
//   DepthwiseConv2D         OH·OW·C·KH·KW             OH·OW·C
//   MaxPool2D, AvgPool2D    0                         OH·OW·C·KH·KW
//   GlobalAveragePool       0                         H·W·C   (its input)
//   Softmax, L2Normalize    0                         3·n     (three passes)
//   Add, Reshape,
//   Quantize, Dequantize    0                         n       (output elements)

/// The work of one op, or of a whole invoke: multiply-accumulates and other
/// element operations. Sums and products saturate at `UInt64.max`.
public struct Work: Equatable, Sendable {
    /// Multiply-accumulates of Dense, Conv2D and DepthwiseConv2D.
    public var macs: UInt64
    /// Every other per-element step: pooling taps, adds, copies, passes of softmax.
    public var elementOps: UInt64

    public init(macs: UInt64 = 0, elementOps: UInt64 = 0) {
        self.macs = macs
        self.elementOps = elementOps
    }

    /// Adds `other`, saturating.
    public mutating func add(_ other: Work) {
        macs = saturatingSum(macs, other.macs)
        elementOps = saturatingSum(elementOps, other.elementOps)
    }
}

extension Model {
    /// The exact work of op `index` (`0 ..< opCount`) in one invoke.
    ///
    /// Example: the reference CNN's first conv, 3×3×1→16 over 28×28 with
    /// padding 1, is `28·28·16·3·3·1 = 112,896` MACs and `28·28·16 = 12,544`
    /// element ops (bias and clamp).
    public func work(ofOp index: Int) -> Work {
        let op = self.op(index)
        let x = tensor(op.inputs.0), y = tensor(op.output)
        let n = UInt64(y.elementCount)
        switch op.opcode {
        case .dense:
            let w = tensor(op.inputs.1)
            return Work(macs: times(UInt64(w.dims.0), w.dims.1), elementOps: n)
        case .conv2d:
            let w = tensor(op.inputs.1)
            return Work(macs: times(times(times(n, w.dims.0), w.dims.1), w.dims.2), elementOps: n)
        case .depthwiseConv2d:
            let w = tensor(op.inputs.1)
            return Work(macs: times(times(n, w.dims.0), w.dims.1), elementOps: n)
        case .maxPool2d, .avgPool2d:
            return Work(elementOps: times(times(n, Int(op.params.0)), Int(op.params.1)))
        case .globalAveragePool:
            return Work(elementOps: UInt64(x.elementCount))
        case .softmax, .l2Normalize:
            return Work(elementOps: times(n, 3))
        case .add, .reshape, .quantize, .dequantize:
            return Work(elementOps: n)
        }
    }

    /// The work of every op, summed (saturating).
    func totalWork() -> Work {
        var total = Work()
        for o in 0..<opCount { total.add(work(ofOp: o)) }
        return total
    }
}

/// `a + b`, or `UInt64.max` when that overflows.
@inline(__always)
func saturatingSum(_ a: UInt64, _ b: UInt64) -> UInt64 {
    let (s, overflow) = a.addingReportingOverflow(b)
    return overflow ? UInt64.max : s
}

/// `a · b` for a non-negative `b`, or `UInt64.max` when that overflows
/// (no variadic form: it would allocate an array).
@inline(__always)
func times(_ a: UInt64, _ b: Int) -> UInt64 {
    let (p, overflow) = a.multipliedReportingOverflow(by: UInt64(max(0, b)))
    return overflow ? UInt64.max : p
}
