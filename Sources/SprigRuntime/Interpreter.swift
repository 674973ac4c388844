// The interpreter: binds a validated Model to a caller's arena and runs it.
//
// Arena map (one buffer from the caller, 16-byte aligned, at least
// model.arenaBytes long; offsets come from the blob's plan):
//
//   0                                                       arenaBytes
//   +-------------------------------------------------------+
//   | activations, each at tensor.data_offset; tensors whose |
//   | live ranges do not meet share bytes                    |
//   +-------------------------------------------------------+
//
// Constant tensors stay in the blob (zero copy). Nothing is allocated: the
// model and the arena are the only memory an invoke touches.

/// Runs a ``Model`` inside a caller-provided arena.
///
/// ```swift
/// let interpreter = try Interpreter(model: model, arena: arena)
/// try interpreter.setInput(pixels: image)   // 8-bit pixels, normalised per the blob
/// interpreter.invoke()
/// let cls = interpreter.argmax()
/// ```
///
/// Everything is checked in `init` and in `Model.init`; ``invoke()`` has no
/// failure path and allocates nothing.
public struct Interpreter {
    public let model: Model
    public let arena: UnsafeMutableRawBufferPointer
    /// `arena.baseAddress`, proven non-nil and aligned at init.
    let base: UnsafeMutableRawPointer

    /// Binds `model` to `arena`.
    ///
    /// - Throws: ``SprigError/arenaTooSmall(need:have:)`` when the arena is
    ///   smaller than the plan, ``SprigError/arenaMisaligned(address:)`` when
    ///   it does not start on a 16-byte boundary.
    public init(model: Model, arena: UnsafeMutableRawBufferPointer) throws(SprigError) {
        guard arena.count >= model.arenaBytes else {
            throw .arenaTooSmall(need: model.arenaBytes, have: arena.count)
        }
        guard let base = arena.baseAddress else {
            throw .arenaTooSmall(need: max(model.arenaBytes, BlobLayout.alignment), have: 0)
        }
        let address = Int(bitPattern: base)
        guard address & (BlobLayout.alignment - 1) == 0 else { throw .arenaMisaligned(address: address) }
        self.model = model
        self.arena = arena
        self.base = base
    }

    // MARK: Tensors

    /// The bytes of tensor `index`: in the arena for activations, in the blob for constants.
    public func bytes(of index: Int) -> UnsafeRawBufferPointer {
        let info = model.tensor(index)
        switch info.storage {
        case .constant:
            return model.constantBytes(info)
        case .arena:
            return UnsafeRawBufferPointer(rebasing: arena[info.dataOffset ..< info.dataOffset + info.dataBytes])
        }
    }

    /// The first input's tensor record.
    public var inputInfo: TensorInfo { model.tensor(model.input(0)?.tensor ?? 0) }
    /// The first output's tensor record.
    public var outputInfo: TensorInfo { model.tensor(model.output(0) ?? 0) }

    /// The first input as Float32 values, or nil when the input is int8.
    public func inputF32() -> UnsafeMutableBufferPointer<Float>? {
        let info = inputInfo
        guard info.dtype == .f32 else { return nil }
        return mutableFloats(info)
    }

    /// Writes one image of 8-bit pixels into the first input, normalised as
    /// the blob says (`(p / 255 − mean) / std`) and quantized if the input is int8.
    ///
    /// - Throws: ``SprigError/argumentMismatch(expected:found:)`` when the
    ///   pixel count is not the input's element count.
    public func setInput(pixels: UnsafeRawBufferPointer) throws(SprigError) {
        guard let entry = model.input(0) else { throw .argumentMismatch(expected: 1, found: 0) }
        let info = model.tensor(entry.tensor)
        guard pixels.count == info.elementCount else {
            throw .argumentMismatch(expected: info.elementCount, found: pixels.count)
        }
        let base = base + info.dataOffset
        switch info.dtype {
        case .f32:
            let out = base.assumingMemoryBound(to: Float.self)
            for i in 0..<pixels.count {
                out[i] = (Float(pixels[i]) / 255 - entry.mean) / entry.std
            }
        case .i8:
            let q = model.quant(info, 0)
            let out = base.assumingMemoryBound(to: Int8.self)
            for i in 0..<pixels.count {
                var x = (Float(pixels[i]) / 255 - entry.mean) / entry.std
                quantizeF32ToQ8(input: &x, output: out + i, count: 1, scale: q.scale, zeroPoint: q.zeroPoint)
            }
        case .i32:
            throw .argumentMismatch(expected: Int(DType.f32.rawValue), found: Int(DType.i32.rawValue))
        }
    }

    /// Output element `i` of the first output as a real number (dequantized if int8);
    /// NaN when `i` is not below ``outputCount``.
    public func output(_ i: Int) -> Float {
        let info = outputInfo
        guard i >= 0 && i < info.elementCount else { return .nan }
        let raw = base + info.dataOffset
        switch info.dtype {
        case .f32: return raw.assumingMemoryBound(to: Float.self)[i]
        case .i8:
            let q = model.quant(info, 0)
            return q.scale * Float(Int32(raw.assumingMemoryBound(to: Int8.self)[i]) - q.zeroPoint)
        case .i32: return Float(raw.assumingMemoryBound(to: Int32.self)[i])
        }
    }

    /// Number of elements of the first output.
    public var outputCount: Int { outputInfo.elementCount }

    /// Index of the largest output (the first on ties). Compares raw int8
    /// values for an int8 output, so the answer is exact.
    public func argmax() -> Int {
        let info = outputInfo
        let raw = base + info.dataOffset
        var best = 0
        switch info.dtype {
        case .i8:
            let p = raw.assumingMemoryBound(to: Int8.self)
            for i in 1..<max(1, info.elementCount) where p[i] > p[best] { best = i }
        default:
            for i in 1..<max(1, info.elementCount) where output(i) > output(best) { best = i }
        }
        return best
    }

    // MARK: Evaluation

    /// Runs every op in order. Cannot fail: the blob was proven at load.
    public func invoke() {
        for o in 0..<model.opCount { run(o) }
    }

    /// Runs every op in order and calls `observer(op)` after each, so a host
    /// tool can read intermediate tensors (calibration, layer-by-layer checks).
    public func invoke(observer: (Int) -> Void) {
        for o in 0..<model.opCount {
            run(o)
            observer(o)
        }
    }

    /// Runs op `index` alone. Its inputs must already hold their values.
    public func run(_ index: Int) {
        let op = model.op(index)
        let x = model.tensor(op.inputs.0)
        let y = model.tensor(op.output)
        // Float32 kernels, unless the runtime was built int8-only: then load refused every
        // op but Dense and Softmax that would need one (BuildOptions.swift), and the
        // int8 branches are all there is.
        let f32 = f32KernelsBuilt && x.dtype == .f32
        switch op.opcode {
        case .dense:
            let w = model.tensor(op.inputs.1)
            if x.dtype == .f32 {
                denseF32(input: floats(x), weights: floats(w), bias: optionalFloats(op.inputs.2),
                         output: outFloats(y), inputCount: w.dims.1, outputCount: w.dims.0,
                         clamp: clampF32(op.activation))
            } else {
                denseQ8(input: int8s(x), inputZeroPoint: model.quant(x, 0).zeroPoint, weights: int8s(w),
                        bias: optionalInt32s(op.inputs.2), output: mutableInt8s(y),
                        inputCount: w.dims.1, outputCount: w.dims.0, requant: requant(op, y))
            }
        case .conv2d, .depthwiseConv2d:
            let w = model.tensor(op.inputs.1)
            let depthwise = op.opcode == .depthwiseConv2d
            let window = convolutionWindow(op, x, y, w)
            switch (f32, depthwise) {
            case (true, false):
                conv2dF32(input: floats(x), weights: floats(w), bias: optionalFloats(op.inputs.2),
                          output: outFloats(y), window: window, clamp: clampF32(op.activation))
            case (true, true):
                depthwiseConv2dF32(input: floats(x), weights: floats(w), bias: optionalFloats(op.inputs.2),
                                   output: outFloats(y), window: window, clamp: clampF32(op.activation))
            case (false, false):
                conv2dQ8(input: int8s(x), inputZeroPoint: model.quant(x, 0).zeroPoint, weights: int8s(w),
                         bias: optionalInt32s(op.inputs.2), output: mutableInt8s(y), window: window,
                         requant: requant(op, y))
            case (false, true):
                depthwiseConv2dQ8(input: int8s(x), inputZeroPoint: model.quant(x, 0).zeroPoint, weights: int8s(w),
                                  bias: optionalInt32s(op.inputs.2), output: mutableInt8s(y), window: window,
                                  requant: requant(op, y))
            }
        case .maxPool2d, .avgPool2d:
            let window = poolWindow(op, x, y)
            switch (f32, op.opcode == .maxPool2d) {
            case (true, true): maxPool2dF32(input: floats(x), output: outFloats(y), window: window)
            case (true, false): avgPool2dF32(input: floats(x), output: outFloats(y), window: window)
            case (false, true): maxPool2dQ8(input: int8s(x), output: mutableInt8s(y), window: window)
            case (false, false): avgPool2dQ8(input: int8s(x), output: mutableInt8s(y), window: window)
            }
        case .globalAveragePool:
            if f32 {
                globalAveragePoolF32(input: floats(x), output: outFloats(y),
                                     height: x.dims.0, width: x.dims.1, channels: x.dims.2)
            } else {
                globalAveragePoolQ8(input: int8s(x), output: mutableInt8s(y),
                                    height: x.dims.0, width: x.dims.1, channels: x.dims.2)
            }
        case .add:
            let b = model.tensor(op.inputs.1)
            if f32 {
                addF32(a: floats(x), b: floats(b), output: outFloats(y), count: y.elementCount,
                       clamp: clampF32(op.activation))
            } else {
                let params = AddQ8Params(op, a: model.quant(x, 0), b: model.quant(b, 0), output: model.quant(y, 0))
                addQ8(a: int8s(x), b: int8s(b), output: mutableInt8s(y), count: y.elementCount, params: params)
            }
        case .reshape:
            let src = base + x.dataOffset
            let dst = base + y.dataOffset
            dst.copyMemory(from: UnsafeRawPointer(src), byteCount: y.dataBytes)
        case .softmax:
            if x.dtype == .f32 {
                softmaxF32(input: floats(x), output: outFloats(y), count: y.elementCount)
            } else {
                softmaxQ8(input: int8s(x), output: mutableInt8s(y), count: y.elementCount,
                          expTable: int32s(model.tensor(op.inputs.1)))
            }
        case .quantize:
            let q = model.quant(y, 0)
            quantizeF32ToQ8(input: floats(x), output: mutableInt8s(y), count: y.elementCount,
                            scale: q.scale, zeroPoint: q.zeroPoint)
        case .dequantize:
            let q = model.quant(x, 0)
            dequantizeQ8ToF32(input: int8s(x), output: outFloats(y), count: y.elementCount,
                              scale: q.scale, zeroPoint: q.zeroPoint)
        case .l2Normalize:
            l2NormalizeF32(input: floats(x), output: outFloats(y), count: y.elementCount)
        }
    }

    // MARK: Pointers (validated ranges)

    private func raw(_ info: TensorInfo) -> UnsafeRawPointer {
        switch info.storage {
        case .constant: return model.base + info.dataOffset
        case .arena: return UnsafeRawPointer(base + info.dataOffset)
        }
    }

    private func floats(_ info: TensorInfo) -> UnsafePointer<Float> {
        raw(info).assumingMemoryBound(to: Float.self)
    }

    private func int8s(_ info: TensorInfo) -> UnsafePointer<Int8> {
        raw(info).assumingMemoryBound(to: Int8.self)
    }

    private func int32s(_ info: TensorInfo) -> UnsafePointer<Int32> {
        raw(info).assumingMemoryBound(to: Int32.self)
    }

    private func optionalFloats(_ t: Int) -> UnsafePointer<Float>? {
        t < 0 ? nil : floats(model.tensor(t))
    }

    private func optionalInt32s(_ t: Int) -> UnsafePointer<Int32>? {
        t < 0 ? nil : int32s(model.tensor(t))
    }

    private func mutableFloats(_ info: TensorInfo) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(
            start: (base + info.dataOffset).assumingMemoryBound(to: Float.self),
            count: info.elementCount)
    }

    private func outFloats(_ info: TensorInfo) -> UnsafeMutablePointer<Float> {
        (base + info.dataOffset).assumingMemoryBound(to: Float.self)
    }

    private func mutableInt8s(_ info: TensorInfo) -> UnsafeMutablePointer<Int8> {
        (base + info.dataOffset).assumingMemoryBound(to: Int8.self)
    }

    private func requant(_ op: OpInfo, _ y: TensorInfo) -> RequantQ8 {
        let q = model.quant(y, 0)
        let (lo, hi) = clampQ8(op.activation, q)
        return RequantQ8(multipliers: int32s(model.tensor(op.inputs.3)), shifts: int32s(model.tensor(op.inputs.4)),
                         outputZeroPoint: q.zeroPoint, clampMin: lo, clampMax: hi)
    }
}

/// The Float32 clamp of a fused activation.
public func clampF32(_ activation: Activation) -> ClampF32 {
    switch activation {
    case .none: return .none
    case .relu: return ClampF32(lower: 0, upper: .infinity)
    case .relu6: return ClampF32(lower: 0, upper: 6)
    }
}

/// The int8 clamp of a fused activation for an output quantized with `q`.
///
/// Example: ReLU6 with scale 0.05 and zero point −100 clamps to
/// `[−100, −100 + round(6 / 0.05)] = [−100, 20]`.
public func clampQ8(_ activation: Activation, _ q: QuantParams) -> (Int32, Int32) {
    let zero = max(-128, min(127, q.zeroPoint))
    switch activation {
    case .none:
        return (-128, 127)
    case .relu:
        return (zero, 127)
    case .relu6:
        let steps = (6 / q.scale).rounded(.toNearestOrAwayFromZero)
        let six = steps >= 255 ? Int32(127) : min(127, q.zeroPoint + Int32(steps))
        return (zero, max(zero, six))
    }
}
