// MaxPool2D, Float32 and int8.
//
//   input   [H][W][C]
//   output  [OH][OW][C]      window.inputChannels == window.outputChannels == C
//
//   out[oy][ox][c] = max over the valid taps (ky, kx) of in[oy·sh − pt + ky][ox·sw − pl + kx][c]
//
// Padding taps are ignored (never treated as 0 or −∞). A window with no valid
// tap at all (possible only when padding ≥ kernel size, which the interpreter
// should reject) outputs the lowest value, like TFLite's initial value:
// −Float.greatestFiniteMagnitude in f32, −128 in q8.

// MARK: - Float32

/// Float32 max pooling over the valid taps of each window.
///
/// - Parameters:
///   - input: `[inputHeight][inputWidth][C]`.
///   - output: `[outputHeight][outputWidth][C]`; must not alias `input`.
///   - window: geometry; `inputChannels == outputChannels == C`.
/// - Complexity: O(OH·OW·KH·KW·C); no allocation.
public func maxPool2dF32(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, window: Window2D) {
    maxPool2d(input: input, output: output, window: window, lowest: -Float.greatestFiniteMagnitude)
}

/// `maxPool2dF32` and `maxPool2dQ8`: every output pixel's window maxima, `lowest` for a
/// window with no valid tap.
///
/// Below 16 channels a pixel takes one vector of 16 lanes where its reads stay inside the
/// input and its store inside the output: the lanes past C read the next pixels' channels
/// and store onto the next output pixel's, which is written after it (pixels go in order,
/// and the output does not alias the input). The others take `maxOverChannels`.
@inline(__always)
private func maxPool2d<S: SIMDScalar & Comparable>(input: UnsafePointer<S>, output: UnsafeMutablePointer<S>,
                                                   window w: Window2D, lowest: S) {
    let channels = w.outputChannels
    let inputEnd = input + w.inputHeight &* w.inputWidth &* channels
    let outputEnd = output + w.outputHeight &* w.outputWidth &* channels
    let padded = tiledKernelsBuilt && channels < 16
    let rowStep = w.inputWidth &* channels
    var oy = 0
    while oy < w.outputHeight {
        let rowOrigin = oy &* w.strideHeight &- w.padTop
        let rows = validTaps(origin: rowOrigin, kernel: w.kernelHeight, extent: w.inputHeight)
        let tapRows = rows.end &- rows.first
        var ox = 0
        while ox < w.outputWidth {
            let columnOrigin = ox &* w.strideWidth &- w.padLeft
            let cols = validTaps(origin: columnOrigin, kernel: w.kernelWidth, extent: w.inputWidth)
            let tapCols = cols.end &- cols.first
            let out = output + (oy &* w.outputWidth &+ ox) &* channels
            if tapRows <= 0 || tapCols <= 0 {
                var c = 0
                while c < channels { out[c] = lowest; c &+= 1 }
            } else {
                // First valid tap of channel 0; taps step by `channels`, rows by a whole input row.
                let start = input + ((rowOrigin &+ rows.first) &* w.inputWidth &+ columnOrigin &+ cols.first) &* channels
                let last = start + ((tapRows &- 1) &* rowStep &+ (tapCols &- 1) &* channels)
                if padded && last + 16 <= inputEnd && out + 16 <= outputEnd {
                    let m: SIMD16<S> = maxOverTaps(start, tapRows: tapRows, tapCols: tapCols,
                                                   rowStep: rowStep, tapStep: channels)
                    storeLanes(m, out)
                } else {
                    maxOverChannels(start, out, channels: channels, tapRows: tapRows, tapCols: tapCols,
                                    rowStep: rowStep)
                }
            }
            ox &+= 1
        }
        oy &+= 1
    }
}

/// The window maxima of one output pixel, channels `0 ..< channels`, from the
/// first valid tap `start` (taps step by `channels`, rows by `rowStep`).
///
/// Any channel count runs in vectors: whole vectors of 16, then one more of 16
/// moved back to end at `channels`; below 16, two vectors of 8 (or of 4), the
/// second moved back the same way; lane by lane only below 4 channels. A lane
/// computed twice gets the same value both times (the same taps in the same
/// order), and the output does not alias the input, so the overlap is exact.
@inline(__always)
func maxOverChannels<S: SIMDScalar & Comparable>(_ start: UnsafePointer<S>, _ out: UnsafeMutablePointer<S>,
                                                  channels: Int, tapRows: Int, tapCols: Int, rowStep: Int) {
    if channels >= 16 {
        var c = 0
        while c &+ 16 <= channels {
            let m: SIMD16<S> = maxOverTaps(start + c, tapRows: tapRows, tapCols: tapCols,
                                           rowStep: rowStep, tapStep: channels)
            storeLanes(m, out + c)
            c &+= 16
        }
        if c < channels {
            let m: SIMD16<S> = maxOverTaps(start + (channels &- 16), tapRows: tapRows, tapCols: tapCols,
                                           rowStep: rowStep, tapStep: channels)
            storeLanes(m, out + (channels &- 16))
        }
    } else if channels >= 8 {
        let a: SIMD8<S> = maxOverTaps(start, tapRows: tapRows, tapCols: tapCols, rowStep: rowStep, tapStep: channels)
        let b: SIMD8<S> = maxOverTaps(start + (channels &- 8), tapRows: tapRows, tapCols: tapCols,
                                      rowStep: rowStep, tapStep: channels)
        storeLanes(a, out)
        storeLanes(b, out + (channels &- 8))
    } else if channels >= 4 {
        let a: SIMD4<S> = maxOverTaps(start, tapRows: tapRows, tapCols: tapCols, rowStep: rowStep, tapStep: channels)
        let b: SIMD4<S> = maxOverTaps(start + (channels &- 4), tapRows: tapRows, tapCols: tapCols,
                                      rowStep: rowStep, tapStep: channels)
        storeLanes(a, out)
        storeLanes(b, out + (channels &- 4))
    } else {
        var c = 0
        while c < channels {
            var m = start[c]
            var r = 0
            while r < tapRows {
                var t = 0
                while t < tapCols {
                    let x = start[r &* rowStep &+ t &* channels &+ c]
                    if x > m { m = x }
                    t &+= 1
                }
                r &+= 1
            }
            out[c] = m
            c &+= 1
        }
    }
}

/// Lane-wise maximum over a `tapRows × tapCols` block of vectors starting at `start`
/// (at least one tap).
@inline(__always)
func maxOverTaps<V: SIMD>(_ start: UnsafePointer<V.Scalar>, tapRows: Int, tapCols: Int,
                          rowStep: Int, tapStep: Int) -> V where V.Scalar: Comparable {
    if tapRows == 2 && tapCols == 2 {
        // The common 2×2 window, straight-line (the loops below cost more than its 3 maxima).
        let top = maxLanes(loadLanes(start) as V, loadLanes(start + tapStep))
        return maxLanes(top, maxLanes(loadLanes(start + rowStep) as V, loadLanes(start + (rowStep &+ tapStep))))
    }
    var m: V = loadLanes(start)
    var r = 0
    while r < tapRows {
        var p = start + r &* rowStep
        var t = 0
        while t < tapCols {
            m = maxLanes(m, loadLanes(p))
            p += tapStep
            t &+= 1
        }
        r &+= 1
    }
    return m
}

// MARK: - int8

/// int8 max pooling over the valid taps of each window; input and output share
/// one scale and zero point, so no requantization is needed.
///
/// - Parameters:
///   - input: `[inputHeight][inputWidth][C]`.
///   - output: `[outputHeight][outputWidth][C]`; must not alias `input`.
///   - window: geometry; `inputChannels == outputChannels == C`.
/// - Complexity: O(OH·OW·KH·KW·C); no allocation.
public func maxPool2dQ8(input: UnsafePointer<Int8>, output: UnsafeMutablePointer<Int8>, window: Window2D) {
    maxPool2d(input: input, output: output, window: window, lowest: -128)
}

// MARK: - Float32 backward (fine-tuning)

/// Backward of ``maxPool2dF32(input:output:window:)``: each output's gradient
/// goes to the first valid tap (in ky, kx order) whose input equals the
/// output, the max. Accumulates into `inputGradient`; the caller zeroes.
/// Example: a 2×2 window [1, 3, 3, 0] with dy = 2 adds 2 to the first 3 only.
/// - Complexity: O(OH·OW·KH·KW·C); no allocation.
public func maxPool2dBackwardF32(input: UnsafePointer<Float>, output: UnsafePointer<Float>,
                                 outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>,
                                 window w: Window2D) {
    let channels = w.outputChannels
    for oy in 0..<w.outputHeight {
        let rowOrigin = oy &* w.strideHeight &- w.padTop
        let rows = validTaps(origin: rowOrigin, kernel: w.kernelHeight, extent: w.inputHeight)
        for ox in 0..<w.outputWidth {
            let columnOrigin = ox &* w.strideWidth &- w.padLeft
            let columns = validTaps(origin: columnOrigin, kernel: w.kernelWidth, extent: w.inputWidth)
            let at = (oy &* w.outputWidth &+ ox) &* channels
            for c in 0..<channels {
                let y = output[at &+ c]
                var ky = rows.first
                search: while ky < rows.end {
                    var kx = columns.first
                    while kx < columns.end {
                        let i = ((rowOrigin &+ ky) &* w.inputWidth &+ columnOrigin &+ kx) &* channels &+ c
                        if input[i] == y {
                            dx[i] += dy[at &+ c]
                            break search
                        }
                        kx &+= 1
                    }
                    ky &+= 1
                }
            }
        }
    }
}

// MARK: - Params

/// The window of a MaxPool2D or AvgPool2D op with input `x` and output `y`.
func poolWindow(_ op: OpInfo, _ x: TensorInfo, _ y: TensorInfo) -> Window2D {
    Window2D(inputHeight: x.dims.0, inputWidth: x.dims.1, inputChannels: x.dims.2,
             outputHeight: y.dims.0, outputWidth: y.dims.1, outputChannels: y.dims.2,
             kernelHeight: Int(op.params.0), kernelWidth: Int(op.params.1),
             strideHeight: Int(op.params.2), strideWidth: Int(op.params.3),
             padTop: Int(op.params.4), padLeft: Int(op.params.5))
}

// MARK: - Validation (at load)

extension Model {
    /// MaxPool2D op `o` with input `xi` `[H][W][C]`: params 0 … 7 the window
    /// (kernel height and width, strides, pads top, left, bottom, right) that
    /// gives the output `[OH][OW][C]`; in int8 the output keeps the input's
    /// quantization.
    func validateMaxPool2D(_ o: Int, _ op: OpInfo, _ xi: TensorInfo) throws(SprigError) {
        try expectNoActivation(o, op)
        try validatePool2D(o, op, xi)
    }

    /// MaxPool2D and AvgPool2D: one input, the window of params 0 … 7, the
    /// output shape it gives, the input's dtype and (int8) its quantization.
    func validatePool2D(_ o: Int, _ op: OpInfo, _ xi: TensorInfo) throws(SprigError) {
        let x = op.inputs.0
        try expectCount(o, op, 1)
        try expectArena(o, 0, x)
        let out = tensor(op.output)
        guard xi.rank == 3 else { throw .shapeMismatch(op: o, slot: 0, expected: 3, found: xi.rank) }
        guard out.rank == 3 else { throw .shapeMismatch(op: o, slot: -1, expected: 3, found: out.rank) }
        try validateWindow(o, op, input: xi, kernelH: Int(op.params.0), kernelW: Int(op.params.1), firstParam: 2,
                           outChannels: xi.dims.2)
        try expectDType(o, -1, out, xi.dtype)
        if xi.dtype == .i8 { try expectSameQuant(o, x, op.output) }
        try expectZeroParams(o, op, from: 8)
    }
}
