// `reinit`, the seed's second transfer mode: the pruned architecture is kept,
// its weights are not. Every parameterised layer of the backbone is drawn
// anew, then trained from the shots together with the head, as `last` with
// every layer (BackboneSegment.swift, BackboneTraining.swift).
//
// The draw (He et al. 2015, the uniform form):
//   W[i] = limit · (r − 2²³) / 2²³,  r = next() >> 40  (24 bits, so the factor is exact, in [−1, 1))
//   limit = √(6 / fan_in),  b = 0
//   fan_in: Dense [Out][In] → In;  Conv2D [KH][KW][Cin][Cout] → KH·KW·Cin;
//           DepthwiseConv2D [KH][KW][C] → KH·KW
//
// One SplitMix64 seeded by FineTuneOptions.seed draws every weight: the
// layers in op order, each weight tensor in memory order. The draw writes
// only the `parameters` region of the arena; the blob keeps its weights.
// Then trainBackbone imprints the head on the random features and trains
// head and backbone for `epochs` epochs (default backbone lr 0.003).

/// The bound of the He-uniform draw for a layer with `fanIn` inputs per output.
///
/// ```swift
/// heUniformLimit(fanIn: 6)     // 1.0
/// heUniformLimit(fanIn: 150)   // 0.2
/// ```
public func heUniformLimit(fanIn: Int) -> Float {
    sqrtF32(6 / Float(max(fanIn, 1)))
}

/// Fills `count` floats with He-uniform values in `[−limit, limit)`,
/// `limit = heUniformLimit(fanIn:)`, one `rng.next()` per value.
///
/// ```swift
/// var rng = SplitMix64RNG(seed: 0)
/// heUniformFill(w, count: 4, fanIn: 6, rng: &rng)   // four values in [−1, 1)
/// ```
/// - Complexity: O(count); no allocation.
public func heUniformFill(_ values: UnsafeMutablePointer<Float>, count: Int, fanIn: Int, rng: inout SplitMix64RNG) {
    let limit = heUniformLimit(fanIn: fanIn)
    var i = 0
    while i < count {
        let r = Int32(truncatingIfNeeded: rng.next() >> 40)
        values[i] = Float(r &- 8_388_608) * 0x1p-23 * limit
        i &+= 1
    }
}

/// Inputs per output of a parameterised op's weight tensor `w` (see the table above); 0 for other ops.
func fanIn(_ opcode: Opcode, weights w: TensorInfo) -> Int {
    switch opcode {
    case .dense: return w.dims.1
    case .conv2d: return w.dims.0 &* w.dims.1 &* w.dims.2
    case .depthwiseConv2d: return w.dims.0 &* w.dims.1
    default: return 0
    }
}

extension FineTuner {
    /// Overwrites the trained parameters of `segment` in the arena (the slot
    /// table filled): every weight tensor drawn He-uniform from a generator
    /// seeded with `seed`, every bias 0.
    func reinitialiseParameters(layout: FineTuneLayout, segment: BackboneSegment, seed: UInt64) {
        let table = int32s(layout.slots)
        let params = floats(layout.parameters)
        var rng = SplitMix64RNG(seed: seed)
        for o in segment.firstOp..<segment.endOp {
            let op = model.op(o)
            guard isParameterised(op.opcode) else { continue }
            let weights = op.inputs.1
            if weights >= 0, table[4 &* weights &+ 2] >= 0 {
                let info = model.tensor(weights)
                heUniformFill(params + Int(table[4 &* weights &+ 2]) / 4, count: info.dataBytes / 4,
                              fanIn: fanIn(op.opcode, weights: info), rng: &rng)
            }
            let bias = op.inputs.2
            if bias >= 0, table[4 &* bias &+ 2] >= 0 {
                (params + Int(table[4 &* bias &+ 2]) / 4).update(repeating: 0, count: model.tensor(bias).dataBytes / 4)
            }
        }
    }
}
