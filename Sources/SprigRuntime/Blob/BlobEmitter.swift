// The one writer of the .sprig layout, the mirror of BlobReader.swift. The
// host's BlobBuilder (SprigWriter) and the device's tuned-blob writer
// (FineTune/TunedBlobWriter.swift) both describe their records to it; it
// alone turns them into bytes, through the named field offsets and record
// sizes of BlobFormat.swift. No allocation: it writes into a caller's buffer.
//
// A writer emits its blob twice with the same code:
//
//   1. measure   `BlobEmitter.measuring()` writes nothing and counts the
//                bytes of STRINGS and DATA as the records place them.
//   2. lay out   `BlobSections(...)` places the sections in the one order
//                (TENSORS, OPS, IO, METADATA?, STRINGS?, DATA, 16-aligned)
//                and gives the file's length.
//   3. write     `BlobEmitter(into: buffer, sections:)`, the same calls again,
//                then `finish()` checks that pass 3 placed exactly what
//                pass 1 measured and stores the CRC.
//
// Inside a section the emitter places strings one after another (UTF-8, no
// terminator) and DATA regions (constants, quantization tables) at
// consecutive 16-aligned offsets, in the order the writer hands them over.

/// Where each section of a blob lies, in the order both writers use.
///
/// ```swift
/// let s = BlobSections(tensorCount: 3, opCount: 1, ioCount: 2, metadataCount: 0, stringsBytes: 7, dataBytes: 48)!
/// s.count          // 5: no METADATA
/// s.tensors.offset // 144: the header (64) and 5 table entries (80)
/// s.fileBytes      // 144 + 192 + 64 + 32 + 16 + 48 = 496
/// ```
public struct BlobSections: Equatable, Sendable {
    /// A section-table entry: absolute offset, bytes, record count (0 for DATA and STRINGS).
    public struct Entry: Equatable, Sendable {
        public var offset = 0, bytes = 0, count = 0
    }

    public private(set) var tensors = Entry(), ops = Entry(), io = Entry()
    public private(set) var metadata = Entry(), strings = Entry(), data = Entry()
    /// Sections present: TENSORS, OPS, IO and DATA always; METADATA and
    /// STRINGS when they hold anything.
    public private(set) var count = 0
    public private(set) var fileBytes = 0

    /// Places the sections after the header and the section table, each at
    /// the next 16-aligned offset, in the order of ``kind(at:)``.
    ///
    /// - Returns: nil when a size is negative or the file's length overflows `Int`.
    public init?(tensorCount: Int, opCount: Int, ioCount: Int, metadataCount: Int, stringsBytes: Int, dataBytes: Int) {
        guard tensorCount >= 0, opCount >= 0, ioCount >= 0, metadataCount >= 0, stringsBytes >= 0, dataBytes >= 0,
              tensorCount <= Int.max / BlobLayout.tensorRecordBytes, opCount <= Int.max / BlobLayout.opRecordBytes,
              ioCount <= Int.max / BlobLayout.ioRecordBytes, metadataCount <= Int.max / BlobLayout.metadataRecordBytes,
              stringsBytes <= Int.max / 4, dataBytes <= Int.max / 4 else { return nil }
        let sizes = Sizes(tensors: tensorCount, ops: opCount, io: ioCount, metadata: metadataCount,
                          strings: stringsBytes, data: dataBytes)
        for position in 0..<Self.kindCount where sizes.of(Self.kind(at: position)) != nil { count += 1 }
        var file = RegionCursor(cursor: roundUp(BlobLayout.headerBytes + count * BlobLayout.sectionEntryBytes,
                                                BlobLayout.alignment))
        for position in 0..<Self.kindCount {
            let kind = Self.kind(at: position)
            guard let (bytes, records) = sizes.of(kind) else { continue }
            let e = Entry(offset: file.take(bytes).offset, bytes: bytes, count: records)
            switch kind {
            case .tensors: tensors = e
            case .ops: ops = e
            case .io: io = e
            case .metadata: metadata = e
            case .strings: strings = e
            case .data: data = e
            }
        }
        if file.overflow { return nil }
        fileBytes = file.cursor
    }

    /// All sections at offset 0 and empty: what a measuring emitter places against.
    init() {}

    /// The order of the sections in the file, and so in the table: TENSORS,
    /// OPS, IO, METADATA, STRINGS, DATA.
    public static func kind(at position: Int) -> SectionKind {
        switch position {
        case 0: return .tensors
        case 1: return .ops
        case 2: return .io
        case 3: return .metadata
        case 4: return .strings
        default: return .data
        }
    }

    static let kindCount = 6

    /// Section `index` of the table (`0 ..< count`), with its kind.
    public func entry(_ index: Int) -> (kind: SectionKind, entry: Entry) {
        var k = 0
        for position in 0..<Self.kindCount {
            let kind = Self.kind(at: position)
            let e = entry(of: kind)
            if (kind == .metadata || kind == .strings) && e.bytes == 0 { continue }
            if k == index { return (kind, e) }
            k += 1
        }
        return (.data, data)
    }

    /// The entry of `kind` (all zero when absent).
    public func entry(of kind: SectionKind) -> Entry {
        switch kind {
        case .tensors: return tensors
        case .ops: return ops
        case .io: return io
        case .metadata: return metadata
        case .strings: return strings
        case .data: return data
        }
    }

    /// What each section holds; METADATA and STRINGS are left out when empty.
    private struct Sizes {
        var tensors, ops, io, metadata, strings, data: Int

        func of(_ kind: SectionKind) -> (bytes: Int, count: Int)? {
            switch kind {
            case .tensors: return (tensors * kind.recordSize, tensors)
            case .ops: return (ops * kind.recordSize, ops)
            case .io: return (io * kind.recordSize, io)
            case .metadata: return metadata > 0 ? (metadata * kind.recordSize, metadata) : nil
            case .strings: return strings > 0 ? (strings, 0) : nil
            case .data: return (data, 0)
            }
        }
    }
}

/// Writes the records of a version-1 blob into a caller's buffer, each field
/// at its named offset (BlobFormat.swift), without allocating.
///
/// ```swift
/// var measure = BlobEmitter.measuring()
/// emit(&measure)                                   // the writer's own records, as below
/// let sections = BlobSections(tensorCount: …, stringsBytes: measure.stringsBytes, dataBytes: measure.dataBytes)!
/// var e = BlobEmitter(into: buffer, sections: sections)
/// emit(&e)   // e.header(…); e.tensor(0, info) with info.dataOffset = e.constant(bytes); …; e.metadata(0, key:, value:)
/// let file = try e.finish()                        // the CRC stored; the bytes `file`
/// ```
///
/// Every store is checked against the file's length: one that falls outside
/// is skipped and ``finish()`` throws. Nothing traps, whatever the values.
public struct BlobEmitter {
    /// The file being written (empty when measuring).
    private let file: UnsafeMutableRawBufferPointer
    public let sections: BlobSections
    private let measuring: Bool
    /// Bytes of STRINGS placed so far.
    public private(set) var stringsBytes = 0
    /// DATA regions placed so far; `cursor` is the bytes of DATA.
    private var data = RegionCursor()
    /// The end of the first store that fell outside the file (0: none).
    private var overrun = 0

    /// Bytes of DATA placed so far (a multiple of 16).
    public var dataBytes: Int { data.cursor }

    /// An emitter for pass 1: it writes nothing, and counts STRINGS and DATA.
    /// Offsets it returns are relative to sections at offset 0.
    public static func measuring() -> BlobEmitter {
        BlobEmitter(file: UnsafeMutableRawBufferPointer(start: nil, count: 0), sections: BlobSections(), measuring: true)
    }

    /// An emitter that writes the file `sections` describes into the first
    /// `sections.fileBytes` bytes of `buffer`, which it zeroes first (every
    /// reserved byte, every pad). A buffer shorter than that makes
    /// ``finish()`` throw; a 16-byte aligned one can be loaded in place.
    public init(into buffer: UnsafeMutableRawBufferPointer, sections: BlobSections) {
        let n = min(buffer.count, sections.fileBytes)
        self.init(file: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]), sections: sections, measuring: false)
        file.initializeMemory(as: UInt8.self, repeating: 0)
        if buffer.count < sections.fileBytes { overrun = sections.fileBytes }
    }

    private init(file: UnsafeMutableRawBufferPointer, sections: BlobSections, measuring: Bool) {
        self.file = file
        self.sections = sections
        self.measuring = measuring
    }

    // MARK: Header and section table

    /// The header and the section table. The fine-tuning plan record is
    /// version 1 when `finetune` has both an augmentation level and a layer
    /// count and reserves bytes, else version 0 (bytes 44 … 46 zero).
    public mutating func header(arenaBytes: Int, finetune: FineTunePlan) {
        put32(HeaderField.magic, BlobLayout.magic)
        put16(HeaderField.version, UInt16(BlobLayout.version))
        put16(HeaderField.headerBytes, UInt16(BlobLayout.headerBytes))
        put32(HeaderField.fileBytes, sections.fileBytes)
        put32(HeaderField.sectionCount, sections.count)
        put32(HeaderField.sectionTable, BlobLayout.headerBytes)
        put32(HeaderField.arenaBytes, arenaBytes)
        put32(HeaderField.finetuneArenaBytes, finetune.arenaBytes)
        put32(HeaderField.finetuneMaxClasses, finetune.maxClasses)
        put32(HeaderField.finetuneMaxShots, finetune.maxShots)
        if let augmentation = finetune.augmentation, let layers = finetune.maxLayers, finetune.arenaBytes > 0 {
            put8(HeaderField.finetunePlanVersion, 1)
            put8(HeaderField.finetuneAugmentation, augmentation)
            put8(HeaderField.finetuneMaxLayers, layers)
        }
        for s in 0..<sections.count {
            let (kind, e) = sections.entry(s)
            let r = BlobLayout.headerBytes + s * BlobLayout.sectionEntryBytes
            put32(r + SectionField.kind, kind.rawValue)
            put32(r + SectionField.offset, e.offset)
            put32(r + SectionField.bytes, e.bytes)
            put32(r + SectionField.count, e.count)
        }
    }

    // MARK: Records

    /// Tensor record `index`. Dims past the fourth are not stored; a writer
    /// places the tensor's name, data and quantization first (``string(_:)``,
    /// ``constant(_:)``, ``quantTable(count:)``) and passes their offsets in `info`.
    public mutating func tensor(_ index: Int, _ info: TensorInfo) {
        let r = record(.tensors, index)
        put8(r + TensorField.dtype, Int(info.dtype.rawValue))
        put8(r + TensorField.rank, info.rank)
        put8(r + TensorField.storage, Int(info.storage.rawValue))
        for i in 0..<min(info.rank, BlobLayout.maxRank) { put32(r + TensorField.dim(i), info.dim(i)) }
        put32(r + TensorField.dataOffset, info.dataOffset)
        put32(r + TensorField.dataBytes, info.dataBytes)
        put32(r + TensorField.quantCount, info.quantCount)
        put32(r + TensorField.quantAxis, info.quantAxis)
        put32(r + TensorField.quantOffset, info.quantOffset)
        put32(r + TensorField.nameOffset, info.nameOffset)
        put32(r + TensorField.nameBytes, info.nameBytes)
    }

    /// Op record `index`: input slots past `inputCount` and negative ones are
    /// stored absent; all eight params are stored.
    public mutating func op(_ index: Int, _ info: OpInfo) {
        let r = record(.ops, index)
        put8(r + OpField.opcode, Int(info.opcode.rawValue))
        put8(r + OpField.activation, Int(info.activation.rawValue))
        put8(r + OpField.inputCount, info.inputCount)
        for s in 0..<BlobLayout.maxInputs {
            let t = s < info.inputCount ? info.input(s) : -1
            put32(r + OpField.input(s), t < 0 ? BlobLayout.absent : UInt32(truncatingIfNeeded: t))
        }
        put32(r + OpField.output, info.output)
        for i in 0..<BlobLayout.paramCount { put32(r + OpField.param(i), UInt32(bitPattern: info.param(i))) }
    }

    /// IO record `index`: role 0 (input) or 1 (output), the tensor, the input
    /// normalisation (outputs: mean 0, std 1).
    public mutating func io(_ index: Int, role: Int, tensor: Int, mean: Float, std: Float) {
        let r = record(.io, index)
        put32(r + IOField.role, role)
        put32(r + IOField.tensor, tensor)
        put32(r + IOField.mean, mean.bitPattern)
        put32(r + IOField.std, std.bitPattern)
    }

    /// METADATA record `index`; its key, then its value, are placed in STRINGS.
    public mutating func metadata(_ index: Int, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        let r = record(.metadata, index)
        put32(r + MetadataField.keyOffset, string(key))
        put32(r + MetadataField.keyBytes, key.count)
        put32(r + MetadataField.valueOffset, string(value))
        put32(r + MetadataField.valueBytes, value.count)
    }

    /// Where record `index` of a record section starts, absolute.
    private func record(_ kind: SectionKind, _ index: Int) -> Int {
        sections.entry(of: kind).offset &+ index &* kind.recordSize
    }

    // MARK: STRINGS and DATA

    /// Places `bytes` next in STRINGS and returns their offset inside STRINGS.
    @discardableResult
    public mutating func string(_ bytes: UnsafeRawBufferPointer) -> Int {
        let at = stringsBytes
        copy(bytes, to: sections.strings.offset &+ at)
        stringsBytes &+= bytes.count
        return at
    }

    /// Places a constant tensor's bytes at the next 16-aligned offset of DATA
    /// and returns that offset, absolute in the file (`data_offset`).
    public mutating func constant(_ bytes: UnsafeRawBufferPointer) -> Int {
        let at = sections.data.offset &+ data.take(bytes.count).offset
        copy(bytes, to: at)
        return at
    }

    /// Reserves a table of `count` quantization records at the next 16-aligned
    /// offset of DATA and returns that offset, absolute (`quant_offset`);
    /// ``quantRecord(table:channel:_:)`` fills it.
    public mutating func quantTable(count: Int) -> Int {
        let bytes = count <= Int.max / BlobLayout.quantRecordBytes ? count * BlobLayout.quantRecordBytes : Int.max / 2
        return sections.data.offset &+ data.take(max(bytes, 0)).offset
    }

    /// Record `channel` of the quantization table at `table`.
    public mutating func quantRecord(table: Int, channel: Int, _ q: QuantParams) {
        let r = table &+ channel &* BlobLayout.quantRecordBytes
        put32(r + QuantField.scale, q.scale.bitPattern)
        put32(r + QuantField.zeroPoint, UInt32(bitPattern: q.zeroPoint))
    }

    // MARK: Finishing

    /// Checks that every store fell inside the file and that STRINGS and DATA
    /// hold exactly what the sections were sized for, then stores the CRC.
    ///
    /// - Returns: the file, `sections.fileBytes` bytes at the start of the buffer.
    /// - Throws: ``SprigError/truncated(needed:available:)`` when a store
    ///   fell outside the file (or the buffer was short, or DATA overflowed `Int`);
    ///   ``SprigError/fieldMismatch(field:index:expected:found:)`` (`section.bytes`)
    ///   when pass 3 placed more or fewer bytes than pass 1 measured.
    public mutating func finish() throws(SprigError) -> UnsafeRawBufferPointer {
        guard overrun == 0 else { throw .truncated(needed: overrun, available: file.count) }
        guard !data.overflow else { throw .truncated(needed: Int.max, available: file.count) }
        for s in 0..<sections.count {
            let (kind, e) = sections.entry(s)
            let placed = kind == .strings ? stringsBytes : kind == .data ? data.cursor : e.bytes
            guard placed == e.bytes else { throw .fieldMismatch(field: .sectionBytes, index: s, expected: e.bytes, found: placed) }
        }
        put32(HeaderField.crc, CRC32.blob(UnsafeRawBufferPointer(file)))
        return UnsafeRawBufferPointer(file)
    }

    // MARK: Little-endian stores (checked; skipped while measuring)

    private mutating func inside(_ at: Int, _ count: Int) -> Bool {
        if measuring { return false }
        if fits(at, count, file.count) { return true }
        if overrun == 0 { overrun = at > Int.max - max(count, 0) ? Int.max : at + max(count, 0) }
        return false
    }

    private mutating func put8(_ at: Int, _ v: Int) {
        guard inside(at, 1), let p = file.baseAddress else { return }
        p.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: at, as: UInt8.self)
    }

    private mutating func put16(_ at: Int, _ v: UInt16) {
        guard inside(at, 2), let p = file.baseAddress else { return }
        p.storeBytes(of: v.littleEndian, toByteOffset: at, as: UInt16.self)
    }

    private mutating func put32(_ at: Int, _ v: UInt32) {
        guard inside(at, 4), let p = file.baseAddress else { return }
        p.storeBytes(of: v.littleEndian, toByteOffset: at, as: UInt32.self)
    }

    /// A count or offset as a u32 field (values past `UInt32` are cut, as the reader will then refuse).
    private mutating func put32(_ at: Int, _ v: Int) {
        put32(at, UInt32(truncatingIfNeeded: v))
    }

    private mutating func copy(_ bytes: UnsafeRawBufferPointer, to at: Int) {
        guard bytes.count > 0, inside(at, bytes.count), let p = file.baseAddress, let s = bytes.baseAddress else { return }
        (p + at).copyMemory(from: s, byteCount: bytes.count)
    }
}
