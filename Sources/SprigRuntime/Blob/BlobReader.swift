// The .sprig reader: validates a blob once, then exposes it in place.
//
// Layout of a version-1 blob (docs/blob-format.md is the full specification):
//
//   0   header, 64 bytes
//       +0  u8[4] magic "SPRG"        +4  u16 version (1)       +6  u16 header_bytes (64)
//       +8  u32 crc32 (file with this field zeroed)             +12 u32 file_bytes
//       +16 u32 flags (0)             +20 u32 section_count     +24 u32 section_table_offset
//       +28 u32 arena_bytes           +32 u32 finetune_arena_bytes
//       +36 u32 finetune_max_classes  +40 u32 finetune_max_shots
//       +44 u8 finetune_plan_version (0, 1)  +45 u8 finetune_augmentation  +46 u8 finetune_max_layers
//       +47 u8[17] reserved
//   T   section table: section_count × { u32 kind, u32 offset, u32 bytes, u32 count }
//       kinds: 1 TENSORS (64 B records), 2 OPS (64 B), 3 IO (16 B), 4 DATA, 5 STRINGS, 6 METADATA (16 B)
//   tensor record: u8 dtype, u8 rank, u8 storage, u8 0, u32 dims[4], u32 data_offset, u32 data_bytes,
//                  u32 quant_count, u32 quant_axis, u32 quant_offset, u32 name_offset, u32 name_bytes, u8[16] 0
//   op record:     u8 opcode, u8 activation, u8 input_count, u8 0, u32 inputs[6], u32 output, i32 params[8]
//   io record:     u32 role, u32 tensor, f32 mean, f32 std
//   metadata:      u32 key_offset, u32 key_bytes, u32 value_offset, u32 value_bytes (in STRINGS)
//   quant record:  f32 scale, i32 zero_point (in DATA)
//
// Everything is little-endian. Every count, offset, shape and parameter is
// checked in `Model.init`; afterwards the accessors read without checks.

/// A validated, zero-copy view of a `.sprig` blob.
///
/// ```swift
/// let model = try Model(bytes: blob)          // throws(SprigError) on any defect
/// let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: model.arenaBytes, alignment: 16)
/// var interpreter = try Interpreter(model: model, arena: arena)
/// ```
///
/// The caller keeps `bytes` alive and unchanged for as long as the model is
/// used: constant tensors are read where they lie.
///
/// - Complexity: load reads each byte of the file a constant number of times
///   (every DATA byte belongs to one tensor, every constant to one op slot),
///   plus O(tensors² + ops² × 36) record comparisons, with at most 4,096
///   tensors and 1,024 ops. See docs/reliability.md.
public struct Model {
    /// The blob, exactly as given.
    public let bytes: UnsafeRawBufferPointer
    /// `bytes.baseAddress`, proven non-nil and 16-byte aligned.
    public let base: UnsafeRawPointer
    /// Arena bytes that inference needs.
    public let arenaBytes: Int
    /// Arena bytes that on-device fine-tuning needs (0 = no plan).
    public let finetuneArenaBytes: Int
    public let finetuneMaxClasses: Int
    public let finetuneMaxShots: Int
    /// 0: the plan records only bytes, classes and shots; 1: also the two fields below.
    public let finetunePlanVersion: Int
    /// Highest augmentation level the plan was sized for (version 1; else 0).
    public let finetuneAugmentation: Int
    /// Most layers `last` may train (version 1; 0 = not planned for `last`).
    public let finetuneMaxLayers: Int
    public let crc: UInt32
    /// The exact work of one invoke (multiply-accumulates and element ops),
    /// counted at load from the shapes; see BlobWork.swift.
    public private(set) var work = Work()
    /// Bytes the load-time scans read after the CRC pass: f32 constants (the
    /// non-finite scan), quantization records, requantization and softmax
    /// tables, and the weights and biases of the value-bound proof. At most
    /// 2 × file bytes, whatever aliases what (docs/reliability.md).
    public private(set) var loadScanBytes = 0

    public let tensorCount: Int
    public let opCount: Int
    public let ioCount: Int
    public let metadataCount: Int
    let tensorsOffset: Int
    let opsOffset: Int
    let ioOffset: Int
    let dataOffset: Int
    let dataBytes: Int
    let stringsOffset: Int
    let stringsBytes: Int
    let metadataOffset: Int

    /// Validates `bytes` as a version-1 blob.
    ///
    /// - Throws: the first defect found, as a ``SprigError`` naming the field,
    ///   the index of its record and the values found and expected.
    public init(bytes: UnsafeRawBufferPointer) throws(SprigError) {
        self.bytes = bytes
        let n = bytes.count
        guard n >= BlobLayout.headerBytes, let base = bytes.baseAddress else {
            throw .truncated(needed: BlobLayout.headerBytes, available: n)
        }
        let address = Int(bitPattern: base)
        guard address & (BlobLayout.alignment - 1) == 0 else { throw .bufferMisaligned(address: address) }
        self.base = base

        // Header.
        let magic = readU32(bytes, HeaderField.magic)
        guard magic == BlobLayout.magic else { throw .badMagic(found: magic) }
        let version = Int(readU16(bytes, HeaderField.version))
        guard version == BlobLayout.version else {
            throw .unsupportedVersion(found: version, supported: BlobLayout.version)
        }
        let headerBytes = Int(readU16(bytes, HeaderField.headerBytes))
        guard headerBytes == BlobLayout.headerBytes else {
            throw .fieldMismatch(field: .headerBytes, index: 0, expected: BlobLayout.headerBytes, found: headerBytes)
        }
        let fileBytes = toInt(readU32(bytes, HeaderField.fileBytes))
        guard fileBytes == n else { throw .fileSizeMismatch(declared: fileBytes, actual: n) }
        let stored = readU32(bytes, HeaderField.crc)
        let computed = CRC32.blob(bytes)
        guard stored == computed else { throw .crcMismatch(stored: stored, computed: computed) }
        crc = stored
        let flags = readU32(bytes, HeaderField.flags)
        guard flags == 0 else { throw .invalidField(field: .flags, index: 0, value: toInt(flags)) }
        if readU8(bytes, HeaderField.reserved) != 0 {
            throw .invalidField(field: .reserved, index: HeaderField.reserved, value: Int(readU8(bytes, HeaderField.reserved)))
        }
        for off in stride(from: HeaderField.reserved + 1, to: BlobLayout.headerBytes, by: 4) where readU32(bytes, off) != 0 {
            throw .invalidField(field: .reserved, index: off, value: toInt(readU32(bytes, off)))
        }
        arenaBytes = toInt(readU32(bytes, HeaderField.arenaBytes))
        guard arenaBytes % BlobLayout.alignment == 0 else {
            throw .misaligned(field: .arenaBytes, index: 0, offset: arenaBytes, alignment: BlobLayout.alignment)
        }
        finetuneArenaBytes = toInt(readU32(bytes, HeaderField.finetuneArenaBytes))
        finetuneMaxClasses = toInt(readU32(bytes, HeaderField.finetuneMaxClasses))
        finetuneMaxShots = toInt(readU32(bytes, HeaderField.finetuneMaxShots))
        if finetuneArenaBytes == 0 && (finetuneMaxClasses != 0 || finetuneMaxShots != 0) {
            throw .invalidField(field: .finetunePlan, index: 0, value: finetuneMaxClasses)
        }
        // The plan record's version: 0 leaves bytes 45 and 46 zero; 1 needs a plan.
        finetunePlanVersion = Int(readU8(bytes, HeaderField.finetunePlanVersion))
        finetuneAugmentation = Int(readU8(bytes, HeaderField.finetuneAugmentation))
        finetuneMaxLayers = Int(readU8(bytes, HeaderField.finetuneMaxLayers))
        switch finetunePlanVersion {
        case 0:
            if finetuneAugmentation != 0 { throw .invalidField(field: .finetunePlan, index: 45, value: finetuneAugmentation) }
            if finetuneMaxLayers != 0 { throw .invalidField(field: .finetunePlan, index: 46, value: finetuneMaxLayers) }
        case 1:
            if finetuneArenaBytes == 0 { throw .invalidField(field: .finetunePlan, index: 44, value: finetunePlanVersion) }
            if finetuneAugmentation > 2 { throw .invalidField(field: .finetunePlan, index: 45, value: finetuneAugmentation) }
        default:
            throw .invalidField(field: .finetunePlan, index: 44, value: finetunePlanVersion)
        }

        // Section table.
        let sectionCount = toInt(readU32(bytes, HeaderField.sectionCount))
        guard sectionCount >= 1 && sectionCount <= BlobLayout.maxSections else {
            throw .countOverflow(field: .sectionCount, index: 0, value: sectionCount, maximum: BlobLayout.maxSections)
        }
        let table = toInt(readU32(bytes, HeaderField.sectionTable))
        let tableBytes = sectionCount * BlobLayout.sectionEntryBytes
        guard table % BlobLayout.alignment == 0 else {
            throw .misaligned(field: .sectionTableOffset, index: 0, offset: table, alignment: BlobLayout.alignment)
        }
        guard table >= BlobLayout.headerBytes, fits(table, tableBytes, n) else {
            throw .outOfBounds(field: .sectionTableOffset, index: 0, offset: table, bytes: tableBytes, limit: n)
        }

        var found = (tensors: -1, ops: -1, io: -1, data: -1, strings: -1, metadata: -1)
        for s in 0..<sectionCount {
            let e = table + s * BlobLayout.sectionEntryBytes
            let rawKind = readU32(bytes, e + SectionField.kind)
            guard let kind = SectionKind(rawValue: rawKind) else {
                throw .unknownSection(index: s, kind: toInt(rawKind))
            }
            let previous: Int
            switch kind {
            case .tensors: previous = found.tensors; found.tensors = s
            case .ops: previous = found.ops; found.ops = s
            case .io: previous = found.io; found.io = s
            case .data: previous = found.data; found.data = s
            case .strings: previous = found.strings; found.strings = s
            case .metadata: previous = found.metadata; found.metadata = s
            }
            if previous >= 0 { throw .duplicateSection(kind: Int(kind.rawValue)) }
            let offset = toInt(readU32(bytes, e + SectionField.offset))
            let size = toInt(readU32(bytes, e + SectionField.bytes))
            let count = toInt(readU32(bytes, e + SectionField.count))
            guard offset % BlobLayout.alignment == 0 else {
                throw .misaligned(field: .sectionOffset, index: s, offset: offset, alignment: BlobLayout.alignment)
            }
            guard offset >= table + tableBytes, fits(offset, size, n) else {
                throw .outOfBounds(field: .sectionOffset, index: s, offset: offset, bytes: size, limit: n)
            }
            let limit: Int
            switch kind {
            case .tensors: limit = BlobLayout.maxTensors
            case .ops: limit = BlobLayout.maxOps
            case .io: limit = BlobLayout.maxIO
            case .metadata: limit = BlobLayout.maxTensors
            case .data, .strings: limit = 0
            }
            guard count <= limit else {
                throw .countOverflow(field: .sectionRecordCount, index: s, value: count, maximum: limit)
            }
            if kind.recordSize > 0 && size != count * kind.recordSize {
                throw .fieldMismatch(field: .sectionBytes, index: s, expected: count * kind.recordSize, found: size)
            }
            // Every other section must not overlap this one.
            for p in 0..<s {
                let pe = table + p * BlobLayout.sectionEntryBytes
                let po = toInt(readU32(bytes, pe + SectionField.offset))
                let ps = toInt(readU32(bytes, pe + SectionField.bytes))
                if offset < po + ps && po < offset + size { throw .overlappingSections(first: p, second: s) }
            }
        }
        func entry(_ s: Int, _ field: Int) -> Int {
            s < 0 ? 0 : toInt(readU32(bytes, table + s * BlobLayout.sectionEntryBytes + field))
        }
        guard found.tensors >= 0 else { throw .missingSection(kind: 1) }
        guard found.ops >= 0 else { throw .missingSection(kind: 2) }
        guard found.io >= 0 else { throw .missingSection(kind: 3) }
        guard found.data >= 0 else { throw .missingSection(kind: 4) }
        tensorsOffset = entry(found.tensors, SectionField.offset)
        tensorCount = entry(found.tensors, SectionField.count)
        opsOffset = entry(found.ops, SectionField.offset)
        opCount = entry(found.ops, SectionField.count)
        ioOffset = entry(found.io, SectionField.offset)
        ioCount = entry(found.io, SectionField.count)
        dataOffset = entry(found.data, SectionField.offset)
        dataBytes = entry(found.data, SectionField.bytes)
        stringsOffset = entry(found.strings, SectionField.offset)
        stringsBytes = entry(found.strings, SectionField.bytes)
        metadataOffset = entry(found.metadata, SectionField.offset)
        metadataCount = entry(found.metadata, SectionField.count)

        var scanned = 0
        for t in 0..<tensorCount { scanned += try validateTensor(t) }
        try validateIO()
        for m in 0..<metadataCount { try validateMetadata(m) }
        for o in 0..<opCount { scanned += try validateOp(o) }
        try validateConstantUse()
        try validateDataFlow()
        scanned += try validateValueBounds()
        loadScanBytes = scanned
        work = totalWork()
    }

    // MARK: Accessors (valid after init)

    /// The decoded record of tensor `index` (`0 ..< tensorCount`).
    public func tensor(_ index: Int) -> TensorInfo {
        let r = tensorsOffset + index * BlobLayout.tensorRecordBytes
        let rank = Int(readU8(bytes, r + TensorField.rank))
        return TensorInfo(
            dtype: DType(rawValue: readU8(bytes, r + TensorField.dtype)) ?? .f32,
            rank: rank,
            storage: Storage(rawValue: readU8(bytes, r + TensorField.storage)) ?? .arena,
            dims: (toInt(readU32(bytes, r + TensorField.dim(0))), toInt(readU32(bytes, r + TensorField.dim(1))),
                   toInt(readU32(bytes, r + TensorField.dim(2))), toInt(readU32(bytes, r + TensorField.dim(3)))),
            dataOffset: toInt(readU32(bytes, r + TensorField.dataOffset)),
            dataBytes: toInt(readU32(bytes, r + TensorField.dataBytes)),
            quantCount: toInt(readU32(bytes, r + TensorField.quantCount)),
            quantAxis: toInt(readU32(bytes, r + TensorField.quantAxis)),
            quantOffset: toInt(readU32(bytes, r + TensorField.quantOffset)),
            nameOffset: toInt(readU32(bytes, r + TensorField.nameOffset)),
            nameBytes: toInt(readU32(bytes, r + TensorField.nameBytes)))
    }

    /// Quantization record `channel` of a tensor (`0 ..< quantCount`).
    public func quant(_ info: TensorInfo, _ channel: Int) -> QuantParams {
        let r = info.quantOffset + channel * BlobLayout.quantRecordBytes
        return QuantParams(scale: Float(bitPattern: readU32(bytes, r + QuantField.scale)),
                           zeroPoint: Int32(bitPattern: readU32(bytes, r + QuantField.zeroPoint)))
    }

    /// The decoded record of op `index` (`0 ..< opCount`).
    public func op(_ index: Int) -> OpInfo {
        let r = opsOffset + index * BlobLayout.opRecordBytes
        func slot(_ i: Int) -> Int {
            let v = readU32(bytes, r + OpField.input(i))
            return v == BlobLayout.absent ? -1 : toInt(v)
        }
        func param(_ i: Int) -> Int32 { Int32(bitPattern: readU32(bytes, r + OpField.param(i))) }
        return OpInfo(
            opcode: Opcode(rawValue: readU8(bytes, r + OpField.opcode)) ?? .reshape,
            activation: Activation(rawValue: readU8(bytes, r + OpField.activation)) ?? .none,
            inputCount: Int(readU8(bytes, r + OpField.inputCount)),
            inputs: (slot(0), slot(1), slot(2), slot(3), slot(4), slot(5)),
            output: toInt(readU32(bytes, r + OpField.output)),
            params: (param(0), param(1), param(2), param(3), param(4), param(5), param(6), param(7)))
    }

    /// An IO record: role 0 = input, 1 = output.
    public func io(_ index: Int) -> (role: Int, tensor: Int, mean: Float, std: Float) {
        let r = ioOffset + index * BlobLayout.ioRecordBytes
        return (toInt(readU32(bytes, r + IOField.role)), toInt(readU32(bytes, r + IOField.tensor)),
                Float(bitPattern: readU32(bytes, r + IOField.mean)), Float(bitPattern: readU32(bytes, r + IOField.std)))
    }

    /// The graph's `k`-th input (role 0), or nil.
    public func input(_ k: Int = 0) -> (tensor: Int, mean: Float, std: Float)? {
        var seen = 0
        for i in 0..<ioCount {
            let e = io(i)
            if e.role == 0 {
                if seen == k { return (e.tensor, e.mean, e.std) }
                seen += 1
            }
        }
        return nil
    }

    /// The graph's `k`-th output tensor index (role 1), or nil.
    public func output(_ k: Int = 0) -> Int? {
        var seen = 0
        for i in 0..<ioCount where io(i).role == 1 {
            if seen == k { return io(i).tensor }
            seen += 1
        }
        return nil
    }

    /// A tensor's name bytes (UTF-8), empty when unnamed.
    public func name(_ info: TensorInfo) -> UnsafeRawBufferPointer {
        string(info.nameOffset, info.nameBytes)
    }

    /// Metadata entry `index` as (key, value) UTF-8 bytes.
    public func metadata(_ index: Int) -> (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        let r = metadataOffset + index * BlobLayout.metadataRecordBytes
        return (string(toInt(readU32(bytes, r + MetadataField.keyOffset)), toInt(readU32(bytes, r + MetadataField.keyBytes))),
                string(toInt(readU32(bytes, r + MetadataField.valueOffset)), toInt(readU32(bytes, r + MetadataField.valueBytes))))
    }

    /// The value bytes of the first metadata entry whose key equals `key`.
    public func metadata(key: StaticString) -> UnsafeRawBufferPointer? {
        for i in 0..<metadataCount {
            let (k, v) = metadata(i)
            if k.count == key.utf8CodeUnitCount {
                var same = true
                for j in 0..<k.count where k[j] != key.utf8Start[j] { same = false; break }
                if same { return v }
            }
        }
        return nil
    }

    /// Bytes of a constant tensor, in place.
    public func constantBytes(_ info: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[info.dataOffset ..< info.dataOffset + info.dataBytes])
    }

    /// Number of parameters: elements of the constant f32/i8 tensors that are
    /// weights or biases (the i32 requantization tables are not counted).
    public var parameterCount: Int {
        var total = 0
        for o in 0..<opCount {
            let op = op(o)
            switch op.opcode {
            case .dense, .conv2d, .depthwiseConv2d:
                total += tensor(op.inputs.1).elementCount
                if op.inputs.2 >= 0 { total += tensor(op.inputs.2).elementCount }
            case .maxPool2d, .avgPool2d, .globalAveragePool, .add, .reshape, .softmax, .quantize, .dequantize,
                 .l2Normalize:
                break  // no weights (a Softmax table is a constant, not a parameter)
            }
        }
        return total
    }

    private func string(_ offset: Int, _ count: Int) -> UnsafeRawBufferPointer {
        if count == 0 { return UnsafeRawBufferPointer(rebasing: bytes[0..<0]) }
        let start = stringsOffset + offset
        return UnsafeRawBufferPointer(rebasing: bytes[start ..< start + count])
    }
}

// MARK: - Little-endian reads (callers prove the range first)

@inline(__always)
func readU8(_ b: UnsafeRawBufferPointer, _ offset: Int) -> UInt8 {
    b.load(fromByteOffset: offset, as: UInt8.self)
}

@inline(__always)
func readU16(_ b: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
    UInt16(littleEndian: b.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
}

@inline(__always)
func readU32(_ b: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
    UInt32(littleEndian: b.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
}

/// A u32 field as `Int`. On 32-bit targets a value above `Int.max` becomes
/// `Int.max`, which every bounds check then rejects; nothing traps.
@inline(__always)
func toInt(_ v: UInt32) -> Int {
    Int(exactly: v) ?? Int.max
}

/// True when `[offset, offset + count)` lies inside `[0, limit)`, without overflow.
@inline(__always)
func fits(_ offset: Int, _ count: Int, _ limit: Int) -> Bool {
    offset >= 0 && count >= 0 && offset <= limit && count <= limit - offset
}

/// `UInt32.max` as an `Int`, or `Int.max` where `Int` is 32 bits (it cannot trap there).
let maxU32AsInt: Int = Int(exactly: UInt32.max) ?? Int.max
