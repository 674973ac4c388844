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
    public var message: String { messageString(write) }

    /// Writes ``message`` into `w`: the C API's `sprig_error_message` calls
    /// this, so a device image holds no `String` code.
    public func write(to w: inout MessageWriter) {
        switch self {
        case let .truncated(needed, available):
            w.say("truncated: needs % bytes, has %", needed, available)
        case let .badMagic(found):
            w.text("bad magic 0x"); w.hex(UInt64(found), digits: 8); w.text(": expected 0x47525053 (\"SPRG\")")
        case let .unsupportedVersion(found, supported):
            w.say("unsupported version %: this runtime reads version %", found, supported)
        case let .fileSizeMismatch(declared, actual):
            w.say("file_bytes says % bytes but the file has %", declared, actual)
        case let .crcMismatch(stored, computed):
            w.text("CRC mismatch: stored 0x"); w.hex(UInt64(stored), digits: 8)
            w.text(", computed 0x"); w.hex(UInt64(computed), digits: 8); w.text(" (the file is corrupted)")
        case let .bufferMisaligned(address):
            w.text("blob buffer at 0x"); w.hex(UInt64(truncatingIfNeeded: address), digits: 16)
            w.text(" is not 16-byte aligned")
        case let .arenaMisaligned(address):
            w.text("arena at 0x"); w.hex(UInt64(truncatingIfNeeded: address), digits: 16)
            w.text(" is not 16-byte aligned")
        case let .misaligned(field, index, offset, alignment):
            w.text(field.name); w.say(" of #% is %, not a multiple of %", index, offset, alignment)
        case let .outOfBounds(field, index, offset, bytes, limit):
            w.text(field.name); w.say(" of #%: bytes [%, ", index, offset); w.say("% + %) pass the limit %", offset, bytes, limit)
        case let .countOverflow(field, index, value, maximum):
            w.text(field.name); w.say(" of #% is %, more than the maximum %", index, value, maximum)
        case let .shapeOverflow(tensor):
            w.say("tensor #%: the shape's byte size overflows", tensor)
        case let .nonFinite(tensor, element, bits):
            w.say("tensor #% element % is ", tensor, element)
            w.text(bits & 0x007F_FFFF != 0 ? "NaN" : (bits >> 31 == 1 ? "-inf" : "+inf"))
            w.text(" (0x"); w.hex(UInt64(bits), digits: 8); w.text("): constant f32 data must be finite")
        case let .invalidField(field, index, value):
            w.text(field.name); w.say(" of #% has invalid value %", index, value)
        case let .fieldMismatch(field, index, expected, found):
            w.text(field.name); w.say(" of #% is %, expected %", index, found, expected)
        case let .missingSection(kind):
            w.text("required section "); writeSectionName(kind, &w); w.text(" is missing")
        case let .duplicateSection(kind):
            w.text("section "); writeSectionName(kind, &w); w.text(" appears twice")
        case let .unknownSection(index, kind):
            w.say("section #% has unknown kind %", index, kind)
        case let .overlappingSections(first, second):
            w.say("sections #% and #% overlap", first, second)
        case let .unknownOpcode(op, value):
            w.say("op #% has unknown opcode %", op, value)
        case let .dtypeMismatch(op, slot, expected, found):
            writeOpSlot(op, slot, &w); w.say(": dtype %, expected ", found); w.text(expected.name)
        case let .shapeMismatch(op, slot, expected, found):
            writeOpSlot(op, slot, &w); w.say(": shape has %, expected %", found, expected)
        case let .storageMismatch(op, slot, tensor):
            writeOpSlot(op, slot, &w); w.say(": tensor #% has the wrong storage (constant vs arena)", tensor)
        case let .badQuantization(op, slot, tensor):
            writeOpSlot(op, slot, &w); w.say(": tensor #% has missing or unsuitable quantization", tensor)
        case let .readBeforeWrite(op, tensor):
            w.say("op #% reads tensor #% before anything writes it", op, tensor)
        case let .writtenTwice(op, tensor):
            w.say("op #% writes tensor #%, which is already written", op, tensor)
        case let .arenaOverlap(op, tensor):
            w.say("op #% writes arena bytes that tensor #% still needs", op, tensor)
        case let .outputNeverWritten(tensor):
            w.say("graph output tensor #% is never written", tensor)
        case let .arenaTooSmall(need, have):
            w.say("arena too small: the plan needs % bytes, the arena has %", need, have)
        case let .argumentMismatch(expected, found):
            w.say("argument mismatch: expected %, found %", expected, found)
        case let .overlappingData(field, first, second):
            w.say("tensor #%: its ", second)
            w.text(field == .quantOffset ? "quantization table" : "constant data")
            w.say(" overlaps bytes of tensor #%; every DATA byte must belong to one tensor", first)
        case let .sharedConstant(op, slot, tensor, firstOp):
            writeOpSlot(op, slot, &w)
            w.say(": constant tensor #% already feeds op #%; a constant may feed one op input only", tensor, firstOp)
        case let .badNormalization(input, mean, std, bound):
            w.say("graph input #%: normalisation ", input)
            if !(std.isNormal && std >= minimumInputStd) {
                w.text("std "); w.approximate(Double(std))
                w.text(" must be a normal number of at least 2^-20 ("); w.approximate(Double(minimumInputStd)); w.text(")")
                return
            }
            w.text("mean "); w.approximate(Double(mean)); w.text(", std "); w.approximate(Double(std))
            w.text(" maps pixels to magnitudes up to "); w.approximate(bound); w.text(", beyond the Float32 range")
        case let .valueOverflow(op, bound):
            w.say("op #%: its Float32 values can reach magnitude ", op); w.approximate(bound)
            w.text(" for an input in the normalised pixel range, beyond half of the Float32 range (")
            w.approximate(valueBoundLimit); w.text("); outputs could be infinite or NaN")
        case let .f32NotBuilt(op, opcode):
            w.say("op #% (", op); w.text(opcode.name)
            w.text(") computes in f32, but this runtime was built int8-only (SPRIG_INT8_ONLY): load an int8 blob, or use a runtime with the f32 kernels")
        case let .fineTune(problem):
            problem.write(to: &w)
        }
    }
}

/// "op #3 output" or "op #3 input 1" (slot −1 is the output).
private func writeOpSlot(_ op: Int, _ slot: Int, _ w: inout MessageWriter) {
    if slot < 0 { w.say("op #% output", op) } else { w.say("op #% input %", op, slot) }
}

private func writeSectionName(_ kind: Int, _ w: inout MessageWriter) {
    switch kind {
    case 1: w.text("TENSORS")
    case 2: w.text("OPS")
    case 3: w.text("IO")
    case 4: w.text("DATA")
    case 5: w.text("STRINGS")
    case 6: w.text("METADATA")
    default: w.say("kind %", kind)
    }
}

extension SprigError: CustomStringConvertible {
    public var description: String { message }
}
