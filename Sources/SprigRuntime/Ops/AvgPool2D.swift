// AvgPool2D, Float32 and int8.
//
//   input   [H][W][C]
//   output  [OH][OW][C]      window.inputChannels == window.outputChannels == C
//
//   out[oy][ox][c] = (Σ over the n valid taps of in[oy·sh − pt + ky][ox·sw − pl + kx][c]) / n
//
// The count n excludes padding taps (TFLite semantics). A window with no valid
// tap (padding ≥ kernel size, which the interpreter should reject) outputs 0.

// MARK: - Float32

/// Float32 average pooling over the valid taps of each window (padding excluded from the count).
///
/// - Parameters:
///   - input: `[inputHeight][inputWidth][C]`.
///   - output: `[outputHeight][outputWidth][C]`; must not alias `input`.
///   - window: geometry; `inputChannels == outputChannels == C`.
/// - Complexity: O(OH·OW·KH·KW·C); no allocation.
public func avgPool2dF32(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, window: Window2D) {
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
            let tapRows = rows.end &- rows.first, tapCols = cols.end &- cols.first
            let count = tapRows &* tapCols
            if count == 0 {
                var c = 0
                while c < channels { out[c] = 0; c &+= 1 }
            } else {
                let start = input + ((rowOrigin &+ rows.first) &* w.inputWidth &+ columnOrigin &+ cols.first) &* channels
                let rowStep = w.inputWidth &* channels
                let reciprocal = 1 / Float(count)
                var c = 0
                while c &+ 16 <= channels {
                    let s: SIMD16<Float> = sumOverTaps(start + c, tapRows: tapRows, tapCols: tapCols,
                                                       rowStep: rowStep, tapStep: channels)
                    storeLanes(s * reciprocal, out + c)
                    c &+= 16
                }
                if c &+ 8 <= channels {
                    let s: SIMD8<Float> = sumOverTaps(start + c, tapRows: tapRows, tapCols: tapCols,
                                                      rowStep: rowStep, tapStep: channels)
                    storeLanes(s * reciprocal, out + c)
                    c &+= 8
                }
                while c < channels {
                    var s: Float = 0
                    var r = 0
                    while r < tapRows {
                        var t = 0
                        while t < tapCols {
                            s += start[r &* rowStep &+ t &* channels &+ c]
                            t &+= 1
                        }
                        r &+= 1
                    }
                    out[c] = s * reciprocal
                    c &+= 1
                }
            }
            ox &+= 1
        }
        oy &+= 1
    }
}

/// Lane-wise sum over a `tapRows × tapCols` block of vectors starting at `start`.
@inline(__always)
private func sumOverTaps<V: SIMD>(_ start: UnsafePointer<Float>, tapRows: Int, tapCols: Int,
                                  rowStep: Int, tapStep: Int) -> V where V.Scalar == Float {
    var s = V()
    var r = 0
    while r < tapRows {
        var p = start + r &* rowStep
        var t = 0
        while t < tapCols {
            s += loadLanes(p) as V
            p += tapStep
            t &+= 1
        }
        r &+= 1
    }
    return s
}

// MARK: - int8

/// int8 average pooling over the valid taps (padding excluded from the count),
/// with TFLite's rounding: `sum > 0 ? (sum + n/2) / n : (sum − n/2) / n`
/// (truncating division), i.e. halves away from zero. Input and output share
/// one scale and zero point.
///
/// Worked example: taps 1, 2, 2, 2 → sum 7, n 4 → (7 + 2) / 4 = 2 (1.75 → 2);
/// taps −1, −2 → sum −3, n 2 → (−3 − 1) / 2 = −2 (−1.5 → −2).
/// - Parameters:
///   - input: `[inputHeight][inputWidth][C]`.
///   - output: `[outputHeight][outputWidth][C]`; must not alias `input`.
///   - window: geometry; `inputChannels == outputChannels == C`.
/// - Complexity: O(OH·OW·KH·KW·C); no allocation.
public func avgPool2dQ8(input: UnsafePointer<Int8>, output: UnsafeMutablePointer<Int8>, window: Window2D) {
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
            let tapRows = rows.end &- rows.first, tapCols = cols.end &- cols.first
            let count = tapRows &* tapCols
            if count == 0 {
                var c = 0
                while c < channels { out[c] = 0; c &+= 1 }
            } else {
                let start = input + ((rowOrigin &+ rows.first) &* w.inputWidth &+ columnOrigin &+ cols.first) &* channels
                let rowStep = w.inputWidth &* channels
                // Window sums of int8 fit Int32 (and the division is cheaper) for
                // any window of at most 2^23 taps; larger ones are clamped (they
                // would need a kernel of more than 2896 × 2896).
                let n32 = Int32(truncatingIfNeeded: count < 1 << 23 ? count : 1 << 23)
                var c = 0
                while c &+ 16 <= channels {
                    var s = SIMD16<Int32>()
                    var r = 0
                    while r < tapRows {
                        var p = start + (r &* rowStep &+ c)
                        var t = 0
                        while t < tapCols {
                            s &+= loadWidened16(p)
                            p += channels
                            t &+= 1
                        }
                        r &+= 1
                    }
                    for lane in 0 ..< 16 { out[c &+ lane] = roundedAverageQ8(s[lane], n32) }
                    c &+= 16
                }
                while c < channels {
                    var s: Int32 = 0
                    var r = 0
                    while r < tapRows {
                        var t = 0
                        while t < tapCols {
                            s &+= Int32(start[r &* rowStep &+ t &* channels &+ c])
                            t &+= 1
                        }
                        r &+= 1
                    }
                    out[c] = roundedAverageQ8(s, n32)
                    c &+= 1
                }
            }
            ox &+= 1
        }
        oy &+= 1
    }
}

/// `sum / count` rounded half away from zero (TFLite's pooling rounding),
/// clamped to int8. `count` must be in 1...2^23 and `|sum| ≤ 128·count`
/// (a sum of `count` int8 values), so nothing overflows.
///
/// ```
/// roundedAverageQ8(7, 4)    // (7 + 2) / 4 = 2
/// roundedAverageQ8(-3, 2)   // (−3 − 1) / 2 = −2
/// roundedAverageQ8(-1, 4)   // (−1 − 2) / 4 = 0
/// ```
@inline(__always)
func roundedAverageQ8(_ sum: Int32, _ count: Int32) -> Int8 {
    let half = count / 2
    let q = sum > 0 ? (sum &+ half) / count : (sum &- half) / count
    return Int8(truncatingIfNeeded: q < -128 ? -128 : (q > 127 ? 127 : q))
}

/// `roundedAverageQ8` in Int64, for global pooling over any number of pixels.
@inline(__always)
func roundedAverageQ8(_ sum: Int64, _ count: Int64) -> Int8 {
    let half = count / 2
    let q = sum > 0 ? (sum &+ half) / count : (sum &- half) / count
    return Int8(truncatingIfNeeded: q < -128 ? -128 : (q > 127 ? 127 : q))
}

// MARK: - Float32 backward (fine-tuning)

/// Backward of ``avgPool2dF32(input:output:window:)``: each output's gradient,
/// divided by its window's count of valid taps, is added to each of those
/// taps. Accumulates into `inputGradient`; the caller zeroes.
/// Example: a window of 4 valid taps with dy = 2 adds 0.5 to each.
/// - Complexity: O(OH·OW·KH·KW·C); no allocation.
public func avgPool2dBackwardF32(outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>,
                                 window w: Window2D) {
    let channels = w.outputChannels
    for oy in 0..<w.outputHeight {
        let rowOrigin = oy &* w.strideHeight &- w.padTop
        let rows = validTaps(origin: rowOrigin, kernel: w.kernelHeight, extent: w.inputHeight)
        for ox in 0..<w.outputWidth {
            let columnOrigin = ox &* w.strideWidth &- w.padLeft
            let columns = validTaps(origin: columnOrigin, kernel: w.kernelWidth, extent: w.inputWidth)
            let taps = (rows.end &- rows.first) &* (columns.end &- columns.first)
            if taps == 0 { continue }
            let scale = 1 / Float(taps)
            let at = (oy &* w.outputWidth &+ ox) &* channels
            var ky = rows.first
            while ky < rows.end {
                var kx = columns.first
                while kx < columns.end {
                    let i = ((rowOrigin &+ ky) &* w.inputWidth &+ columnOrigin &+ kx) &* channels
                    for c in 0..<channels { dx[i &+ c] += dy[at &+ c] * scale }
                    kx &+= 1
                }
                ky &+= 1
            }
        }
    }
}

// MARK: - Validation (at load)

extension Model {
    /// AvgPool2D op `o`: the same contract as MaxPool2D (``validatePool2D``).
    func validateAvgPool2D(_ o: Int, _ op: OpInfo, _ xi: TensorInfo) throws(SprigError) {
        try expectNoActivation(o, op)
        try validatePool2D(o, op, xi)
    }
}
