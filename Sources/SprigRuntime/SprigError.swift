/// A field of the blob, named in errors. See docs/blob-format.md.
public enum BlobField: UInt8, Sendable {
    case headerBytes, flags, reserved, sectionCount, sectionTableOffset
    case sectionKind, sectionOffset, sectionBytes, sectionRecordCount
    case arenaBytes, finetunePlan
    case tensorDType, tensorRank, tensorStorage, tensorDims, tensorDataOffset, tensorDataBytes
    case quantCount, quantAxis, quantOffset, quantScale, quantZeroPoint
    case tensorName
    case opActivation, opInputCount, opInput, opOutput, opParam
    case ioRole, ioTensor, ioNormalization
    case metadataKey, metadataValue

    /// The name used in docs/blob-format.md.
    public var name: StaticString {
        switch self {
        case .headerBytes: return "header_bytes"
        case .flags: return "flags"
        case .reserved: return "reserved"
        case .sectionCount: return "section_count"
        case .sectionTableOffset: return "section_table_offset"
        case .sectionKind: return "section.kind"
        case .sectionOffset: return "section.offset"
        case .sectionBytes: return "section.bytes"
        case .sectionRecordCount: return "section.count"
        case .arenaBytes: return "arena_bytes"
        case .finetunePlan: return "finetune plan"
        case .tensorDType: return "tensor.dtype"
        case .tensorRank: return "tensor.rank"
        case .tensorStorage: return "tensor.storage"
        case .tensorDims: return "tensor.dims"
        case .tensorDataOffset: return "tensor.data_offset"
        case .tensorDataBytes: return "tensor.data_bytes"
        case .quantCount: return "tensor.quant_count"
        case .quantAxis: return "tensor.quant_axis"
        case .quantOffset: return "tensor.quant_offset"
        case .quantScale: return "quant.scale"
        case .quantZeroPoint: return "quant.zero_point"
        case .tensorName: return "tensor.name"
        case .opActivation: return "op.activation"
        case .opInputCount: return "op.input_count"
        case .opInput: return "op.inputs"
        case .opOutput: return "op.output"
        case .opParam: return "op.params"
        case .ioRole: return "io.role"
        case .ioTensor: return "io.tensor"
        case .ioNormalization: return "io.normalization"
        case .metadataKey: return "metadata.key"
        case .metadataValue: return "metadata.value"
        }
    }
}

/// Every way the runtime can refuse a blob, an arena or an input.
///
/// Cases carry the place (a field, and the index of the section, tensor, op
/// or record it belongs to) and the values found and expected, so that a
/// command-line tool turns them into one sentence with ``message``. The
/// runtime never traps on input: it throws one of these, from load or
/// prepare; `invoke` cannot fail.
public enum SprigError: Error, Equatable, Sendable {
    /// The buffer ends before `needed` bytes (it holds `available`).
    case truncated(needed: Int, available: Int)
    /// The first four bytes are not "SPRG".
    case badMagic(found: UInt32)
    /// A version this runtime does not read.
    case unsupportedVersion(found: Int, supported: Int)
    /// header.file_bytes disagrees with the buffer's length.
    case fileSizeMismatch(declared: Int, actual: Int)
    /// The stored CRC-32 is not the CRC of the bytes.
    case crcMismatch(stored: UInt32, computed: UInt32)
    /// The blob buffer or the arena does not start on a 16-byte boundary.
    case bufferMisaligned(address: Int)
    case arenaMisaligned(address: Int)
    /// An offset that must be a multiple of `alignment` is not.
    case misaligned(field: BlobField, index: Int, offset: Int, alignment: Int)
    /// `[offset, offset + bytes)` does not fit below `limit`.
    case outOfBounds(field: BlobField, index: Int, offset: Int, bytes: Int, limit: Int)
    /// A count is larger than the format or the section allows.
    case countOverflow(field: BlobField, index: Int, value: Int, maximum: Int)
    /// A tensor's shape product (times its element size) overflows.
    case shapeOverflow(tensor: Int)
    /// Element `element` of constant f32 tensor `tensor` is NaN or ±∞ (`bits` is its IEEE-754 pattern).
    case nonFinite(tensor: Int, element: Int, bits: UInt32)
    /// A field holds a value outside its allowed set.
    case invalidField(field: BlobField, index: Int, value: Int)
    /// A field must equal `expected` but holds `found`.
    case fieldMismatch(field: BlobField, index: Int, expected: Int, found: Int)
    case missingSection(kind: Int)
    case duplicateSection(kind: Int)
    case unknownSection(index: Int, kind: Int)
    case overlappingSections(first: Int, second: Int)
    case unknownOpcode(op: Int, value: Int)
    /// Input `slot` of op `op` (slot -1 is the output) has the wrong dtype.
    case dtypeMismatch(op: Int, slot: Int, expected: DType, found: Int)
    /// A dimension or element count of an op's tensor (slot -1 is the output) is wrong.
    case shapeMismatch(op: Int, slot: Int, expected: Int, found: Int)
    /// Input `slot` of op `op` must be a constant (or must be an arena tensor).
    case storageMismatch(op: Int, slot: Int, tensor: Int)
    /// An int8 op's tensor lacks the quantization it needs, or has the wrong kind.
    case badQuantization(op: Int, slot: Int, tensor: Int)
    /// An op reads an arena tensor that no earlier op wrote and that is not a graph input.
    case readBeforeWrite(op: Int, tensor: Int)
    /// An arena tensor is written twice, or is both a graph input and an op's output.
    case writtenTwice(op: Int, tensor: Int)
    /// Op `op` writes arena bytes that tensor `tensor` still needs.
    case arenaOverlap(op: Int, tensor: Int)
    /// A graph output is never written by any op.
    case outputNeverWritten(tensor: Int)
    /// The arena the caller gave is smaller than the plan.
    case arenaTooSmall(need: Int, have: Int)
    /// A caller-side argument (an input buffer, an index) does not fit the model.
    case argumentMismatch(expected: Int, found: Int)
    /// Tensor `second`'s bytes in DATA (its constant data, or its quantization
    /// table when `field` is `.quantOffset`) overlap bytes that tensor `first`
    /// already uses. Every byte of DATA belongs to one tensor, so load scans it once.
    case overlappingData(field: BlobField, first: Int, second: Int)
    /// Constant tensor `tensor` feeds input `slot` of op `op` and also an input of
    /// op `firstOp` (≤ `op`): a constant feeds one op slot, so the per-op scans
    /// at load (value bounds, requantization tables) read each byte once.
    case sharedConstant(op: Int, slot: Int, tensor: Int, firstOp: Int)
    /// Graph input `input`'s normalisation: its std is not a normal number of at
    /// least 2⁻²⁰, or the normalised pixel range `(p/255 − mean)/std` reaches `bound`,
    /// beyond what Float32 arithmetic can carry (see docs/reliability.md).
    case badNormalization(input: Int, mean: Float, std: Float, bound: Double)
    /// The Float32 values op `op` computes can reach magnitude `bound` for some
    /// input, beyond half of Float32's range: its outputs could be ±∞ or NaN.
    case valueOverflow(op: Int, bound: Double)
    /// Op `op` computes in Float32, and this runtime was built int8-only
    /// (`-D SPRIG_INT8_ONLY`, see BuildOptions.swift): it has no Float32 kernel for it.
    case f32NotBuilt(op: Int, opcode: Opcode)
    /// On-device fine-tuning refused the model, the shots, the options or the plan
    /// (see FineTune/FineTuneError.swift). Raised before anything changes.
    case fineTune(FineTuneError)

    /// One sentence that names the field, the place and the values.
    public var message: String {
        switch self {
        case let .truncated(needed, available):
            return "truncated: needs \(needed) bytes, has \(available)"
        case let .badMagic(found):
            return "bad magic 0x\(hex(found)): expected 0x47525053 (\"SPRG\")"
        case let .unsupportedVersion(found, supported):
            return "unsupported version \(found): this runtime reads version \(supported)"
        case let .fileSizeMismatch(declared, actual):
            return "file_bytes says \(declared) bytes but the file has \(actual)"
        case let .crcMismatch(stored, computed):
            return "CRC mismatch: stored 0x\(hex(stored)), computed 0x\(hex(computed)) (the file is corrupted)"
        case let .bufferMisaligned(address):
            return "blob buffer at 0x\(hex(UInt64(truncatingIfNeeded: address))) is not 16-byte aligned"
        case let .arenaMisaligned(address):
            return "arena at 0x\(hex(UInt64(truncatingIfNeeded: address))) is not 16-byte aligned"
        case let .misaligned(field, index, offset, alignment):
            return "\(field.name.description) of #\(index) is \(offset), not a multiple of \(alignment)"
        case let .outOfBounds(field, index, offset, bytes, limit):
            return "\(field.name.description) of #\(index): bytes [\(offset), \(offset) + \(bytes)) pass the limit \(limit)"
        case let .countOverflow(field, index, value, maximum):
            return "\(field.name.description) of #\(index) is \(value), more than the maximum \(maximum)"
        case let .shapeOverflow(tensor):
            return "tensor #\(tensor): the shape's byte size overflows"
        case let .nonFinite(tensor, element, bits):
            let what = bits & 0x007F_FFFF != 0 ? "NaN" : (bits >> 31 == 1 ? "-inf" : "+inf")
            return "tensor #\(tensor) element \(element) is \(what) (0x\(hex(bits))): constant f32 data must be finite"
        case let .invalidField(field, index, value):
            return "\(field.name.description) of #\(index) has invalid value \(value)"
        case let .fieldMismatch(field, index, expected, found):
            return "\(field.name.description) of #\(index) is \(found), expected \(expected)"
        case let .missingSection(kind):
            return "required section \(sectionName(kind)) is missing"
        case let .duplicateSection(kind):
            return "section \(sectionName(kind)) appears twice"
        case let .unknownSection(index, kind):
            return "section #\(index) has unknown kind \(kind)"
        case let .overlappingSections(first, second):
            return "sections #\(first) and #\(second) overlap"
        case let .unknownOpcode(op, value):
            return "op #\(op) has unknown opcode \(value)"
        case let .dtypeMismatch(op, slot, expected, found):
            return "op #\(op) \(slotName(slot)): dtype \(found), expected \(expected.name.description)"
        case let .shapeMismatch(op, slot, expected, found):
            return "op #\(op) \(slotName(slot)): shape has \(found), expected \(expected)"
        case let .storageMismatch(op, slot, tensor):
            return "op #\(op) \(slotName(slot)): tensor #\(tensor) has the wrong storage (constant vs arena)"
        case let .badQuantization(op, slot, tensor):
            return "op #\(op) \(slotName(slot)): tensor #\(tensor) has missing or unsuitable quantization"
        case let .readBeforeWrite(op, tensor):
            return "op #\(op) reads tensor #\(tensor) before anything writes it"
        case let .writtenTwice(op, tensor):
            return "op #\(op) writes tensor #\(tensor), which is already written"
        case let .arenaOverlap(op, tensor):
            return "op #\(op) writes arena bytes that tensor #\(tensor) still needs"
        case let .outputNeverWritten(tensor):
            return "graph output tensor #\(tensor) is never written"
        case let .arenaTooSmall(need, have):
            return "arena too small: the plan needs \(need) bytes, the arena has \(have)"
        case let .argumentMismatch(expected, found):
            return "argument mismatch: expected \(expected), found \(found)"
        case let .overlappingData(field, first, second):
            let what = field == .quantOffset ? "quantization table" : "constant data"
            return "tensor #\(second): its \(what) overlaps bytes of tensor #\(first); every DATA byte must belong to one tensor"
        case let .sharedConstant(op, slot, tensor, firstOp):
            return "op #\(op) \(slotName(slot)): constant tensor #\(tensor) already feeds op #\(firstOp); a constant may feed one op input only"
        case let .badNormalization(input, mean, std, bound):
            if !(std.isNormal && std >= minimumInputStd) {
                return "graph input #\(input): normalisation std \(approximate(Double(std))) must be a normal number of at least 2^-20 (\(approximate(Double(minimumInputStd))))"
            }
            return "graph input #\(input): normalisation mean \(approximate(Double(mean))), std \(approximate(Double(std))) maps pixels to magnitudes up to \(approximate(bound)), beyond the Float32 range"
        case let .valueOverflow(op, bound):
            return "op #\(op): its Float32 values can reach magnitude \(approximate(bound)) for an input in the normalised pixel range, beyond half of the Float32 range (\(approximate(valueBoundLimit))); outputs could be infinite or NaN"
        case let .f32NotBuilt(op, opcode):
            return "op #\(op) (\(opcode.name.description)) computes in f32, but this runtime was built int8-only (SPRIG_INT8_ONLY): load an int8 blob, or use a runtime with the f32 kernels"
        case let .fineTune(problem):
            return problem.message
        }
    }
}

private func slotName(_ slot: Int) -> String {
    slot < 0 ? "output" : "input \(slot)"
}

private func sectionName(_ kind: Int) -> String {
    switch kind {
    case 1: return "TENSORS"
    case 2: return "OPS"
    case 3: return "IO"
    case 4: return "DATA"
    case 5: return "STRINGS"
    case 6: return "METADATA"
    default: return "kind \(kind)"
    }
}

/// `x` to three significant digits in exponent form, for messages (Embedded
/// Swift prints no floats): `approximate(3.4e38)` is "3.40e38",
/// `approximate(-0.000123)` is "-1.23e-4", `approximate(0)` is "0".
func approximate(_ x: Double) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x < 0 ? "-inf" : "inf" }
    if x == 0 { return "0" }
    var m = x < 0 ? -x : x
    var e = 0
    while m >= 10 { m /= 10; e += 1 }
    while m < 1 { m *= 10; e -= 1 }
    var digits = Int((m * 100).rounded(.toNearestOrAwayFromZero))  // 100 ... 1000
    if digits >= 1000 { digits /= 10; e += 1 }
    return (x < 0 ? "-" : "") + "\(digits / 100).\(digits / 10 % 10)\(digits % 10)e\(e)"
}

/// Lower-case hexadecimal without a prefix, for messages.
func hex<T: FixedWidthInteger>(_ value: T) -> String {
    let digits: StaticString = "0123456789abcdef"
    var v = UInt64(truncatingIfNeeded: value)
    let width = T.bitWidth / 4
    var out = ""
    var chars: [UInt8] = []
    chars.reserveCapacity(width)
    for _ in 0..<width {
        chars.append(digits.utf8Start[Int(v & 0xF)])
        v >>= 4
    }
    for c in chars.reversed() { out.append(Character(Unicode.Scalar(c))) }
    return out
}

extension SprigError: CustomStringConvertible {
    public var description: String { message }
}
