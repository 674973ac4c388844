// GlobalAveragePool, Float32 and int8.
//
//   input   [H][W][C]
//   output  [C]
//
//   out[c] = (Σ_{y,x} in[y][x][c]) / (H·W)
//
// Height·width == 0 outputs 0.

// MARK: - Float32

/// Float32 global average pooling: the mean of each channel over all pixels.
///
/// - Parameters:
///   - input: `[height][width][channels]`.
///   - output: `[channels]`; must not alias `input`.
/// - Complexity: O(height·width·channels); no allocation.
public func globalAveragePoolF32(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                                 height: Int, width: Int, channels: Int) {
    let pixels = height &* width
    let reciprocal: Float = pixels > 0 ? 1 / Float(pixels) : 0
    var c = 0
    while c &+ 16 <= channels {
        var s = SIMD16<Float>()
        var p = 0
        while p < pixels {
            s += loadLanes(input + (p &* channels &+ c)) as SIMD16<Float>
            p &+= 1
        }
        storeLanes(s * reciprocal, output + c)
        c &+= 16
    }
    if c &+ 8 <= channels {
        var s = SIMD8<Float>()
        var p = 0
        while p < pixels {
            s += loadLanes(input + (p &* channels &+ c)) as SIMD8<Float>
            p &+= 1
        }
        storeLanes(s * reciprocal, output + c)
        c &+= 8
    }
    while c < channels {
        var s: Float = 0
        var p = 0
        while p < pixels {
            s += input[p &* channels &+ c]
            p &+= 1
        }
        output[c] = s * reciprocal
        c &+= 1
    }
}

// MARK: - int8

/// int8 global average pooling with TFLite's pooling rounding
/// (`sum > 0 ? (sum + n/2) / n : (sum − n/2) / n`, n = height·width); input
/// and output share one scale and zero point.
///
/// The per-channel sums are Int32 (exact for height·width ≤ 2^24); the
/// rounding division is done in Int64.
/// - Parameters:
///   - input: `[height][width][channels]`.
///   - output: `[channels]`; must not alias `input`.
/// - Complexity: O(height·width·channels); no allocation.
public func globalAveragePoolQ8(input: UnsafePointer<Int8>, output: UnsafeMutablePointer<Int8>,
                                height: Int, width: Int, channels: Int) {
    let pixels = height &* width
    guard pixels > 0 else {
        var c = 0
        while c < channels { output[c] = 0; c &+= 1 }
        return
    }
    let n = Int64(pixels)
    var c = 0
    while c &+ 16 <= channels {
        var s = SIMD16<Int32>()
        var p = 0
        while p < pixels {
            s &+= loadWidened16(input + (p &* channels &+ c))
            p &+= 1
        }
        for lane in 0 ..< 16 { output[c &+ lane] = roundedAverageQ8(Int64(s[lane]), n) }
        c &+= 16
    }
    while c < channels {
        var s: Int32 = 0
        var p = 0
        while p < pixels {
            s &+= Int32(input[p &* channels &+ c])
            p &+= 1
        }
        output[c] = roundedAverageQ8(Int64(s), n)
        c &+= 1
    }
}

// MARK: - Float32 backward (fine-tuning)

/// Backward of ``globalAveragePoolF32(input:output:height:width:channels:)``:
/// `dx[y][x][c] += dy[c] / (H·W)`. Accumulates; the caller zeroes.
/// Example: H·W = 4, dy = [2] → every pixel gets 0.5.
/// - Complexity: O(height·width·channels); no allocation.
public func globalAveragePoolBackwardF32(outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>,
                                         height: Int, width: Int, channels: Int) {
    let pixels = height &* width
    guard pixels > 0 else { return }
    let reciprocal = 1 / Float(pixels)
    for p in 0..<pixels {
        let row = dx + p &* channels
        for c in 0..<channels { row[c] += dy[c] * reciprocal }
    }
}

// MARK: - Validation (at load)

extension Model {
    /// GlobalAveragePool op `o` with input `xi` `[H][W][C]`: an output of `C`
    /// elements of the input's dtype; in int8 the input's quantization. No params.
    func validateGlobalAveragePool(_ o: Int, _ op: OpInfo, _ xi: TensorInfo) throws(SprigError) {
        try expectNoActivation(o, op)
        let x = op.inputs.0
        try expectCount(o, op, 1)
        try expectArena(o, 0, x)
        guard xi.rank == 3 else { throw .shapeMismatch(op: o, slot: 0, expected: 3, found: xi.rank) }
        let out = tensor(op.output)
        try expectDType(o, -1, out, xi.dtype)
        guard out.elementCount == xi.dims.2 else {
            throw .shapeMismatch(op: o, slot: -1, expected: xi.dims.2, found: out.elementCount)
        }
        if xi.dtype == .i8 { try expectSameQuant(o, x, op.output) }
        try expectZeroParams(o, op, from: 0)
    }
}
