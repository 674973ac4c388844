// Elementwise Add (residual connections), Float32 and int8.
//
//   a, b, output   [count]   (same shape, no broadcasting)

// MARK: - Float32

/// Float32 elementwise add with a fused clamp: `out[i] = clamp(a[i] + b[i])`.
///
/// `output` may be `a` or `b` (each element is read before it is written), but
/// must not partly overlap them.
/// - Complexity: O(count); no allocation.
public func addF32(a: UnsafePointer<Float>, b: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                   count: Int, clamp: ClampF32) {
    var i = 0
    while i &+ 16 <= count {
        storeClamped(loadLanes(a + i) + loadLanes(b + i) as SIMD16<Float>, output + i, clamp)
        i &+= 16
    }
    while i < count {
        output[i] = clampScalarF32(a[i] + b[i], clamp)
        i &+= 1
    }
}

// MARK: - int8

/// int8 elementwise add in the TFLite scheme (`AddQ8Params`):
///
/// ```
/// a'' = multiplyByQuantizedMultiplier((a − aZeroPoint) << leftShift, aMultiplier, aShift)
/// b'' = multiplyByQuantizedMultiplier((b − bZeroPoint) << leftShift, bMultiplier, bShift)
/// out = clamp(multiplyByQuantizedMultiplier(a'' + b'', outputMultiplier, outputShift)
///             + outputZeroPoint, clampMin, clampMax)
/// ```
/// The shift `<< leftShift` (0...31) and the sum `a'' + b''` wrap in Int32, as
/// in TFLite; with TFLite's parameters (leftShift 20, multipliers < 1) neither
/// can overflow.
///
/// Worked example (all scales equal, leftShift 20, aMultiplier = bMultiplier =
/// 2^30 with shift 0, i.e. ×0.5, outputMultiplier 2^30 with shift −18, i.e.
/// ×2^−19, zero points 0): a = 3, b = 4 → 3·2^20·0.5 + 4·2^20·0.5 = 3.5·2^20
/// → ×2^−19 = 7.
/// - Complexity: O(count); no allocation.
public func addQ8(a: UnsafePointer<Int8>, b: UnsafePointer<Int8>, output: UnsafeMutablePointer<Int8>,
                  count: Int, params: AddQ8Params) {
    let p = params
    let stage = OutputStageQ8(zeroPoint: p.outputZeroPoint, clampMin: p.clampMin, clampMax: p.clampMax)
    let requantA = Requant8(multiplier: p.aMultiplier, shift: p.aShift)
    let requantB = Requant8(multiplier: p.bMultiplier, shift: p.bShift)
    let requantOut = Requant8(multiplier: p.outputMultiplier, shift: p.outputShift)
    let aZero = SIMD8<Int32>(repeating: p.aZeroPoint), bZero = SIMD8<Int32>(repeating: p.bZeroPoint)
    let leftShift = SIMD8<Int32>(repeating: p.leftShift)
    var i = 0
    #if arch(x86_64)
    // The inputs' rescaling in 32-bit lanes (`AddInputRescale32`), the output's in 64 bits:
    // TFLite's parameters (left shift 20, input multipliers ≤ 1) always take it.
    if let rescaleA = AddInputRescale32(zeroPoint: p.aZeroPoint, leftShift: p.leftShift,
                                        multiplier: p.aMultiplier, shift: p.aShift),
       let rescaleB = AddInputRescale32(zeroPoint: p.bZeroPoint, leftShift: p.leftShift,
                                        multiplier: p.bMultiplier, shift: p.bShift),
       oneShiftDomain(p.outputMultiplier, p.outputShift) {
        let requantOut16 = Requant16Uniform(multiplier: p.outputMultiplier, shift: p.outputShift)
        // Two blocks per pass: two independent chains of dependent vector ops.
        while i &+ 32 <= count {
            let s0 = rescaleA.apply(loadWidened16(a + i)) &+ rescaleB.apply(loadWidened16(b + i))
            let s1 = rescaleA.apply(loadWidened16(a + (i &+ 16))) &+ rescaleB.apply(loadWidened16(b + (i &+ 16)))
            storeLanes(stage(requantOut16.apply(s0)), output + i)
            storeLanes(stage(requantOut16.apply(s1)), output + (i &+ 16))
            i &+= 32
        }
        while i &+ 16 <= count {
            let s = rescaleA.apply(loadWidened16(a + i)) &+ rescaleB.apply(loadWidened16(b + i))
            storeLanes(stage(requantOut16.apply(s)), output + i)
            i &+= 16
        }
    }
    // 16 lanes at a time, each requantization one rounding shift in 64 bits (`Requant16Uniform`,
    // the same values as `Requant8.apply` in its domain, which every validated blob's is;
    // x86-64 only, where the 64-bit lanes are vpmuldq/vpsravq: elsewhere the 8-lane loop, unmeasured).
    if oneShiftDomain(p.aMultiplier, p.aShift) && oneShiftDomain(p.bMultiplier, p.bShift)
        && oneShiftDomain(p.outputMultiplier, p.outputShift) {
        let requantA16 = Requant16Uniform(multiplier: p.aMultiplier, shift: p.aShift)
        let requantB16 = Requant16Uniform(multiplier: p.bMultiplier, shift: p.bShift)
        let requantOut16 = Requant16Uniform(multiplier: p.outputMultiplier, shift: p.outputShift)
        let aZero16 = SIMD16<Int32>(repeating: p.aZeroPoint), bZero16 = SIMD16<Int32>(repeating: p.bZeroPoint)
        let leftShift16 = SIMD16<Int32>(repeating: p.leftShift)
        // Two blocks per pass: two independent chains of dependent vector ops.
        while i &+ 32 <= count {
            let x0 = requantA16.apply((loadWidened16(a + i) &- aZero16) &<< leftShift16)
            let x1 = requantA16.apply((loadWidened16(a + (i &+ 16)) &- aZero16) &<< leftShift16)
            let y0 = requantB16.apply((loadWidened16(b + i) &- bZero16) &<< leftShift16)
            let y1 = requantB16.apply((loadWidened16(b + (i &+ 16)) &- bZero16) &<< leftShift16)
            let s0 = requantOut16.apply(x0 &+ y0), s1 = requantOut16.apply(x1 &+ y1)
            storeLanes(stage(s0), output + i)
            storeLanes(stage(s1), output + (i &+ 16))
            i &+= 32
        }
        while i &+ 16 <= count {
            let x = requantA16.apply((loadWidened16(a + i) &- aZero16) &<< leftShift16)
            let y = requantB16.apply((loadWidened16(b + i) &- bZero16) &<< leftShift16)
            storeLanes(stage(requantOut16.apply(x &+ y)), output + i)
            i &+= 16
        }
    }
    #endif
    while i &+ 8 <= count {
        let x = requantA.apply((loadWidened8(a + i) &- aZero) &<< leftShift)
        let y = requantB.apply((loadWidened8(b + i) &- bZero) &<< leftShift)
        storeLanes(stage(requantOut.apply(x &+ y)), output + i)
        i &+= 8
    }
    while i < count {
        let x = multiplyByQuantizedMultiplier((Int32(a[i]) &- p.aZeroPoint) &<< p.leftShift, p.aMultiplier, p.aShift)
        let y = multiplyByQuantizedMultiplier((Int32(b[i]) &- p.bZeroPoint) &<< p.leftShift, p.bMultiplier, p.bShift)
        output[i] = stage(multiplyByQuantizedMultiplier(x &+ y, p.outputMultiplier, p.outputShift))
        i &+= 1
    }
}

/// The rescaling of one int8 input of Add in 32-bit lanes:
/// `multiplyByQuantizedMultiplier((x − zeroPoint) << leftShift, multiplier, shift)`, exactly,
/// where its parameters allow it (`init` returns nil elsewhere):
///
///     leftShift L in 8...20, zeroPoint in −128...127, shift s ≤ 0 with r = −s,
///     S = 31 + r − L ≤ 22, and multiplier M > 2^(30 − L) (so M > 0).
///
/// Why it is exact. Let v = x − zeroPoint, in −255...255, so v·2^L (< 2^28) does not wrap.
/// `Requant16` (FixedPoint.swift) shows that the two roundings of
/// `multiplyByQuantizedMultiplier` are one floor:
///
///     result = ⌊(P + 2^30 + K − [P + 2^30 < 0]·A) / 2^(31 + r)⌋,   P = v·2^L·M,
///     K = 2^(30+r), A = 2^31 (r ≥ 1);  K = A = 0 (r = 0).
///
/// Since M·2^L > 2^30, P + 2^30 < 0 exactly when v < 0 (v ≤ −1 gives P ≤ −M·2^L). Every
/// term of the numerator is a multiple of 2^L (L ≤ 20), so dividing it and the divisor by
/// 2^L changes nothing:
///
///     result = ⌊(v·M + c − [v < 0]·d) / 2^S⌋,   c = (2^30 + K) / 2^L,  d = A / 2^L.
///
/// With M = Mh·2^S + Ml (0 ≤ Ml < 2^S), v·M = v·Mh·2^S + v·Ml, and the multiple of 2^S
/// comes out of the floor:
///
///     result = v·Mh + ((v·Ml + c − [v < 0]·d) >> S)       (arithmetic shift = floor)
///
/// Every term fits Int32: |v·Ml| < 255·2^22 < 2^30, c ≤ 2^22 + 2^21, d ≤ 2^23, and
/// Mh < 2^(31−S) ≤ 2^20 so |v·Mh| < 2^28. Two 32-bit multiplies (vpmulld) where the
/// 64-bit form takes two vpmuldq and the even/odd split and merge; the sum of two results
/// is below 2^29 in magnitude, so it does not wrap either (nor does it in the scalar code).
///
/// Worked example: L = 20, M = 2^30 (×0.5), s = 0: S = 11, Mh = 2^19, Ml = 0,
/// c = 2^10, d = 0; x = 3, zeroPoint 0: 3·2^19 + (1024 >> 11) = 3·2^19 = 3·2^20·0.5.
struct AddInputRescale32 {
    var zeroPoint: SIMD16<Int32>
    var high: SIMD16<Int32>
    var low: SIMD16<Int32>
    var round: SIMD16<Int32>
    var negative: SIMD16<Int32>
    var shift: SIMD16<Int32>

    @inline(__always)
    init?(zeroPoint zp: Int32, leftShift l: Int32, multiplier m: Int32, shift s: Int32) {
        guard l >= 8 && l <= 20, zp >= -128 && zp <= 127, s <= 0, s >= -31,
              Int64(m) << Int64(l) > 1 << 30 else { return nil }
        let r = Int64(0 &- s), left = Int64(l)
        let bits = 31 &+ r &- left
        guard bits <= 22 else { return nil }
        let k: Int64 = r >= 1 ? 1 << (30 &+ r) : 0
        zeroPoint = SIMD16(repeating: zp)
        high = SIMD16(repeating: Int32(truncatingIfNeeded: Int64(m) >> bits))
        low = SIMD16(repeating: Int32(truncatingIfNeeded: Int64(m) & ((1 << bits) &- 1)))
        round = SIMD16(repeating: Int32(truncatingIfNeeded: ((1 << 30) &+ k) >> left))
        negative = SIMD16(repeating: r >= 1 ? Int32(truncatingIfNeeded: (1 as Int64) << (31 &- left)) : 0)
        shift = SIMD16(repeating: Int32(truncatingIfNeeded: bits))
    }

    /// The rescaled `x` (int8 values widened to Int32) of 16 lanes.
    @_transparent
    func apply(_ x: SIMD16<Int32>) -> SIMD16<Int32> {
        let v = x &- zeroPoint
        let fraction = v &* low &+ round &- ((v &>> 31) & negative)
        return v &* high &+ (fraction &>> shift)
    }
}

/// Whether `Requant16` computes this multiplier and shift as `Requant8` does.
@inline(__always)
private func oneShiftDomain(_ multiplier: Int32, _ shift: Int32) -> Bool {
    multiplier != Int32.min && shift >= -31 && shift <= 31
}

// MARK: - Params

extension AddQ8Params {
    /// The params of an int8 Add op: its params 0 … 6 (left shift, then the
    /// multiplier and shift of a, of b and of the output), the zero points of
    /// `a`, `b` and `output`, and the clamp of its fused activation.
    init(_ op: OpInfo, a: QuantParams, b: QuantParams, output: QuantParams) {
        let (lo, hi) = clampQ8(op.activation, output)
        self.init(aZeroPoint: a.zeroPoint, bZeroPoint: b.zeroPoint, outputZeroPoint: output.zeroPoint,
                  leftShift: op.params.0, aMultiplier: op.params.1, aShift: op.params.2,
                  bMultiplier: op.params.3, bShift: op.params.4, outputMultiplier: op.params.5,
                  outputShift: op.params.6, clampMin: lo, clampMax: hi)
    }
}

// MARK: - Validation (at load)

extension Model {
    /// Add op `o` with input `xi`: a second arena input and an output of the
    /// same dtype and element count. In int8, every tensor per tensor and params
    /// 0 … 6 the rescaling of ``AddQ8Params`` (left shift 0 … 20, then three
    /// multiplier-and-shift pairs: a, b, output); in Float32 no params.
    func validateAdd(_ o: Int, _ op: OpInfo, _ xi: TensorInfo) throws(SprigError) {
        let x = op.inputs.0, precision = xi.dtype
        try expectCount(o, op, 2)
        try expectArena(o, 0, x)
        let b = op.inputs.1
        guard b >= 0 else { throw .invalidField(field: .opInput, index: o, value: 1) }
        try expectArena(o, 1, b)
        let bi = tensor(b), out = tensor(op.output)
        try expectDType(o, 1, bi, precision)
        try expectDType(o, -1, out, precision)
        guard bi.elementCount == xi.elementCount else {
            throw .shapeMismatch(op: o, slot: 1, expected: xi.elementCount, found: bi.elementCount)
        }
        guard out.elementCount == xi.elementCount else {
            throw .shapeMismatch(op: o, slot: -1, expected: xi.elementCount, found: out.elementCount)
        }
        var usedParams = 0
        if precision == .i8 {
            try expectPerTensor(o, 0, x)
            try expectPerTensor(o, 1, b)
            try expectPerTensor(o, -1, op.output)
            guard op.params.0 >= 0 && op.params.0 <= 20 else {
                throw .invalidField(field: .opParam, index: o, value: Int(op.params.0))
            }
            try expectMultiplier(o, op.params.1, op.params.2)
            try expectMultiplier(o, op.params.3, op.params.4)
            try expectMultiplier(o, op.params.5, op.params.6)
            usedParams = 7
        }
        try expectZeroParams(o, op, from: usedParams)
    }
}
