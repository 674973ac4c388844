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
