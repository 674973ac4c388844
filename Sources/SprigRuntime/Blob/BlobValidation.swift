// Load-time validation of a blob: every record, every op's contract, and
// the data flow through the arena. See docs/blob-format.md, "Validation".
// After these checks pass, the interpreter evaluates without checks.

extension Model {
    // MARK: Tensors

    /// Returns the bytes of DATA it scanned (f32 constants, quantization records).
    @discardableResult
    func validateTensor(_ t: Int) throws(SprigError) -> Int {
        var scanned = 0
        let r = tensorsOffset + t * BlobLayout.tensorRecordBytes
        guard let dtype = DType(rawValue: readU8(bytes, r + TensorField.dtype)) else {
            throw .invalidField(field: .tensorDType, index: t, value: Int(readU8(bytes, r + TensorField.dtype)))
        }
        let rank = Int(readU8(bytes, r + TensorField.rank))
        guard rank <= BlobLayout.maxRank else {
            throw .invalidField(field: .tensorRank, index: t, value: rank)
        }
        guard let storage = Storage(rawValue: readU8(bytes, r + TensorField.storage)) else {
            throw .invalidField(field: .tensorStorage, index: t, value: Int(readU8(bytes, r + TensorField.storage)))
        }
        guard readU8(bytes, r + TensorField.reserved) == 0 else { throw .invalidField(field: .reserved, index: t, value: Int(readU8(bytes, r + TensorField.reserved))) }
        for off in stride(from: TensorField.reservedTail, to: BlobLayout.tensorRecordBytes, by: 4) where readU32(bytes, r + off) != 0 {
            throw .invalidField(field: .reserved, index: t, value: toInt(readU32(bytes, r + off)))
        }
        // Shape: used dims ≥ 1, unused 0, product × size without overflow.
        var product = dtype.size
        for i in 0..<BlobLayout.maxRank {
            let d = toInt(readU32(bytes, r + TensorField.dim(i)))
            if i < rank {
                guard d >= 1 else { throw .invalidField(field: .tensorDims, index: t, value: d) }
                let (p, overflow) = product.multipliedReportingOverflow(by: d)
                guard !overflow, UInt32(exactly: p) != nil else { throw .shapeOverflow(tensor: t) }
                product = p
            } else if d != 0 {
                throw .invalidField(field: .tensorDims, index: t, value: d)
            }
        }
        let dataBytes = toInt(readU32(bytes, r + TensorField.dataBytes))
        guard dataBytes == product else {
            throw .fieldMismatch(field: .tensorDataBytes, index: t, expected: product, found: dataBytes)
        }
        let offset = toInt(readU32(bytes, r + TensorField.dataOffset))
        guard offset % BlobLayout.alignment == 0 else {
            throw .misaligned(field: .tensorDataOffset, index: t, offset: offset, alignment: BlobLayout.alignment)
        }
        switch storage {
        case .constant:
            guard offset >= dataOffset, fits(offset - dataOffset, dataBytes, self.dataBytes) else {
                throw .outOfBounds(field: .tensorDataOffset, index: t, offset: offset, bytes: dataBytes,
                                   limit: self.dataOffset + self.dataBytes)
            }
            try expectDisjointData(t, .tensorDataOffset, offset, dataBytes)
        case .arena:
            guard fits(offset, dataBytes, arenaBytes) else {
                throw .outOfBounds(field: .tensorDataOffset, index: t, offset: offset, bytes: dataBytes, limit: arenaBytes)
            }
        }
        // f32 constants (weights, biases) must be finite: one NaN would poison every output.
        if dtype == .f32 && storage == .constant {
            scanned += dataBytes
            for e in 0..<(dataBytes / 4) {
                let bits = readU32(bytes, offset + 4 * e)
                if bits & 0x7F80_0000 == 0x7F80_0000 { throw .nonFinite(tensor: t, element: e, bits: bits) }
            }
        }
        // Quantization.
        let quantCount = toInt(readU32(bytes, r + TensorField.quantCount))
        let axis = toInt(readU32(bytes, r + TensorField.quantAxis))
        let quantOffset = toInt(readU32(bytes, r + TensorField.quantOffset))
        if quantCount == 0 {
            guard axis == 0 else { throw .invalidField(field: .quantAxis, index: t, value: axis) }
            guard quantOffset == 0 else { throw .invalidField(field: .quantOffset, index: t, value: quantOffset) }
        } else {
            if quantCount > 1 {
                guard axis < rank else { throw .invalidField(field: .quantAxis, index: t, value: axis) }
                let d = toInt(readU32(bytes, r + TensorField.dim(axis)))
                guard quantCount == d else {
                    throw .fieldMismatch(field: .quantCount, index: t, expected: d, found: quantCount)
                }
            } else if axis != 0 {
                throw .invalidField(field: .quantAxis, index: t, value: axis)
            }
            guard quantOffset % 4 == 0 else {
                throw .misaligned(field: .quantOffset, index: t, offset: quantOffset, alignment: 4)
            }
            let (qBytes, qOverflow) = quantCount.multipliedReportingOverflow(by: BlobLayout.quantRecordBytes)
            guard !qOverflow else { throw .shapeOverflow(tensor: t) }
            guard quantOffset >= dataOffset, fits(quantOffset - dataOffset, qBytes, self.dataBytes) else {
                throw .outOfBounds(field: .quantOffset, index: t, offset: quantOffset, bytes: qBytes,
                                   limit: self.dataOffset + self.dataBytes)
            }
            try expectDisjointData(t, .quantOffset, quantOffset, qBytes)
            scanned += qBytes
            for c in 0..<quantCount {
                let q = quant(tensor(t), c)
                guard q.scale.isFinite && q.scale > 0 else {
                    throw .invalidField(field: .quantScale, index: t, value: Int(q.scale.bitPattern))
                }
                if dtype == .i8 && (q.zeroPoint < -128 || q.zeroPoint > 127) {
                    throw .invalidField(field: .quantZeroPoint, index: t, value: Int(q.zeroPoint))
                }
            }
        }
        let nameOffset = toInt(readU32(bytes, r + TensorField.nameOffset))
        let nameBytes = toInt(readU32(bytes, r + TensorField.nameBytes))
        if nameBytes > 0 || nameOffset > 0 {
            guard fits(nameOffset, nameBytes, stringsBytes) else {
                throw .outOfBounds(field: .tensorName, index: t, offset: nameOffset, bytes: nameBytes, limit: stringsBytes)
            }
        }
        return scanned
    }

    /// Throws when `[offset, offset + count)` of tensor `t` (its constant data,
    /// or its quantization table for `.quantOffset`) meets DATA bytes that an
    /// earlier tensor, or `t`'s own constant data, already uses. With every DATA
    /// byte owned by one tensor, the scans below read each byte once.
    ///
    /// - Complexity: O(t); O(tensors²) for the whole blob, at most 4,096².
    private func expectDisjointData(_ t: Int, _ field: BlobField, _ offset: Int, _ count: Int) throws(SprigError) {
        for p in 0...t {
            let r = tensorsOffset + p * BlobLayout.tensorRecordBytes
            // Ranges of earlier records were validated: their sums do not overflow.
            if readU8(bytes, r + TensorField.storage) == Storage.constant.rawValue && !(p == t && field == .tensorDataOffset) {
                let o = toInt(readU32(bytes, r + TensorField.dataOffset)), n = toInt(readU32(bytes, r + TensorField.dataBytes))
                if offset < o + n && o < offset + count { throw .overlappingData(field: field, first: p, second: t) }
            }
            let quantCount = toInt(readU32(bytes, r + TensorField.quantCount))
            if p < t && quantCount > 0 {
                let o = toInt(readU32(bytes, r + TensorField.quantOffset)), n = quantCount * BlobLayout.quantRecordBytes
                if offset < o + n && o < offset + count { throw .overlappingData(field: field, first: p, second: t) }
            }
        }
    }

    // MARK: IO and metadata

    func validateIO() throws(SprigError) {
        var inputs = 0
        var outputs = 0
        for i in 0..<ioCount {
            let e = io(i)
            guard e.role == 0 || e.role == 1 else { throw .invalidField(field: .ioRole, index: i, value: e.role) }
            guard e.tensor < tensorCount else {
                throw .countOverflow(field: .ioTensor, index: i, value: e.tensor, maximum: tensorCount - 1)
            }
            let info = tensor(e.tensor)
            guard info.storage == .arena else { throw .invalidField(field: .ioTensor, index: i, value: e.tensor) }
            if e.role == 0 {
                inputs += 1
                guard info.dtype != .i32 else { throw .invalidField(field: .ioTensor, index: i, value: e.tensor) }
                guard e.mean.isFinite, e.std.isNormal, e.std >= minimumInputStd else {
                    throw .badNormalization(input: i, mean: e.mean, std: e.std, bound: .infinity)
                }
                for j in 0..<i where io(j).tensor == e.tensor && io(j).role == 0 {
                    throw .invalidField(field: .ioTensor, index: i, value: e.tensor)
                }
            } else {
                outputs += 1
                guard e.mean == 0, e.std == 1 else {
                    throw .invalidField(field: .ioNormalization, index: i, value: Int(e.std.bitPattern))
                }
            }
        }
        guard inputs >= 1 else { throw .fieldMismatch(field: .ioRole, index: 0, expected: 1, found: 0) }
        guard outputs >= 1 else { throw .fieldMismatch(field: .ioRole, index: 1, expected: 1, found: 0) }
    }

    func validateMetadata(_ m: Int) throws(SprigError) {
        let r = metadataOffset + m * BlobLayout.metadataRecordBytes
        let ko = toInt(readU32(bytes, r + MetadataField.keyOffset)), kb = toInt(readU32(bytes, r + MetadataField.keyBytes))
        let vo = toInt(readU32(bytes, r + MetadataField.valueOffset)), vb = toInt(readU32(bytes, r + MetadataField.valueBytes))
        guard fits(ko, kb, stringsBytes) else {
            throw .outOfBounds(field: .metadataKey, index: m, offset: ko, bytes: kb, limit: stringsBytes)
        }
        guard fits(vo, vb, stringsBytes) else {
            throw .outOfBounds(field: .metadataValue, index: m, offset: vo, bytes: vb, limit: stringsBytes)
        }
    }

    // MARK: Ops

    /// Returns the bytes of constant tables it scanned (requantization, softmax).
    @discardableResult
    func validateOp(_ o: Int) throws(SprigError) -> Int {
        var scanned = 0
        let r = opsOffset + o * BlobLayout.opRecordBytes
        let rawOpcode = readU8(bytes, r + OpField.opcode)
        guard let opcode = Opcode(rawValue: rawOpcode) else { throw .unknownOpcode(op: o, value: Int(rawOpcode)) }
        guard Activation(rawValue: readU8(bytes, r + OpField.activation)) != nil else {
            throw .invalidField(field: .opActivation, index: o, value: Int(readU8(bytes, r + OpField.activation)))
        }
        guard readU8(bytes, r + OpField.reserved) == 0 else { throw .invalidField(field: .reserved, index: o, value: Int(readU8(bytes, r + OpField.reserved))) }
        let inputCount = Int(readU8(bytes, r + OpField.inputCount))
        guard inputCount >= 1 && inputCount <= BlobLayout.maxInputs else {
            throw .invalidField(field: .opInputCount, index: o, value: inputCount)
        }
        for s in 0..<BlobLayout.maxInputs {
            let v = readU32(bytes, r + OpField.input(s))
            if v == BlobLayout.absent { continue }
            guard s < inputCount else { throw .invalidField(field: .opInput, index: o, value: s) }
            guard toInt(v) < tensorCount else {
                throw .countOverflow(field: .opInput, index: o, value: toInt(v), maximum: tensorCount - 1)
            }
        }
        let out = toInt(readU32(bytes, r + OpField.output))
        guard out < tensorCount else {
            throw .countOverflow(field: .opOutput, index: o, value: out, maximum: tensorCount - 1)
        }
        guard tensor(out).storage == .arena else { throw .storageMismatch(op: o, slot: -1, tensor: out) }

        let op = self.op(o)
        let x = op.inputs.0
        guard x >= 0 else { throw .invalidField(field: .opInput, index: o, value: 0) }
        let xi = tensor(x)
        let precision = xi.dtype
        guard precision == .f32 || precision == .i8 else {
            throw .dtypeMismatch(op: o, slot: 0, expected: .f32, found: Int(precision.rawValue))
        }
        // A runtime built with -D SPRIG_INT8_ONLY (BuildOptions.swift) has no Float32 kernels to run this op with.
        guard f32KernelsBuilt || precision == .i8 || !opcode.f32KernelLeftOutOfInt8Only else {
            throw .f32NotBuilt(op: o, opcode: opcode)
        }
        // Each op's own checks, in Ops/<Op>.swift: an op that does not compute a new value first
        // refuses a fused activation; each ends by requiring the params it does not use to be 0.
        switch opcode {
        case .dense: scanned = try validateDense(o, op, xi)
        case .conv2d: scanned = try validateConv2D(o, op, xi)
        case .depthwiseConv2d: scanned = try validateDepthwiseConv2D(o, op, xi)
        case .maxPool2d: try validateMaxPool2D(o, op, xi)
        case .avgPool2d: try validateAvgPool2D(o, op, xi)
        case .globalAveragePool: try validateGlobalAveragePool(o, op, xi)
        case .add: try validateAdd(o, op, xi)
        case .reshape: try validateReshape(o, op, xi)
        case .softmax: scanned = try validateSoftmax(o, op, xi)
        case .quantize: try validateQuantize(o, op, xi)
        case .dequantize: try validateDequantize(o, op, xi)
        case .l2Normalize: try validateL2Normalize(o, op, xi)
        }
        return scanned
    }

    /// Dense, Conv2D and DepthwiseConv2D, the checks before their shapes: the
    /// input count, an arena input, constant weights and the dtypes. Returns the
    /// weights' and the output's records.
    func validateWeightedInputs(_ o: Int, _ op: OpInfo, _ xi: TensorInfo) throws(SprigError)
        -> (weights: TensorInfo, output: TensorInfo) {
        let precision = xi.dtype
        try expectCount(o, op, precision == .f32 ? 3 : 5)
        try expectArena(o, 0, op.inputs.0)
        let w = op.inputs.1
        guard w >= 0 else { throw .invalidField(field: .opInput, index: o, value: 1) }
        try expectConstant(o, 1, w)
        let wi = tensor(w)
        try expectDType(o, 1, wi, precision)
        let out = tensor(op.output)
        try expectDType(o, -1, out, precision)
        return (wi, out)
    }

    /// Dense, Conv2D and DepthwiseConv2D, the checks after their shapes: the
    /// bias, and in int8 the quantization of input, output and weights (per
    /// tensor, or per output channel along `quantAxis`) and the requantization
    /// tables. Returns the bytes of the tables it scanned.
    func validateWeightedTail(_ o: Int, _ op: OpInfo, _ xi: TensorInfo, weights wi: TensorInfo, outChannels: Int,
                              quantAxis: Int) throws(SprigError) -> Int {
        let precision = xi.dtype
        let w = op.inputs.1
        let b = op.inputs.2
        if b >= 0 {
            try expectConstant(o, 2, b)
            let bi = tensor(b)
            try expectDType(o, 2, bi, precision == .f32 ? .f32 : .i32)
            guard bi.elementCount == outChannels else {
                throw .shapeMismatch(op: o, slot: 2, expected: outChannels, found: bi.elementCount)
            }
        }
        guard precision == .i8 else {
            guard op.inputs.3 < 0 && op.inputs.4 < 0 else { throw .invalidField(field: .opInput, index: o, value: 3) }
            return 0
        }
        try expectPerTensor(o, 0, op.inputs.0)
        try expectPerTensor(o, -1, op.output)
        // Weights: symmetric (zero point 0), per tensor or per output channel.
        guard wi.quantCount == 1 || (wi.quantCount == outChannels && wi.quantAxis == quantAxis) else {
            throw .badQuantization(op: o, slot: 1, tensor: w)
        }
        for c in 0..<wi.quantCount where quant(wi, c).zeroPoint != 0 {
            throw .badQuantization(op: o, slot: 1, tensor: w)
        }
        // Requantization tables.
        for slot in 3...4 {
            let t = op.input(slot)
            guard t >= 0 else { throw .invalidField(field: .opInput, index: o, value: slot) }
            try expectConstant(o, slot, t)
            let ti = tensor(t)
            try expectDType(o, slot, ti, .i32)
            guard ti.elementCount == outChannels else {
                throw .shapeMismatch(op: o, slot: slot, expected: outChannels, found: ti.elementCount)
            }
        }
        let multipliers = constantBytes(tensor(op.inputs.3))
        let shifts = constantBytes(tensor(op.inputs.4))
        for c in 0..<outChannels {
            try expectMultiplier(o, Int32(bitPattern: readU32(multipliers, 4 * c)),
                                 Int32(bitPattern: readU32(shifts, 4 * c)))
        }
        return multipliers.count + shifts.count
    }

    /// Params `used ..< 8` of op `o` must be 0 (an op reads params `0 ..< used`).
    func expectZeroParams(_ o: Int, _ op: OpInfo, from used: Int) throws(SprigError) {
        for i in used..<BlobLayout.paramCount where op.param(i) != 0 {
            throw .invalidField(field: .opParam, index: o, value: Int(op.param(i)))
        }
    }

    /// Only ops that compute a new value (Dense, Conv2D, DepthwiseConv2D, Add) may fuse an activation.
    func expectNoActivation(_ o: Int, _ op: OpInfo) throws(SprigError) {
        guard op.activation == .none else {
            throw .invalidField(field: .opActivation, index: o, value: Int(op.activation.rawValue))
        }
    }

    func expectCount(_ o: Int, _ op: OpInfo, _ n: Int) throws(SprigError) {
        guard op.inputCount == n else {
            throw .fieldMismatch(field: .opInputCount, index: o, expected: n, found: op.inputCount)
        }
    }

    func expectArena(_ o: Int, _ slot: Int, _ t: Int) throws(SprigError) {
        guard tensor(t).storage == .arena else { throw .storageMismatch(op: o, slot: slot, tensor: t) }
    }

    func expectConstant(_ o: Int, _ slot: Int, _ t: Int) throws(SprigError) {
        guard tensor(t).storage == .constant else { throw .storageMismatch(op: o, slot: slot, tensor: t) }
    }

    func expectDType(_ o: Int, _ slot: Int, _ info: TensorInfo, _ dtype: DType) throws(SprigError) {
        guard info.dtype == dtype else {
            throw .dtypeMismatch(op: o, slot: slot, expected: dtype, found: Int(info.dtype.rawValue))
        }
    }

    func expectPerTensor(_ o: Int, _ slot: Int, _ t: Int) throws(SprigError) {
        guard tensor(t).quantCount == 1 else { throw .badQuantization(op: o, slot: slot, tensor: t) }
    }

    func expectSameQuant(_ o: Int, _ input: Int, _ output: Int) throws(SprigError) {
        try expectPerTensor(o, 0, input)
        try expectPerTensor(o, -1, output)
        let a = quant(tensor(input), 0), b = quant(tensor(output), 0)
        guard a.scale.bitPattern == b.scale.bitPattern, a.zeroPoint == b.zeroPoint else {
            throw .badQuantization(op: o, slot: -1, tensor: output)
        }
    }

    func expectMultiplier(_ o: Int, _ multiplier: Int32, _ shift: Int32) throws(SprigError) {
        guard multiplier == 0 || multiplier >= (1 << 30) else {
            throw .invalidField(field: .opParam, index: o, value: Int(multiplier))
        }
        guard shift >= -31 && shift <= 30 else { throw .invalidField(field: .opParam, index: o, value: Int(shift)) }
    }

    // MARK: Constant use

    /// Each constant tensor feeds one op input slot, so the per-op scans of
    /// load (requantization tables, value bounds) read each constant once.
    ///
    /// - Complexity: O(ops² × 36) comparisons of raw slot values, at most about 19 M.
    func validateConstantUse() throws(SprigError) {
        for o in 0..<opCount {
            let r = opsOffset + o * BlobLayout.opRecordBytes
            for s in 0..<BlobLayout.maxInputs {
                let v = readU32(bytes, r + OpField.input(s))
                guard v != BlobLayout.absent, tensor(toInt(v)).storage == .constant else { continue }
                for p in 0...o {
                    let pr = opsOffset + p * BlobLayout.opRecordBytes
                    for q in 0..<(p == o ? s : BlobLayout.maxInputs) where readU32(bytes, pr + OpField.input(q)) == v {
                        throw .sharedConstant(op: o, slot: s, tensor: toInt(v), firstOp: p)
                    }
                }
            }
        }
    }

    // MARK: Data flow

    /// Every arena read is of a value already written and still intact; every
    /// arena tensor is written once; graph outputs are written and survive.
    func validateDataFlow() throws(SprigError) {
        for o in 0..<opCount {
            let op = self.op(o)
            let out = op.output
            if isGraphInput(out) { throw .writtenTwice(op: o, tensor: out) }
            for p in 0..<o where self.op(p).output == out { throw .writtenTwice(op: o, tensor: out) }
            for s in 0..<op.inputCount {
                let t = op.input(s)
                guard t >= 0, tensor(t).storage == .arena else { continue }
                guard let producer = self.producer(of: t, before: o) else { throw .readBeforeWrite(op: o, tensor: t) }
                // No op from the producer up to and including this one overwrites t.
                for m in (producer + 1)...o where overlaps(self.op(m).output, t) {
                    throw .arenaOverlap(op: m, tensor: t)
                }
            }
        }
        for i in 0..<ioCount where io(i).role == 1 {
            let t = io(i).tensor
            guard let producer = producer(of: t, before: opCount), producer >= 0 || isGraphInput(t) else {
                throw .outputNeverWritten(tensor: t)
            }
            if producer < 0 { throw .outputNeverWritten(tensor: t) }
            for m in (producer + 1)..<max(producer + 1, opCount) where overlaps(self.op(m).output, t) {
                throw .arenaOverlap(op: m, tensor: t)
            }
        }
    }

    private func isGraphInput(_ t: Int) -> Bool {
        for i in 0..<ioCount where io(i).role == 0 && io(i).tensor == t { return true }
        return false
    }

    /// The op before `limit` that writes `t`, -1 for a graph input, nil if none.
    private func producer(of t: Int, before limit: Int) -> Int? {
        var p = limit - 1
        while p >= 0 {
            if op(p).output == t { return p }
            p -= 1
        }
        return isGraphInput(t) ? -1 : nil
    }

    private func overlaps(_ a: Int, _ b: Int) -> Bool {
        let x = tensor(a), y = tensor(b)
        return x.dataOffset < y.dataOffset + y.dataBytes && y.dataOffset < x.dataOffset + x.dataBytes
    }
}

@inline(__always)
func inRange(_ v: Int, _ lo: Int, _ hi: Int) -> Bool { v >= lo && v <= hi }
