// Shared helpers of the kernel tests: window geometry, random shapes, and
// the comparison of a kernel's output with a reference.
import XCTest
import SprigRuntime
import SprigTestSupport

/// A window whose output size follows from the padding on all four sides
/// (`padBottom`/`padRight` only decide how many outputs there are).
func makeWindow(height: Int, width: Int, inputChannels: Int, outputChannels: Int,
                kernelHeight: Int, kernelWidth: Int, strideHeight: Int = 1, strideWidth: Int = 1,
                padTop: Int = 0, padBottom: Int = 0, padLeft: Int = 0, padRight: Int = 0) -> Window2D {
    Window2D(inputHeight: height, inputWidth: width, inputChannels: inputChannels,
             outputHeight: (height + padTop + padBottom - kernelHeight) / strideHeight + 1,
             outputWidth: (width + padLeft + padRight - kernelWidth) / strideWidth + 1,
             outputChannels: outputChannels, kernelHeight: kernelHeight, kernelWidth: kernelWidth,
             strideHeight: strideHeight, strideWidth: strideWidth, padTop: padTop, padLeft: padLeft)
}

/// A random window: kernels 1...7, strides 1...3, paddings 0...3 on each
/// side (so some windows lie wholly in the padding), odd sizes.
func randomWindow(_ rng: inout SeededRNG, maxExtent: Int, inputChannels: Int, outputChannels: Int,
                  maxKernel: Int = 7) -> Window2D {
    let kh = rng.int(in: 1 ... maxKernel), kw = rng.int(in: 1 ... maxKernel)
    let pt = rng.int(in: 0 ... 3), pb = rng.int(in: 0 ... 3), pl = rng.int(in: 0 ... 3), pr = rng.int(in: 0 ... 3)
    let h = rng.int(in: max(1, kh - pt - pb) ... max(1, kh - pt - pb, maxExtent))
    let w = rng.int(in: max(1, kw - pl - pr) ... max(1, kw - pl - pr, maxExtent))
    return makeWindow(height: h, width: w, inputChannels: inputChannels, outputChannels: outputChannels,
                      kernelHeight: kh, kernelWidth: kw,
                      strideHeight: rng.int(in: 1 ... 3), strideWidth: rng.int(in: 1 ... 3),
                      padTop: pt, padBottom: pb, padLeft: pl, padRight: pr)
}

extension Window2D {
    var inputCount: Int { inputHeight * inputWidth * inputChannels }
    var outputCount: Int { outputHeight * outputWidth * outputChannels }
    var label: String {
        "\(inputHeight)x\(inputWidth)x\(inputChannels)→\(outputHeight)x\(outputWidth)x\(outputChannels) "
            + "k\(kernelHeight)x\(kernelWidth) s\(strideHeight)x\(strideWidth) p\(padTop),\(padLeft)"
    }
}

let reluF32 = ClampF32(lower: 0, upper: .infinity)
let relu6F32 = ClampF32(lower: 0, upper: 6)

/// none, ReLU, ReLU6 or a random band.
func randomClamp(_ rng: inout SeededRNG) -> ClampF32 {
    switch rng.int(in: 0 ... 3) {
    case 0: return .none
    case 1: return reluF32
    case 2: return relu6F32
    default:
        let a = rng.float(in: -2 ... 0)
        return ClampF32(lower: a, upper: a + rng.float(in: 0.1 ... 3))
    }
}

/// Alternates the guard page between the end and the start of the buffers.
func placement(_ trial: Int) -> GuardedBuffer<Float>.Placement { trial % 2 == 0 ? .end : .start }

/// max |got − ref| / max(1, max |ref|) < tolerance.
///
/// `unclamped`, when given, is the reference before the fused clamp: its
/// magnitude is the scale of the Float32 rounding errors (a ReLU6 output is
/// small, the accumulator it clamped may not be).
func assertClose(_ got: [Float], _ reference: [Double], tolerance: Double = 1e-5, _ label: String,
                 unclamped: [Double]? = nil, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(got.count, reference.count, label, file: file, line: line)
    var worst = 0.0, scale = 1.0, at = -1
    for r in unclamped ?? [] { scale = max(scale, abs(r)) }
    for (i, (g, r)) in zip(got, reference).enumerated() {
        scale = max(scale, abs(r))
        let d = abs(Double(g) - r)
        if !(d <= worst) { worst = d; at = i }      // also catches NaN
    }
    XCTAssertLessThan(worst / scale, tolerance,
                      "\(label): max |diff| \(worst) at \(at) (got \(at >= 0 ? got[at] : 0), ref \(at >= 0 ? reference[at] : 0))",
                      file: file, line: line)
}

/// Exact equality, reporting the first few mismatching indices.
func assertSame(_ got: [Int8], _ reference: [Int8], _ label: String,
                file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(got.count, reference.count, label, file: file, line: line)
    let bad = zip(got, reference).enumerated().filter { $0.element.0 != $0.element.1 }
    if !bad.isEmpty {
        let shown = bad.prefix(4).map { "[\($0.offset)] got \($0.element.0) ref \($0.element.1)" }.joined(separator: ", ")
        XCTFail("\(label): \(bad.count) of \(got.count) differ: \(shown)", file: file, line: line)
    }
}

/// The channel counts of pruned nets: below, at and above the 4-, 8- and 16-lane
/// blocks of the kernels (the last block overlaps its neighbour).
let oddChannelCounts = [1, 3, 5, 7, 15, 17, 19, 28, 33]

/// Kernel, stride and padding shapes of the odd-channel tests, on inputs wide
/// and tall enough for the 4-pixel tiles (horizontal and vertical) and their edges.
let oddChannelShapes: [(kernel: Int, stride: Int, pad: Int)] = [(1, 1, 0), (3, 1, 1), (3, 2, 1), (5, 1, 2), (2, 2, 0)]

/// The window of one odd-channel case: `height × width` input, square kernel.
func oddChannelWindow(height: Int, width: Int, inputChannels: Int, outputChannels: Int,
                      shape: (kernel: Int, stride: Int, pad: Int)) -> Window2D {
    makeWindow(height: height, width: width, inputChannels: inputChannels, outputChannels: outputChannels,
               kernelHeight: shape.kernel, kernelWidth: shape.kernel, strideHeight: shape.stride,
               strideWidth: shape.stride, padTop: shape.pad, padBottom: shape.pad,
               padLeft: shape.pad, padRight: shape.pad)
}
