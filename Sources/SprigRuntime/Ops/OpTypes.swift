// Shared parameter types for the kernels.
//
// Tensor layout (see docs/blob-format.md, "Layout"):
//   images      [H][W][C]            channels last, no batch dimension (batch 1 per invoke)
//   vectors     [N]
//   Dense       weights [Out][In]    bias [Out]
//   Conv2D      weights [KH][KW][Cin][Cout]   bias [Cout]
//   Depthwise   weights [KH][KW][C]  bias [C]   (channel multiplier 1)
//
// Kernels never validate: the interpreter's prepare step has proven every
// shape, offset and parameter before a kernel is called.

/// Geometry of a 2-D sliding window (convolutions and pools).
///
/// Output pixel (oy, ox) reads input rows `oy*strideHeight - padTop + ky` and
/// columns `ox*strideWidth - padLeft + kx`; taps that fall outside the input
/// are padding (they contribute nothing).
public struct Window2D: Equatable, Sendable {
    public var inputHeight: Int
    public var inputWidth: Int
    public var inputChannels: Int
    public var outputHeight: Int
    public var outputWidth: Int
    public var outputChannels: Int
    public var kernelHeight: Int
    public var kernelWidth: Int
    public var strideHeight: Int
    public var strideWidth: Int
    public var padTop: Int
    public var padLeft: Int

    public init(inputHeight: Int, inputWidth: Int, inputChannels: Int,
                outputHeight: Int, outputWidth: Int, outputChannels: Int,
                kernelHeight: Int, kernelWidth: Int,
                strideHeight: Int, strideWidth: Int,
                padTop: Int, padLeft: Int) {
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.inputChannels = inputChannels
        self.outputHeight = outputHeight
        self.outputWidth = outputWidth
        self.outputChannels = outputChannels
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight
        self.strideWidth = strideWidth
        self.padTop = padTop
        self.padLeft = padLeft
    }
}

extension Model {
    /// The window of op `o` with input `xi`: kernel `kernelH`×`kernelW` (1 … 16),
    /// then params `p` … `p + 5`: strides (1 … 16), pads top, left, bottom,
    /// right (each below its kernel size), and the output `[OH][OW][outChannels]`
    /// they give.
    func validateWindow(_ o: Int, _ op: OpInfo, input xi: TensorInfo, kernelH: Int, kernelW: Int,
                        firstParam p: Int, outChannels: Int) throws(SprigError) {
        let strideH = Int(op.param(p)), strideW = Int(op.param(p + 1))
        let padTop = Int(op.param(p + 2)), padLeft = Int(op.param(p + 3))
        let padBottom = Int(op.param(p + 4)), padRight = Int(op.param(p + 5))
        guard inRange(kernelH, 1, BlobLayout.maxKernel) else { throw .invalidField(field: .opParam, index: o, value: kernelH) }
        guard inRange(kernelW, 1, BlobLayout.maxKernel) else { throw .invalidField(field: .opParam, index: o, value: kernelW) }
        guard inRange(strideH, 1, BlobLayout.maxStride) else { throw .invalidField(field: .opParam, index: o, value: strideH) }
        guard inRange(strideW, 1, BlobLayout.maxStride) else { throw .invalidField(field: .opParam, index: o, value: strideW) }
        guard inRange(padTop, 0, kernelH - 1) else { throw .invalidField(field: .opParam, index: o, value: padTop) }
        guard inRange(padBottom, 0, kernelH - 1) else { throw .invalidField(field: .opParam, index: o, value: padBottom) }
        guard inRange(padLeft, 0, kernelW - 1) else { throw .invalidField(field: .opParam, index: o, value: padLeft) }
        guard inRange(padRight, 0, kernelW - 1) else { throw .invalidField(field: .opParam, index: o, value: padRight) }
        // Pads are below 16 here; dims fit in UInt32 (and in Int on every target).
        let (spanH, overflowH) = xi.dims.0.addingReportingOverflow(padTop + padBottom)
        let (spanW, overflowW) = xi.dims.1.addingReportingOverflow(padLeft + padRight)
        guard !overflowH, !overflowW else { throw .shapeOverflow(tensor: op.inputs.0) }
        guard spanH >= kernelH, spanW >= kernelW else {
            throw .shapeMismatch(op: o, slot: 0, expected: kernelH, found: xi.dims.0)
        }
        let out = tensor(op.output)
        let oh = (spanH - kernelH) / strideH + 1, ow = (spanW - kernelW) / strideW + 1
        guard out.rank == 3 else { throw .shapeMismatch(op: o, slot: -1, expected: 3, found: out.rank) }
        guard out.dims.0 == oh else { throw .shapeMismatch(op: o, slot: -1, expected: oh, found: out.dims.0) }
        guard out.dims.1 == ow else { throw .shapeMismatch(op: o, slot: -1, expected: ow, found: out.dims.1) }
        guard out.dims.2 == outChannels else {
            throw .shapeMismatch(op: o, slot: -1, expected: outChannels, found: out.dims.2)
        }
    }
}

/// A fused activation in Float32: the output is clamped to `[lower, upper]`.
/// ReLU is `[0, +inf]`, ReLU6 `[0, 6]`, none `[-inf, +inf]`.
public struct ClampF32: Equatable, Sendable {
    public var lower: Float
    public var upper: Float
    public init(lower: Float, upper: Float) {
        self.lower = lower
        self.upper = upper
    }
    public static let none = ClampF32(lower: -Float.infinity, upper: Float.infinity)
}

/// Requantization of an int32 accumulator to int8 for one output channel set.
///
/// For output channel `c`:
/// `out = clamp(multiplyByQuantizedMultiplier(acc, multipliers[c], shifts[c]) + outputZeroPoint, clampMin, clampMax)`.
/// Per-tensor quantization repeats one multiplier and shift for every channel.
/// Multipliers are 0 or in [2^30, 2^31 − 1] (`quantizeMultiplier`'s range, which
/// the blob validation enforces); the vector kernels rely on it (`Requant8.apply`).
public struct RequantQ8 {
    public var multipliers: UnsafePointer<Int32>
    public var shifts: UnsafePointer<Int32>
    public var outputZeroPoint: Int32
    public var clampMin: Int32
    public var clampMax: Int32
    public init(multipliers: UnsafePointer<Int32>, shifts: UnsafePointer<Int32>,
                outputZeroPoint: Int32, clampMin: Int32, clampMax: Int32) {
        self.multipliers = multipliers
        self.shifts = shifts
        self.outputZeroPoint = outputZeroPoint
        self.clampMin = clampMin
        self.clampMax = clampMax
    }
}

/// Parameters of the int8 residual Add, in the TFLite scheme.
///
/// ```
/// a' = (a - aZeroPoint) << leftShift ; a'' = multiplyByQuantizedMultiplier(a', aMultiplier, aShift)
/// b' = (b - bZeroPoint) << leftShift ; b'' = multiplyByQuantizedMultiplier(b', bMultiplier, bShift)
/// out = clamp(multiplyByQuantizedMultiplier(a'' + b'', outputMultiplier, outputShift) + outputZeroPoint, clampMin, clampMax)
/// ```
public struct AddQ8Params: Equatable, Sendable {
    public var aZeroPoint: Int32
    public var bZeroPoint: Int32
    public var outputZeroPoint: Int32
    public var leftShift: Int32
    public var aMultiplier: Int32
    public var aShift: Int32
    public var bMultiplier: Int32
    public var bShift: Int32
    public var outputMultiplier: Int32
    public var outputShift: Int32
    public var clampMin: Int32
    public var clampMax: Int32
    public init(aZeroPoint: Int32, bZeroPoint: Int32, outputZeroPoint: Int32, leftShift: Int32,
                aMultiplier: Int32, aShift: Int32, bMultiplier: Int32, bShift: Int32,
                outputMultiplier: Int32, outputShift: Int32, clampMin: Int32, clampMax: Int32) {
        self.aZeroPoint = aZeroPoint
        self.bZeroPoint = bZeroPoint
        self.outputZeroPoint = outputZeroPoint
        self.leftShift = leftShift
        self.aMultiplier = aMultiplier
        self.aShift = aShift
        self.bMultiplier = bMultiplier
        self.bShift = bShift
        self.outputMultiplier = outputMultiplier
        self.outputShift = outputShift
        self.clampMin = clampMin
        self.clampMax = clampMax
    }
}
