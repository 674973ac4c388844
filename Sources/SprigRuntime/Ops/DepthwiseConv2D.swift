// Depthwise Conv2D (channel multiplier 1), Float32 and int8.
//
//   input   [H][W][C]
//   weights [KH][KW][C]
//   bias    [C]              Float32, or Int32 in scale s_in·s_w (q8); nil = 0
//   output  [OH][OW][C]      window.inputChannels == window.outputChannels == C
//
//   out[oy][ox][c] = bias[c] + Σ_{ky,kx valid} in[oy·sh − pt + ky][ox·sw − pl + kx][c] · w[ky][kx][c]
//
// Padding taps contribute nothing. Each output pixel walks its valid taps with
// channel blocks of 16 lanes (8 when C < 16), the last block moved back to end
// at C so that every C ≥ 8 stays vectorized (overlapping channels are recomputed
// with the same arithmetic); a scalar loop only for C < 8. Input and weights
// are both contiguous along channels.

// MARK: - Float32

/// Float32 depthwise 2-D convolution (channel multiplier 1) with a fused clamp.
///
/// - Parameters:
///   - input: `[inputHeight][inputWidth][C]`.
///   - weights: `[kernelHeight][kernelWidth][C]`.
///   - bias: `[C]`, or nil for zero.
///   - output: `[outputHeight][outputWidth][C]`; must not alias `input`.
///   - window: geometry; `inputChannels == outputChannels == C`.
/// - Complexity: O(OH·OW·KH·KW·C); no allocation.
public func depthwiseConv2dF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               output: UnsafeMutablePointer<Float>, window: Window2D, clamp: ClampF32) {
    let w = window
    let channels = w.outputChannels
    var oy = 0
    while oy < w.outputHeight {
        let rowOrigin = oy &* w.strideHeight &- w.padTop
        let rows = validTaps(origin: rowOrigin, kernel: w.kernelHeight, extent: w.inputHeight)
        var ox = 0
        while ox < w.outputWidth {
            let columnOrigin = ox &* w.strideWidth &- w.padLeft
            let cols = validTaps(origin: columnOrigin, kernel: w.kernelWidth, extent: w.inputWidth)
            let out = output + (oy &* w.outputWidth &+ ox) &* channels
            // Blocks of 16 (C ≥ 16) or 8 lanes, the last one moved back to end at C
            // (see channelBlock); a scalar loop only when C < 8.
            var block = 0
            while let c = channelBlock(block, width: 16, count: channels) {
                let acc = depthwisePixelF32(SIMD16<Float>.self, input: input, weights: weights, bias: bias,
                                            window: w, rowOrigin: rowOrigin, columnOrigin: columnOrigin,
                                            rows: rows, cols: cols, channel: c)
                storeClamped(acc, out + c, clamp)
                block &+= 1
            }
            while channels < 16, let c = channelBlock(block, width: 8, count: channels) {
                let acc = depthwisePixelF32(SIMD8<Float>.self, input: input, weights: weights, bias: bias,
                                            window: w, rowOrigin: rowOrigin, columnOrigin: columnOrigin,
                                            rows: rows, cols: cols, channel: c)
                storeClamped(acc, out + c, clamp)
                block &+= 1
            }
            var c = channels >= 8 ? channels : 0
            while c < channels {
                var acc: Float = 0
                if let bias { acc = bias[c] }
                var ky = rows.first
                while ky < rows.end {
                    var kx = cols.first
                    while kx < cols.end {
                        let x = input[((rowOrigin &+ ky) &* w.inputWidth &+ columnOrigin &+ kx) &* channels &+ c]
                        acc += x * weights[(ky &* w.kernelWidth &+ kx) &* channels &+ c]
                        kx &+= 1
                    }
                    ky &+= 1
                }
                out[c] = clampScalarF32(acc, clamp)
                c &+= 1
            }
            ox &+= 1
        }
        oy &+= 1
    }
}

/// The accumulator of channels `channel ..< channel + V.scalarCount` of one output pixel.
@inline(__always)
private func depthwisePixelF32<V: SIMD>(_: V.Type, input: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                                        bias: UnsafePointer<Float>?, window w: Window2D,
                                        rowOrigin: Int, columnOrigin: Int,
                                        rows: (first: Int, end: Int), cols: (first: Int, end: Int),
                                        channel c: Int) -> V where V.Scalar == Float {
    let channels = w.outputChannels
    var acc = V()
    if let bias { acc = loadLanes(bias + c) }
    var ky = rows.first
    while ky < rows.end {
        var x = input + (((rowOrigin &+ ky) &* w.inputWidth &+ columnOrigin &+ cols.first) &* channels &+ c)
        var k = weights + ((ky &* w.kernelWidth &+ cols.first) &* channels &+ c)
        var kx = cols.first
        while kx < cols.end {
            acc = acc.addingProduct(loadLanes(x) as V, loadLanes(k) as V)
            x += channels
            k += channels
            kx &+= 1
        }
        ky &+= 1
    }
    return acc
}

// MARK: - int8

/// int8 depthwise 2-D convolution (channel multiplier 1), TFLite scheme:
/// per-channel symmetric weights, asymmetric input, int32 bias, per-channel
/// requantization and fused clamp.
///
/// ```
/// acc[c] = bias[c] + Σ_{valid taps} (in − inputZeroPoint) · w[ky][kx][c]     (Int32, wrapping)
/// out[c] = clamp(multiplyByQuantizedMultiplier(acc, requant.multipliers[c], requant.shifts[c])
///                + requant.outputZeroPoint, requant.clampMin, requant.clampMax)
/// ```
/// Padding taps are skipped.
/// - Parameters:
///   - input: `[inputHeight][inputWidth][C]`.
///   - inputZeroPoint: −128...127.
///   - weights: `[kernelHeight][kernelWidth][C]`, zero point 0.
///   - bias: `[C]` in scale s_in·s_w, or nil for zero.
///   - output: `[outputHeight][outputWidth][C]`; must not alias `input`.
///   - window: geometry; `inputChannels == outputChannels == C`.
///   - requant: `[C]` multipliers and shifts, output zero point and clamp.
/// - Complexity: O(OH·OW·KH·KW·C); no allocation.
public func depthwiseConv2dQ8(input: UnsafePointer<Int8>, inputZeroPoint: Int32, weights: UnsafePointer<Int8>,
                              bias: UnsafePointer<Int32>?, output: UnsafeMutablePointer<Int8>,
                              window: Window2D, requant: RequantQ8) {
    let w = window
    let channels = w.outputChannels
    let stage = OutputStageQ8(zeroPoint: requant.outputZeroPoint, clampMin: requant.clampMin,
                              clampMax: requant.clampMax)
    let zeroPoint8 = SIMD8<Int32>(repeating: inputZeroPoint)
    var oy = 0
    while oy < w.outputHeight {
        let rowOrigin = oy &* w.strideHeight &- w.padTop
        let rows = validTaps(origin: rowOrigin, kernel: w.kernelHeight, extent: w.inputHeight)
        var ox = 0
        while ox < w.outputWidth {
            let columnOrigin = ox &* w.strideWidth &- w.padLeft
            let cols = validTaps(origin: columnOrigin, kernel: w.kernelWidth, extent: w.inputWidth)
            let out = output + (oy &* w.outputWidth &+ ox) &* channels
            // Offsets of the first valid tap of channel 0, in the input and in the weights.
            let inputStart = ((rowOrigin &+ rows.first) &* w.inputWidth &+ columnOrigin &+ cols.first) &* channels
            let weightsStart = (rows.first &* w.kernelWidth &+ cols.first) &* channels
            let inputRowStep = w.inputWidth &* channels
            let weightsRowStep = w.kernelWidth &* channels
            let tapRows = rows.end &- rows.first, tapCols = cols.end &- cols.first
            // Blocks of 16 (C ≥ 16) or 8 lanes, the last one moved back to end at C
            // (see channelBlock); a scalar loop only when C < 8.
            var block = 0
            while let c = channelBlock(block, width: 16, count: channels) {
                var low = SIMD8<Int32>(), high = SIMD8<Int32>()
                if let bias { low = loadLanes(bias + c); high = loadLanes(bias + (c &+ 8)) }
                var r = 0
                while r < tapRows {
                    var x = input + (inputStart &+ r &* inputRowStep &+ c)
                    var k = weights + (weightsStart &+ r &* weightsRowStep &+ c)
                    var t = 0
                    while t < tapCols {
                        low &+= (loadWidened8(x) &- zeroPoint8) &* loadWidened8(k)
                        high &+= (loadWidened8(x + 8) &- zeroPoint8) &* loadWidened8(k + 8)
                        x += channels
                        k += channels
                        t &+= 1
                    }
                    r &+= 1
                }
                let qLow = Requant8(multipliers: requant.multipliers, shifts: requant.shifts, channel: c)
                let qHigh = Requant8(multipliers: requant.multipliers, shifts: requant.shifts, channel: c &+ 8)
                storeLanes(stage(qLow.apply(low)), out + c)
                storeLanes(stage(qHigh.apply(high)), out + (c &+ 8))
                block &+= 1
            }
            while channels < 16, let c = channelBlock(block, width: 8, count: channels) {
                var acc = SIMD8<Int32>()
                if let bias { acc = loadLanes(bias + c) }
                var r = 0
                while r < tapRows {
                    var x = input + (inputStart &+ r &* inputRowStep &+ c)
                    var k = weights + (weightsStart &+ r &* weightsRowStep &+ c)
                    var t = 0
                    while t < tapCols {
                        acc &+= (loadWidened8(x) &- zeroPoint8) &* loadWidened8(k)
                        x += channels
                        k += channels
                        t &+= 1
                    }
                    r &+= 1
                }
                let q = Requant8(multipliers: requant.multipliers, shifts: requant.shifts, channel: c)
                storeLanes(stage(q.apply(acc)), out + c)
                block &+= 1
            }
            var c = channels >= 8 ? channels : 0
            while c < channels {
                var acc: Int32 = 0
                if let bias { acc = bias[c] }
                var r = 0
                while r < tapRows {
                    var t = 0
                    while t < tapCols {
                        let x = Int32(input[inputStart &+ r &* inputRowStep &+ t &* channels &+ c])
                        acc &+= (x &- inputZeroPoint) &* Int32(weights[weightsStart &+ r &* weightsRowStep &+ t &* channels &+ c])
                        t &+= 1
                    }
                    r &+= 1
                }
                out[c] = stage(multiplyByQuantizedMultiplier(acc, requant.multipliers[c], requant.shifts[c]))
                c &+= 1
            }
            ox &+= 1
        }
        oy &+= 1
    }
}

// MARK: - Float32 backward (fine-tuning)

/// Backward of ``depthwiseConv2dF32(input:weights:bias:output:window:clamp:)``
/// for `dz`, the gradient of the pre-activation output. Accumulates; the caller zeroes.
///
/// `dx[iy][ix][c] += w[ky][kx][c]·dz[oy][ox][c]`, `dW[ky][kx][c] += x[iy][ix][c]·dz[oy][ox][c]`,
/// `db[c] += dz[oy][ox][c]`, over the valid taps.
/// - Complexity: O(OH·OW·KH·KW·C); no allocation.
public func depthwiseConv2dBackwardF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                                       outputGradient dz: UnsafePointer<Float>,
                                       inputGradient: UnsafeMutablePointer<Float>?,
                                       weightGradient: UnsafeMutablePointer<Float>?,
                                       biasGradient: UnsafeMutablePointer<Float>?, window w: Window2D) {
    let channels = w.outputChannels
    for oy in 0..<w.outputHeight {
        let rowOrigin = oy &* w.strideHeight &- w.padTop
        let rows = validTaps(origin: rowOrigin, kernel: w.kernelHeight, extent: w.inputHeight)
        for ox in 0..<w.outputWidth {
            let g = dz + (oy &* w.outputWidth &+ ox) &* channels
            if let db = biasGradient {
                for c in 0..<channels { db[c] += g[c] }
            }
            let columnOrigin = ox &* w.strideWidth &- w.padLeft
            let columns = validTaps(origin: columnOrigin, kernel: w.kernelWidth, extent: w.inputWidth)
            var ky = rows.first
            while ky < rows.end {
                var kx = columns.first
                while kx < columns.end {
                    let pixel = ((rowOrigin &+ ky) &* w.inputWidth &+ columnOrigin &+ kx) &* channels
                    let tap = (ky &* w.kernelWidth &+ kx) &* channels
                    if let dw = weightGradient {
                        for c in 0..<channels { dw[tap &+ c] += input[pixel &+ c] * g[c] }
                    }
                    if let dx = inputGradient {
                        for c in 0..<channels { dx[pixel &+ c] += weights[tap &+ c] * g[c] }
                    }
                    kx &+= 1
                }
                ky &+= 1
            }
        }
    }
}

// MARK: - Validation (at load)

extension Model {
    /// DepthwiseConv2D op `o` with input `xi` `[H][W][C]`: weights `[KH][KW][C]`,
    /// params 0 … 5 the window (as Conv2D's) that gives the output `[OH][OW][C]`,
    /// then the bias and the int8 quantization (per channel along axis 2).
    /// Returns the bytes of the requantization tables it scanned.
    func validateDepthwiseConv2D(_ o: Int, _ op: OpInfo, _ xi: TensorInfo) throws(SprigError) -> Int {
        let (wi, out) = try validateWeightedInputs(o, op, xi)
        guard wi.rank == 3 else { throw .shapeMismatch(op: o, slot: 1, expected: 3, found: wi.rank) }
        guard xi.rank == 3 else { throw .shapeMismatch(op: o, slot: 0, expected: 3, found: xi.rank) }
        guard out.rank == 3 else { throw .shapeMismatch(op: o, slot: -1, expected: 3, found: out.rank) }
        guard wi.dims.2 == xi.dims.2 else { throw .shapeMismatch(op: o, slot: 1, expected: xi.dims.2, found: wi.dims.2) }
        let outChannels = wi.dims.2
        try validateWindow(o, op, input: xi, kernelH: wi.dims.0, kernelW: wi.dims.1, firstParam: 0,
                           outChannels: outChannels)
        let scanned = try validateWeightedTail(o, op, xi, weights: wi, outChannels: outChannels, quantAxis: 2)
        try expectZeroParams(o, op, from: 6)
        return scanned
    }
}
