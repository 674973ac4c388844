// Load-time proof that a valid blob's Float32 values stay finite.
//
// Finite weights do not make finite outputs: a std of 1e-38, or weights of
// ±3e38, overflow on the first multiply. So load propagates an interval
// [lo, hi] (in Double) through the graph, in op order:
//
//   graph input      (p/255 − mean)/std for every pixel p in 0…255
//   Dense, Conv2D,   per output channel c: b_c + P_c·[lo, hi] + N_c·[hi, lo], where
//   DepthwiseConv2D  P_c, N_c are the sums of c's positive and negative weights
//                    (0 joins [lo, hi] when the window pads); widened by the
//                    rounding allowance A_c·n·2⁻²³ (A_c = |b_c| + Σ|w|·max|x|,
//                    n the reduction length), then clamped by the fused activation
//   Add              [lo_a + lo_b, hi_a + hi_b], widened by 2⁻²³ of the magnitudes
//   pools, Reshape   the input's interval (a max or mean stays inside it); the
//                    sum a mean pool forms, n·max|x|, must fit too
//   Softmax          [0, 1]        L2Normalize  [−1, 1]
//   Dequantize       scale·[−128 − zp, 127 − zp]
//   int8 ops         integers, always finite; not tracked
//
// Any magnitude above `valueBoundLimit` (half of Float32's largest value) is
// refused with the op's index. Storage is O(1): an op reads the exact interval
// of the op just before it when that op wrote its input, and otherwise the
// union of every interval so far (graph inputs included), which contains the
// value of any tensor an earlier op wrote. Each weight is read once per op,
// and validateConstantUse() makes that once per blob.
//
// The guarantee covers values that enter through `Interpreter.setInput(pixels:)`
// (or f32 inputs inside the normalised pixel range). docs/reliability.md states it.

/// The largest magnitude the proof lets a Float32 value reach: half of
/// `Float.greatestFiniteMagnitude`, a margin for the rounding the allowances
/// do not model (a bias add, a clamp).
let valueBoundLimit = Double(Float.greatestFiniteMagnitude) / 2

/// The smallest input std a blob may declare (2⁻²⁰, about 9.5e-7): below it
/// the normalisation alone multiplies a pixel by more than a million.
public let minimumInputStd: Float = 0x1p-20

/// A closed interval of real values; `lo > hi` is the empty interval.
struct ValueInterval {
    var lo: Double
    var hi: Double

    static let empty = ValueInterval(lo: .infinity, hi: -.infinity)

    /// The largest magnitude in the interval (0 when empty).
    var magnitude: Double { lo > hi ? 0 : max(-lo, hi) }

    func union(_ other: ValueInterval) -> ValueInterval {
        ValueInterval(lo: min(lo, other.lo), hi: max(hi, other.hi))
    }

    /// With 0 joined (padding taps read zeros).
    var withZero: ValueInterval { ValueInterval(lo: min(lo, 0), hi: max(hi, 0)) }

    /// After a fused activation.
    func clamped(_ activation: Activation) -> ValueInterval {
        switch activation {
        case .none: return self
        case .relu: return ValueInterval(lo: max(lo, 0), hi: max(hi, 0))
        case .relu6: return ValueInterval(lo: min(max(lo, 0), 6), hi: min(max(hi, 0), 6))
        }
    }
}

extension Model {
    /// Proves every Float32 value of an invoke finite (see the top of this file).
    ///
    /// - Throws: ``SprigError/badNormalization(input:mean:std:bound:)`` for an
    ///   input whose normalised pixels are out of range,
    ///   ``SprigError/valueOverflow(op:bound:)`` naming the first op whose
    ///   values can pass ``valueBoundLimit``.
    /// - Returns: the bytes of weights and biases it read.
    /// - Complexity: O(ops + constant bytes).
    func validateValueBounds() throws(SprigError) -> Int {
        var scanned = 0
        var seen = ValueInterval.empty
        for i in 0..<ioCount where io(i).role == 0 {
            let e = io(i)
            let a = (0 - Double(e.mean)) / Double(e.std), b = (1 - Double(e.mean)) / Double(e.std)
            let input = ValueInterval(lo: min(a, b), hi: max(a, b))
            guard input.magnitude <= valueBoundLimit else {
                throw .badNormalization(input: i, mean: e.mean, std: e.std, bound: input.magnitude)
            }
            seen = seen.union(input)
        }
        var previous = (tensor: -1, interval: ValueInterval.empty)
        for o in 0..<opCount {
            let op = self.op(o)
            guard tensor(op.output).dtype == .f32 else {
                previous.tensor = -1
                continue
            }
            // No local closure: a captured var could be boxed on the heap.
            let x = op.inputs.0 == previous.tensor ? previous.interval : seen
            let out: ValueInterval
            switch op.opcode {
            case .dense, .conv2d, .depthwiseConv2d:
                out = try weightedBounds(o, op, x)
                scanned += tensor(op.inputs.1).dataBytes + (op.inputs.2 >= 0 ? tensor(op.inputs.2).dataBytes : 0)
            case .add:
                let y = op.inputs.1 == previous.tensor ? previous.interval : seen
                let allowance = (x.magnitude + y.magnitude) * 0x1p-23
                let sum = ValueInterval(lo: x.lo + y.lo - allowance, hi: x.hi + y.hi + allowance)
                guard sum.magnitude <= valueBoundLimit else { throw .valueOverflow(op: o, bound: sum.magnitude) }
                out = sum.clamped(op.activation)
            case .maxPool2d:
                out = x
            case .avgPool2d, .globalAveragePool:
                let taps = op.opcode == .avgPool2d ? Int(op.params.0) * Int(op.params.1)
                                                   : tensor(op.inputs.0).dims.0 * tensor(op.inputs.0).dims.1
                let sum = Double(taps) * x.magnitude * (1 + Double(taps) * 0x1p-23)
                guard sum <= valueBoundLimit else { throw .valueOverflow(op: o, bound: sum) }
                out = x
            case .reshape:
                out = x
            case .softmax:
                out = ValueInterval(lo: 0, hi: 1)
            case .l2Normalize:
                out = ValueInterval(lo: -1, hi: 1)
            case .dequantize:
                let q = quant(tensor(op.inputs.0), 0)
                let scale = Double(q.scale), zero = Double(q.zeroPoint)
                out = ValueInterval(lo: scale * (-128 - zero), hi: scale * (127 - zero))
            case .quantize:
                out = ValueInterval.empty  // unreachable: its output is int8
            }
            guard out.magnitude <= valueBoundLimit else { throw .valueOverflow(op: o, bound: out.magnitude) }
            seen = seen.union(out)
            previous = (op.output, out)
        }
        return scanned
    }

    /// The output interval of a Float32 Dense, Conv2D or DepthwiseConv2D whose
    /// input lies in `x`; throws when an accumulator can pass the limit.
    private func weightedBounds(_ o: Int, _ op: OpInfo, _ x: ValueInterval) throws(SprigError) -> ValueInterval {
        let w = tensor(op.inputs.1)
        let weights = constantBytes(w)
        // Element (channel c, reduction step j) sits at c·channelStride + j·stepStride.
        let channels: Int, steps: Int, channelStride: Int, stepStride: Int
        var input = x
        switch op.opcode {
        case .dense:  // [Out][In]
            channels = w.dims.0; steps = w.dims.1; channelStride = steps; stepStride = 1
        case .conv2d:  // [KH][KW][Cin][Cout]
            channels = w.dims.3; steps = w.dims.0 * w.dims.1 * w.dims.2; channelStride = 1; stepStride = channels
        case .depthwiseConv2d:  // [KH][KW][C]
            channels = w.dims.2; steps = w.dims.0 * w.dims.1; channelStride = 1; stepStride = channels
        case .maxPool2d, .avgPool2d, .globalAveragePool, .add, .reshape, .softmax, .quantize, .dequantize, .l2Normalize:
            return x  // not reached: the caller sends only the weighted ops
        }
        if op.opcode != .dense && (op.params.2 != 0 || op.params.3 != 0 || op.params.4 != 0 || op.params.5 != 0) {
            input = x.withZero
        }
        let m = input.magnitude
        let rounding = Double(steps) * 0x1p-23
        let hasBias = op.inputs.2 >= 0
        let bias = constantBytes(tensor(hasBias ? op.inputs.2 : op.inputs.1))
        var out = ValueInterval.empty
        for c in 0..<channels {
            var positive = 0.0, negative = 0.0
            var e = c * channelStride
            for _ in 0..<steps {
                let v = Double(Float(bitPattern: readU32(weights, 4 * e)))
                if v > 0 { positive += v } else { negative += v }
                e += stepStride
            }
            let b = hasBias ? Double(Float(bitPattern: readU32(bias, 4 * c))) : 0
            let magnitude = abs(b) + (positive - negative) * m
            let allowance = magnitude * rounding
            guard magnitude + allowance <= valueBoundLimit else {
                throw .valueOverflow(op: o, bound: magnitude + allowance)
            }
            let channel = ValueInterval(lo: b + positive * input.lo + negative * input.hi - allowance,
                                        hi: b + positive * input.hi + negative * input.lo + allowance)
            out = out.union(channel)
        }
        return out.clamped(op.activation)
    }
}
