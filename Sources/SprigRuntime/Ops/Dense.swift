// Dense (fully connected), Float32 and int8.
//
//   input   [In]
//   weights [Out][In]     row o holds the weights of output o
//   bias    [Out]         Float32, or Int32 in scale s_in·s_w (q8); nil = 0
//   output  [Out]
//
//   out[o] = bias[o] + Σ_i in[i] · w[o][i]
//
// Four output rows are computed together so that every input vector load is
// shared by four rows of weights; when 4 does not divide Out, the last group of
// four is moved back to end at Out (its overlap recomputed with the same
// arithmetic). On x86-64 the int8 kernel multiplies pairs of inputs with
// vpmaddwd (see pairedTaps and multiplyAddPairs in KernelSupport.swift).

// MARK: - Float32

/// Float32 dense layer with a fused clamp: `out[o] = clamp(bias[o] + Σ_i in[i]·w[o][i])`.
///
/// - Parameters:
///   - input: `[inputCount]`.
///   - weights: `[outputCount][inputCount]`.
///   - bias: `[outputCount]`, or nil for zero.
///   - output: `[outputCount]`; must not alias `input`.
/// - Complexity: O(inputCount·outputCount); no allocation.
public func denseF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                     output: UnsafeMutablePointer<Float>, inputCount: Int, outputCount: Int, clamp: ClampF32) {
    let n = inputCount
    let vectorEnd = n &- n % 16
    // Four rows at a time; when 4 does not divide outputCount the last group is
    // moved back to end at outputCount (its overlap recomputed identically).
    // Compact kernels (BuildOptions.swift) take every row alone: the same sums.
    var group = 0
    while tiledKernelsBuilt, let o = channelBlock(group, width: 4, count: outputCount) {
        let w0 = weights + o &* n, w1 = w0 + n, w2 = w1 + n, w3 = w2 + n
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var i = 0
        while i < vectorEnd {
            let x: SIMD16<Float> = loadLanes(input + i)
            a0 = a0.addingProduct(x, loadLanes(w0 + i))
            a1 = a1.addingProduct(x, loadLanes(w1 + i))
            a2 = a2.addingProduct(x, loadLanes(w2 + i))
            a3 = a3.addingProduct(x, loadLanes(w3 + i))
            i &+= 16
        }
        var s0 = a0.sum(), s1 = a1.sum(), s2 = a2.sum(), s3 = a3.sum()
        while i < n {
            let x = input[i]
            s0 += x * w0[i]; s1 += x * w1[i]; s2 += x * w2[i]; s3 += x * w3[i]
            i &+= 1
        }
        if let bias {
            s0 += bias[o]; s1 += bias[o &+ 1]; s2 += bias[o &+ 2]; s3 += bias[o &+ 3]
        }
        output[o] = clampScalarF32(s0, clamp)
        output[o &+ 1] = clampScalarF32(s1, clamp)
        output[o &+ 2] = clampScalarF32(s2, clamp)
        output[o &+ 3] = clampScalarF32(s3, clamp)
        group &+= 1
    }
    // Fewer than 4 rows: one at a time.
    var o = tiledKernelsBuilt && outputCount >= 4 ? outputCount : 0
    while o < outputCount {
        let w0 = weights + o &* n
        var a0 = SIMD16<Float>()
        var i = 0
        while i < vectorEnd {
            a0 = a0.addingProduct(loadLanes(input + i) as SIMD16<Float>, loadLanes(w0 + i))
            i &+= 16
        }
        var s0 = a0.sum()
        while i < n {
            s0 += input[i] * w0[i]
            i &+= 1
        }
        if let bias { s0 += bias[o] }
        output[o] = clampScalarF32(s0, clamp)
        o &+= 1
    }
}

// MARK: - int8

/// int8 dense layer (TFLite scheme): symmetric per-output-channel weights,
/// asymmetric input, int32 bias, per-channel requantization and fused clamp.
///
/// ```
/// acc[o] = bias[o] + Σ_i (in[i] − inputZeroPoint) · w[o][i]          (Int32, wrapping)
/// out[o] = clamp(multiplyByQuantizedMultiplier(acc[o], requant.multipliers[o], requant.shifts[o])
///                + requant.outputZeroPoint, requant.clampMin, requant.clampMax)
/// ```
/// The Int32 sum wraps on overflow (a documented choice, as in TFLite); it
/// cannot overflow for inputCount ≤ 2^16 and a bias within ±2^30, since each
/// product is at most 255·128 in magnitude.
/// - Parameters:
///   - input: `[inputCount]`.
///   - inputZeroPoint: −128...127.
///   - weights: `[outputCount][inputCount]`, zero point 0.
///   - bias: `[outputCount]` in scale s_in·s_w, or nil for zero.
///   - output: `[outputCount]`; must not alias `input`.
///   - requant: `[outputCount]` multipliers and shifts, output zero point and clamp.
/// - Complexity: O(inputCount·outputCount); no allocation.
public func denseQ8(input: UnsafePointer<Int8>, inputZeroPoint: Int32, weights: UnsafePointer<Int8>,
                    bias: UnsafePointer<Int32>?, output: UnsafeMutablePointer<Int8>,
                    inputCount: Int, outputCount: Int, requant: RequantQ8) {
    let n = inputCount
    let vectorEnd = pairedTaps ? n &- n % 16 : 0      // the vpmaddwd loop: x86-64 only
    let stage = OutputStageQ8(zeroPoint: requant.outputZeroPoint, clampMin: requant.clampMin,
                              clampMax: requant.clampMax)
    // Inputs as Int16 pairs minus the zero point (|x − zp| ≤ 255), weights as
    // Int16 pairs: one vpmaddwd per 16 inputs and row (exact, see
    // multiplyAddPairs). The zero point subtraction also hides the input's
    // provenance from the optimizer, as PairBarrier.hide does for the weights.
    let zeroPoint = SIMD16<Int16>(repeating: Int16(truncatingIfNeeded: inputZeroPoint))
    let barrier = PairBarrier(count: n)
    // Four rows at a time; when 4 does not divide outputCount the last group is
    // moved back to end at outputCount (its overlap recomputed identically).
    // Fewer than 4 rows: one at a time.
    var group = 0
    while let o = channelBlock(group, width: 4, count: outputCount) {
        let w0 = weights + o &* n, w1 = w0 + n, w2 = w1 + n, w3 = w2 + n
        var a0 = SIMD8<Int32>(), a1 = SIMD8<Int32>(), a2 = SIMD8<Int32>(), a3 = SIMD8<Int32>()
        var i = 0
        while i < vectorEnd {
            let x = widenedPairs(input + i) &- zeroPoint
            a0 &+= barrier.hide(multiplyAddPairs(x, barrier.hide(widenedPairs(w0 + i))))
            a1 &+= barrier.hide(multiplyAddPairs(x, barrier.hide(widenedPairs(w1 + i))))
            a2 &+= barrier.hide(multiplyAddPairs(x, barrier.hide(widenedPairs(w2 + i))))
            a3 &+= barrier.hide(multiplyAddPairs(x, barrier.hide(widenedPairs(w3 + i))))
            i &+= 16
        }
        // 8 inputs at a time in Int32 lanes (the rest after the pairs, or all of
        // them without), then a scalar tail of at most 7.
        while i &+ 8 <= n {
            let x = loadWidened8(input + i) &- SIMD8<Int32>(repeating: inputZeroPoint)
            a0 &+= x &* loadWidened8(w0 + i); a1 &+= x &* loadWidened8(w1 + i)
            a2 &+= x &* loadWidened8(w2 + i); a3 &+= x &* loadWidened8(w3 + i)
            i &+= 8
        }
        var s0 = a0.wrappedSum(), s1 = a1.wrappedSum(), s2 = a2.wrappedSum(), s3 = a3.wrappedSum()
        while i < n {
            let x = Int32(input[i]) &- inputZeroPoint
            s0 &+= x &* Int32(w0[i]); s1 &+= x &* Int32(w1[i])
            s2 &+= x &* Int32(w2[i]); s3 &+= x &* Int32(w3[i])
            i &+= 1
        }
        if let bias {
            s0 &+= bias[o]; s1 &+= bias[o &+ 1]; s2 &+= bias[o &+ 2]; s3 &+= bias[o &+ 3]
        }
        output[o] = stage(multiplyByQuantizedMultiplier(s0, requant.multipliers[o], requant.shifts[o]))
        output[o &+ 1] = stage(multiplyByQuantizedMultiplier(s1, requant.multipliers[o &+ 1], requant.shifts[o &+ 1]))
        output[o &+ 2] = stage(multiplyByQuantizedMultiplier(s2, requant.multipliers[o &+ 2], requant.shifts[o &+ 2]))
        output[o &+ 3] = stage(multiplyByQuantizedMultiplier(s3, requant.multipliers[o &+ 3], requant.shifts[o &+ 3]))
        group &+= 1
    }
    // Fewer than 4 rows: one at a time.
    var o = outputCount >= 4 ? outputCount : 0
    while o < outputCount {
        let w0 = weights + o &* n
        var a0 = SIMD8<Int32>()
        var i = 0
        while i < vectorEnd {
            a0 &+= barrier.hide(multiplyAddPairs(widenedPairs(input + i) &- zeroPoint, barrier.hide(widenedPairs(w0 + i))))
            i &+= 16
        }
        while i &+ 8 <= n {
            a0 &+= (loadWidened8(input + i) &- SIMD8<Int32>(repeating: inputZeroPoint)) &* loadWidened8(w0 + i)
            i &+= 8
        }
        var s0 = a0.wrappedSum()
        while i < n {
            s0 &+= (Int32(input[i]) &- inputZeroPoint) &* Int32(w0[i])
            i &+= 1
        }
        if let bias { s0 &+= bias[o] }
        output[o] = stage(multiplyByQuantizedMultiplier(s0, requant.multipliers[o], requant.shifts[o]))
        o &+= 1
    }
}

/// 16 int8 at `pointer` sign-extended to Int16 (vpmovsxbw).
@inline(__always)
private func widenedPairs(_ pointer: UnsafePointer<Int8>) -> SIMD16<Int16> {
    let b: SIMD16<Int8> = loadLanes(pointer)
    return SIMD16(Int16(b[0]), Int16(b[1]), Int16(b[2]), Int16(b[3]), Int16(b[4]), Int16(b[5]), Int16(b[6]), Int16(b[7]),
                  Int16(b[8]), Int16(b[9]), Int16(b[10]), Int16(b[11]), Int16(b[12]), Int16(b[13]), Int16(b[14]), Int16(b[15]))
}

// MARK: - Float32 backward (fine-tuning)

/// Backward of ``denseF32(input:weights:bias:output:inputCount:outputCount:clamp:)``
/// for `dz`, the gradient of the loss with respect to the pre-activation
/// output (apply ``activationBackwardF32(output:gradient:count:clamp:)`` to
/// the output's gradient first). Accumulates; the caller zeroes.
///
/// `dx[i] += Σ_o dz[o]·w[o][i]`, `dW[o][i] += dz[o]·x[i]`, `db[o] += dz[o]`.
/// Example: x = [1, 2], W = [[3, 4]], dz = [0.5] → dx += [1.5, 2], dW += [[0.5, 1]], db += [0.5].
///
/// - Parameters:
///   - inputGradient, weightGradient, biasGradient: nil to skip that gradient.
/// - Complexity: O(inputCount·outputCount) per gradient asked for; no allocation.
public func denseBackwardF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                             outputGradient dz: UnsafePointer<Float>, inputGradient: UnsafeMutablePointer<Float>?,
                             weightGradient: UnsafeMutablePointer<Float>?, biasGradient: UnsafeMutablePointer<Float>?,
                             inputCount: Int, outputCount: Int) {
    let n = inputCount
    for o in 0..<outputCount {
        let g = dz[o]
        if let db = biasGradient { db[o] += g }
        if let dw = weightGradient {
            let row = dw + o &* n
            for i in 0..<n { row[i] += g * input[i] }
        }
        if let dx = inputGradient {
            let row = weights + o &* n
            for i in 0..<n { dx[i] += g * row[i] }
        }
    }
}

/// Turns the gradient of a fused activation's output into the gradient of its
/// input, in place: `g[i] = 0` where the clamp was active (`y ≤ lower` or
/// `y ≥ upper`), unchanged elsewhere. At the kink itself the gradient is 0.
/// Example: ReLU, y = [0, 2], g = [5, 7] → g = [0, 7].
/// - Complexity: O(count); nothing when `clamp` is ``ClampF32/none``.
public func activationBackwardF32(output: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>, count: Int,
                                  clamp: ClampF32) {
    if clamp.lower == -Float.infinity && clamp.upper == Float.infinity { return }
    for i in 0..<count {
        let y = output[i]
        if !(y > clamp.lower && y < clamp.upper) { gradient[i] = 0 }
    }
}

// MARK: - Validation (at load)

extension Model {
    /// Dense op `o` with input `xi`: weights `[Out][In]` with `In` the input's
    /// element count, an output of `Out` elements, then the bias and the int8
    /// quantization (per output channel along axis 0). No params.
    /// Returns the bytes of the requantization tables it scanned.
    func validateDense(_ o: Int, _ op: OpInfo, _ xi: TensorInfo) throws(SprigError) -> Int {
        let (wi, out) = try validateWeightedInputs(o, op, xi)
        guard wi.rank == 2 else { throw .shapeMismatch(op: o, slot: 1, expected: 2, found: wi.rank) }
        let outChannels = wi.dims.0
        guard xi.elementCount == wi.dims.1 else {
            throw .shapeMismatch(op: o, slot: 0, expected: wi.dims.1, found: xi.elementCount)
        }
        guard out.elementCount == outChannels else {
            throw .shapeMismatch(op: o, slot: -1, expected: outChannels, found: out.elementCount)
        }
        let scanned = try validateWeightedTail(o, op, xi, weights: wi, outChannels: outChannels, quantAxis: 0)
        try expectZeroParams(o, op, from: 0)
        return scanned
    }
}
