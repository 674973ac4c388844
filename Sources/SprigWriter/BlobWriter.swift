// The .sprig writer, the mirror of SprigRuntime's BlobReader.swift. Host tools (the
// compiler, the fixture generator) describe a network with BlobBuilder;
// `build()` plans the arena, lays the sections out, writes the CRC, and
// loads the result once with `Model` to prove it is valid.

import SprigRuntime

/// Describes a network and writes it as a version-1 blob.
///
/// ```swift
/// var b = BlobBuilder()
/// let x = b.addActivation("input", dtype: .f32, shape: [4])
/// let w = b.addConstant("w", floats: [1, 2, 3, 4, 5, 6, 7, 8], shape: [2, 4])
/// let y = b.addActivation("logits", dtype: .f32, shape: [2])
/// b.addOp(.dense, inputs: [x, w, -1], output: y)
/// b.addInput(x)
/// b.addOutput(y)
/// let blob = try b.build()
/// ```
public struct BlobBuilder: Sendable {
    public struct Tensor: Sendable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public var storage: Storage
        public var data: [UInt8]
        public var quant: [QuantParams]
        public var quantAxis: Int
    }

    public struct Op: Sendable {
        public var opcode: Opcode
        public var activation: Activation
        public var inputs: [Int]
        public var output: Int
        public var params: [Int32]
    }

    public private(set) var tensors: [Tensor] = []
    public private(set) var ops: [Op] = []
    public private(set) var inputs: [(tensor: Int, mean: Float, std: Float)] = []
    public private(set) var outputs: [Int] = []
    public private(set) var metadata: [(key: String, value: String)] = []
    /// The fine-tuning reservation written to the header (see docs/blob-format.md).
    public var finetune: (arenaBytes: Int, maxClasses: Int, maxShots: Int) = (0, 0, 0)
    /// The plan record's version-1 fields (augmentation level, most layers for
    /// `last`), or nil to write a version-0 plan record (those bytes zero).
    public var finetuneDetail: (augmentation: Int, maxLayers: Int)? = nil

    public init() {}

    // MARK: Describing the network

    /// Adds an activation (arena) tensor; returns its index.
    @discardableResult
    public mutating func addActivation(_ name: String, dtype: DType, shape: [Int], quant: QuantParams? = nil) -> Int {
        tensors.append(Tensor(name: name, dtype: dtype, shape: shape, storage: .arena, data: [],
                              quant: quant.map { [$0] } ?? [], quantAxis: 0))
        return tensors.count - 1
    }

    /// Adds a constant f32 tensor; returns its index.
    @discardableResult
    public mutating func addConstant(_ name: String, floats: [Float], shape: [Int]) -> Int {
        var data: [UInt8] = []
        data.reserveCapacity(floats.count * 4)
        for v in floats { appendU32(&data, v.bitPattern) }
        return addConstant(name, dtype: .f32, shape: shape, data: data, quant: [], quantAxis: 0)
    }

    /// Adds a constant i8 tensor with per-tensor (one record) or per-channel quantization.
    @discardableResult
    public mutating func addConstant(_ name: String, int8s: [Int8], shape: [Int], quant: [QuantParams],
                                     quantAxis: Int = 0) -> Int {
        addConstant(name, dtype: .i8, shape: shape, data: int8s.map { UInt8(bitPattern: $0) },
                    quant: quant, quantAxis: quantAxis)
    }

    /// Adds a constant i32 tensor (biases, requantization tables).
    @discardableResult
    public mutating func addConstant(_ name: String, int32s: [Int32], shape: [Int]) -> Int {
        var data: [UInt8] = []
        data.reserveCapacity(int32s.count * 4)
        for v in int32s { appendU32(&data, UInt32(bitPattern: v)) }
        return addConstant(name, dtype: .i32, shape: shape, data: data, quant: [], quantAxis: 0)
    }

    /// Adds a constant tensor from raw little-endian bytes.
    @discardableResult
    public mutating func addConstant(_ name: String, dtype: DType, shape: [Int], data: [UInt8],
                                     quant: [QuantParams], quantAxis: Int) -> Int {
        tensors.append(Tensor(name: name, dtype: dtype, shape: shape, storage: .constant, data: data,
                              quant: quant, quantAxis: quantAxis))
        return tensors.count - 1
    }

    /// Appends an op. `inputs` uses -1 for an absent slot; `params` may be shorter than 8.
    public mutating func addOp(_ opcode: Opcode, activation: Activation = .none, inputs: [Int], output: Int,
                               params: [Int32] = []) {
        ops.append(Op(opcode: opcode, activation: activation, inputs: inputs, output: output, params: params))
    }

    public mutating func addInput(_ tensor: Int, mean: Float = 0, std: Float = 1) {
        inputs.append((tensor, mean, std))
    }

    public mutating func addOutput(_ tensor: Int) {
        outputs.append(tensor)
    }

    public mutating func setMetadata(_ key: String, _ value: String) {
        metadata.removeAll { $0.key == key }
        metadata.append((key, value))
    }

    // MARK: Planning

    /// Live ranges of the arena tensors, as steps: graph inputs are born at
    /// step 0, op `i` writes at step `i + 1`, graph outputs live to the end.
    public func liveRanges() -> [(tensor: Int, buffer: PlannedBuffer)] {
        var first = [Int](repeating: Int.max, count: tensors.count)
        var last = [Int](repeating: -1, count: tensors.count)
        for i in inputs { first[i.tensor] = 0; last[i.tensor] = max(last[i.tensor], 0) }
        for (i, op) in ops.enumerated() {
            let step = i + 1
            for t in op.inputs where t >= 0 && t < tensors.count {
                last[t] = max(last[t], step)
            }
            if op.output >= 0 && op.output < tensors.count {
                first[op.output] = min(first[op.output], step)
                last[op.output] = max(last[op.output], step)
            }
        }
        for t in outputs where t >= 0 && t < tensors.count { last[t] = ops.count + 1 }
        var result: [(tensor: Int, buffer: PlannedBuffer)] = []
        for (t, tensor) in tensors.enumerated() where tensor.storage == .arena {
            let bytes = byteCount(tensor)
            let f = first[t] == Int.max ? 0 : first[t]
            result.append((tensor: t, buffer: PlannedBuffer(size: bytes, first: f, last: max(f, last[t]))))
        }
        return result
    }

    /// The inference arena plan: an offset per arena tensor, and the peak.
    public func plan() -> (offsets: [Int: Int], peak: Int) {
        let ranges = liveRanges()
        let arena = planArena(ranges.map { $0.buffer })
        var offsets: [Int: Int] = [:]
        for (k, r) in ranges.enumerated() { offsets[r.tensor] = arena.offsets[k] }
        return (offsets, arena.peak)
    }

    // MARK: Writing

    /// Writes the blob and proves it by loading it.
    ///
    /// - Parameter validate: false skips the proof, for tools that write
    ///   hostile blobs on purpose (`hostileBlobs()`); never for a real model.
    /// - Throws: the ``SprigError`` the reader raises if the description is
    ///   not a valid network (wrong shapes, missing quantization, …).
    public func build(validate: Bool = true) throws(SprigError) -> [UInt8] {
        let (arenaOffsets, peak) = plan()
        var strings: [UInt8] = []
        func intern(_ s: String) -> (Int, Int) {
            let start = strings.count
            strings.append(contentsOf: Array(s.utf8))
            return (start, strings.count - start)
        }
        // DATA: constant bytes and quantization records, 16-aligned, relative for now.
        var data: [UInt8] = []
        var dataAt = [Int](repeating: 0, count: tensors.count)
        var quantAt = [Int](repeating: -1, count: tensors.count)
        for (t, tensor) in tensors.enumerated() {
            if tensor.storage == .constant {
                pad(&data, to: 16)
                dataAt[t] = data.count
                data.append(contentsOf: tensor.data)
            }
            if !tensor.quant.isEmpty {
                pad(&data, to: 16)
                quantAt[t] = data.count
                for q in tensor.quant {
                    appendU32(&data, q.scale.bitPattern)
                    appendU32(&data, UInt32(bitPattern: q.zeroPoint))
                }
            }
        }
        pad(&data, to: 16)
        let names = tensors.map { intern($0.name) }
        let meta = metadata.map { (intern($0.key), intern($0.value)) }

        // Section order: TENSORS, OPS, IO, METADATA?, STRINGS?, DATA.
        var kinds: [(SectionKind, Int, Int)] = [  // kind, bytes, count
            (.tensors, tensors.count * 64, tensors.count),
            (.ops, ops.count * 64, ops.count),
            (.io, (inputs.count + outputs.count) * 16, inputs.count + outputs.count),
        ]
        if !meta.isEmpty { kinds.append((.metadata, meta.count * 16, meta.count)) }
        if !strings.isEmpty { kinds.append((.strings, strings.count, 0)) }
        kinds.append((.data, data.count, 0))
        let tableOffset = BlobLayout.headerBytes
        var cursor = alignUp(tableOffset + kinds.count * 16, 16)
        var sectionAt: [UInt32: Int] = [:]
        for (kind, bytes, _) in kinds {
            sectionAt[kind.rawValue] = cursor
            cursor = alignUp(cursor + bytes, 16)
        }
        let fileBytes = cursor
        let dataBase = sectionAt[SectionKind.data.rawValue] ?? 0
        let stringsBase = sectionAt[SectionKind.strings.rawValue] ?? 0

        var out = [UInt8](repeating: 0, count: fileBytes)
        // Header.
        put32(&out, HeaderField.magic, BlobLayout.magic)
        put16(&out, HeaderField.version, UInt16(BlobLayout.version))
        put16(&out, HeaderField.headerBytes, UInt16(BlobLayout.headerBytes))
        put32(&out, HeaderField.fileBytes, UInt32(truncatingIfNeeded: fileBytes))
        put32(&out, HeaderField.sectionCount, UInt32(kinds.count))
        put32(&out, HeaderField.sectionTable, UInt32(tableOffset))
        put32(&out, HeaderField.arenaBytes, UInt32(truncatingIfNeeded: peak))
        put32(&out, HeaderField.finetuneArenaBytes, UInt32(truncatingIfNeeded: finetune.arenaBytes))
        put32(&out, HeaderField.finetuneMaxClasses, UInt32(truncatingIfNeeded: finetune.maxClasses))
        put32(&out, HeaderField.finetuneMaxShots, UInt32(truncatingIfNeeded: finetune.maxShots))
        if let detail = finetuneDetail, finetune.arenaBytes > 0 {
            out[HeaderField.finetunePlanVersion] = 1
            out[HeaderField.finetuneAugmentation] = UInt8(truncatingIfNeeded: detail.augmentation)
            out[HeaderField.finetuneMaxLayers] = UInt8(truncatingIfNeeded: detail.maxLayers)
        }
        for (i, (kind, bytes, count)) in kinds.enumerated() {
            let e = tableOffset + i * BlobLayout.sectionEntryBytes
            put32(&out, e + SectionField.kind, kind.rawValue)
            put32(&out, e + SectionField.offset, UInt32(sectionAt[kind.rawValue] ?? 0))
            put32(&out, e + SectionField.bytes, UInt32(truncatingIfNeeded: bytes))
            put32(&out, e + SectionField.count, UInt32(truncatingIfNeeded: count))
        }
        // Tensors.
        let tensorBase = sectionAt[SectionKind.tensors.rawValue] ?? 0
        for (t, tensor) in tensors.enumerated() {
            let r = tensorBase + t * BlobLayout.tensorRecordBytes
            out[r + TensorField.dtype] = tensor.dtype.rawValue
            out[r + TensorField.rank] = UInt8(truncatingIfNeeded: tensor.shape.count)
            out[r + TensorField.storage] = tensor.storage.rawValue
            for (i, d) in tensor.shape.prefix(4).enumerated() { put32(&out, r + TensorField.dims + 4 * i, UInt32(truncatingIfNeeded: d)) }
            let offset = tensor.storage == .constant ? dataBase + dataAt[t] : (arenaOffsets[t] ?? 0)
            put32(&out, r + TensorField.dataOffset, UInt32(truncatingIfNeeded: offset))
            put32(&out, r + TensorField.dataBytes, UInt32(truncatingIfNeeded: byteCount(tensor)))
            put32(&out, r + TensorField.quantCount, UInt32(truncatingIfNeeded: tensor.quant.count))
            put32(&out, r + TensorField.quantAxis, UInt32(truncatingIfNeeded: tensor.quant.count > 1 ? tensor.quantAxis : 0))
            put32(&out, r + TensorField.quantOffset, UInt32(truncatingIfNeeded: quantAt[t] >= 0 ? dataBase + quantAt[t] : 0))
            put32(&out, r + TensorField.nameOffset, UInt32(truncatingIfNeeded: names[t].0))
            put32(&out, r + TensorField.nameBytes, UInt32(truncatingIfNeeded: names[t].1))
        }
        // Ops.
        let opBase = sectionAt[SectionKind.ops.rawValue] ?? 0
        for (o, op) in ops.enumerated() {
            let r = opBase + o * BlobLayout.opRecordBytes
            out[r + OpField.opcode] = op.opcode.rawValue
            out[r + OpField.activation] = op.activation.rawValue
            out[r + OpField.inputCount] = UInt8(truncatingIfNeeded: op.inputs.count)
            for s in 0..<BlobLayout.maxInputs {
                let t = s < op.inputs.count ? op.inputs[s] : -1
                put32(&out, r + OpField.inputs + 4 * s, t < 0 ? BlobLayout.absent : UInt32(truncatingIfNeeded: t))
            }
            put32(&out, r + OpField.output, UInt32(truncatingIfNeeded: op.output))
            for (i, p) in op.params.prefix(8).enumerated() { put32(&out, r + OpField.params + 4 * i, UInt32(bitPattern: p)) }
        }
        // IO.
        let ioBase = sectionAt[SectionKind.io.rawValue] ?? 0
        var k = 0
        for i in inputs {
            let r = ioBase + BlobLayout.ioRecordBytes * k
            put32(&out, r + IOField.role, 0)
            put32(&out, r + IOField.tensor, UInt32(truncatingIfNeeded: i.tensor))
            put32(&out, r + IOField.mean, i.mean.bitPattern)
            put32(&out, r + IOField.std, i.std.bitPattern)
            k += 1
        }
        for t in outputs {
            let r = ioBase + BlobLayout.ioRecordBytes * k
            put32(&out, r + IOField.role, 1)
            put32(&out, r + IOField.tensor, UInt32(truncatingIfNeeded: t))
            put32(&out, r + IOField.std, Float(1).bitPattern)
            k += 1
        }
        // Metadata, strings, data.
        if let metaBase = sectionAt[SectionKind.metadata.rawValue] {
            for (m, (key, value)) in meta.enumerated() {
                let r = metaBase + BlobLayout.metadataRecordBytes * m
                put32(&out, r + MetadataField.keyOffset, UInt32(key.0))
                put32(&out, r + MetadataField.keyBytes, UInt32(key.1))
                put32(&out, r + MetadataField.valueOffset, UInt32(value.0))
                put32(&out, r + MetadataField.valueBytes, UInt32(value.1))
            }
        }
        for (i, b) in strings.enumerated() { out[stringsBase + i] = b }
        for (i, b) in data.enumerated() { out[dataBase + i] = b }
        // CRC last, over everything else.
        let crc = out.withUnsafeBytes { CRC32.blob($0) }
        put32(&out, HeaderField.crc, crc)
        // Prove it.
        if validate { try validateBlob(out) }
        return out
    }

    private func byteCount(_ tensor: Tensor) -> Int {
        tensor.shape.reduce(tensor.dtype.size) { $0 &* $1 }
    }
}

/// Loads `blob` from a 16-byte aligned copy, so an array from anywhere can be checked.
public func validateBlob(_ blob: [UInt8]) throws(SprigError) {
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(blob.count, 1), alignment: 16)
    defer { copy.deallocate() }
    blob.withUnsafeBytes { src in
        if let s = src.baseAddress, let d = copy.baseAddress { d.copyMemory(from: s, byteCount: src.count) }
    }
    _ = try Model(bytes: UnsafeRawBufferPointer(rebasing: copy[0..<blob.count]))
}

func appendU32(_ a: inout [UInt8], _ v: UInt32) {
    a.append(UInt8(truncatingIfNeeded: v))
    a.append(UInt8(truncatingIfNeeded: v >> 8))
    a.append(UInt8(truncatingIfNeeded: v >> 16))
    a.append(UInt8(truncatingIfNeeded: v >> 24))
}

func put32(_ a: inout [UInt8], _ at: Int, _ v: UInt32) {
    a[at] = UInt8(truncatingIfNeeded: v)
    a[at + 1] = UInt8(truncatingIfNeeded: v >> 8)
    a[at + 2] = UInt8(truncatingIfNeeded: v >> 16)
    a[at + 3] = UInt8(truncatingIfNeeded: v >> 24)
}

func put16(_ a: inout [UInt8], _ at: Int, _ v: UInt16) {
    a[at] = UInt8(truncatingIfNeeded: v)
    a[at + 1] = UInt8(truncatingIfNeeded: v >> 8)
}

func pad(_ a: inout [UInt8], to alignment: Int) {
    while a.count % alignment != 0 { a.append(0) }
}
