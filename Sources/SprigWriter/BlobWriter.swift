// The host's description of a network as a .sprig blob. Host tools (the
// compiler, the fixture generator) describe a network with BlobBuilder;
// `build()` plans the arena, hands every record to the runtime's BlobEmitter
// (SprigRuntime/Blob/BlobEmitter.swift, the one writer of the layout, which
// the device's tuned-blob writer uses too), and loads the result once with
// `Model` to prove it is valid.

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

    /// Replaces the values of f32 constant `tensor` (same element count); the compiler's
    /// bias correction adjusts biases this way before quantizing.
    public mutating func setFloats(_ tensor: Int, _ floats: [Float]) {
        precondition(tensors[tensor].storage == .constant && tensors[tensor].dtype == .f32
                     && tensors[tensor].data.count == floats.count * 4, "setFloats: not an f32 constant of that size")
        var data: [UInt8] = []
        data.reserveCapacity(floats.count * 4)
        for v in floats { appendU32(&data, v.bitPattern) }
        tensors[tensor].data = data
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
    /// The records go through the runtime's ``BlobEmitter``, the same code
    /// that writes tuned blobs on a device: measured once, laid out by
    /// ``BlobSections``, then written into one 16-byte aligned buffer.
    ///
    /// - Parameter validate: false skips the proof, for tools that write
    ///   hostile blobs on purpose (`hostileBlobs()`); never for a real model.
    /// - Throws: the ``SprigError`` the reader raises if the description is
    ///   not a valid network (wrong shapes, missing quantization, …).
    public func build(validate: Bool = true) throws(SprigError) -> [UInt8] {
        let (arenaOffsets, peak) = plan()
        var measure = BlobEmitter.measuring()
        emit(into: &measure, arenaOffsets: arenaOffsets, arenaBytes: peak)
        guard let sections = BlobSections(tensorCount: tensors.count, opCount: ops.count,
                                          ioCount: inputs.count + outputs.count, metadataCount: metadata.count,
                                          stringsBytes: measure.stringsBytes, dataBytes: measure.dataBytes) else {
            throw .countOverflow(field: .sectionBytes, index: 0, value: measure.dataBytes, maximum: Int.max)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(sections.fileBytes, 1), alignment: BlobLayout.alignment)
        defer { buffer.deallocate() }
        var emitter = BlobEmitter(into: buffer, sections: sections)
        emit(into: &emitter, arenaOffsets: arenaOffsets, arenaBytes: peak)
        let file = try emitter.finish()
        if validate { _ = try Model(bytes: file) }
        return Array(file)
    }

    /// Every record, in order: header, tensors (names to STRINGS, constants
    /// and quantization tables to DATA, tensor by tensor), ops, inputs then
    /// outputs, metadata.
    private func emit(into e: inout BlobEmitter, arenaOffsets: [Int: Int], arenaBytes: Int) {
        e.header(arenaBytes: arenaBytes,
                 finetune: FineTunePlan(arenaBytes: finetune.arenaBytes, maxClasses: finetune.maxClasses,
                                        maxShots: finetune.maxShots, augmentation: finetuneDetail?.augmentation,
                                        maxLayers: finetuneDetail?.maxLayers))
        for (t, tensor) in tensors.enumerated() {
            var name = tensor.name
            let nameOffset = name.withUTF8 { e.string(UnsafeRawBufferPointer($0)) }
            let dataOffset = tensor.storage == .constant ? tensor.data.withUnsafeBytes { e.constant($0) } : arenaOffsets[t] ?? 0
            let quantOffset = tensor.quant.isEmpty ? 0 : e.quantTable(count: tensor.quant.count)
            for (c, q) in tensor.quant.enumerated() { e.quantRecord(table: quantOffset, channel: c, q) }
            let s = tensor.shape
            e.tensor(t, TensorInfo(dtype: tensor.dtype, rank: s.count, storage: tensor.storage,
                                   dims: (s.count > 0 ? s[0] : 0, s.count > 1 ? s[1] : 0, s.count > 2 ? s[2] : 0, s.count > 3 ? s[3] : 0),
                                   dataOffset: dataOffset, dataBytes: byteCount(tensor), quantCount: tensor.quant.count,
                                   quantAxis: tensor.quant.count > 1 ? tensor.quantAxis : 0, quantOffset: quantOffset,
                                   nameOffset: nameOffset, nameBytes: tensor.name.utf8.count))
        }
        for (o, op) in ops.enumerated() {
            func input(_ s: Int) -> Int { s < op.inputs.count ? op.inputs[s] : -1 }
            func param(_ i: Int) -> Int32 { i < op.params.count ? op.params[i] : 0 }
            e.op(o, OpInfo(opcode: op.opcode, activation: op.activation, inputCount: op.inputs.count,
                           inputs: (input(0), input(1), input(2), input(3), input(4), input(5)), output: op.output,
                           params: (param(0), param(1), param(2), param(3), param(4), param(5), param(6), param(7))))
        }
        for (k, i) in inputs.enumerated() { e.io(k, role: 0, tensor: i.tensor, mean: i.mean, std: i.std) }
        for (k, t) in outputs.enumerated() { e.io(inputs.count + k, role: 1, tensor: t, mean: 0, std: 1) }
        for (m, entry) in metadata.enumerated() {
            var key = entry.key, value = entry.value
            key.withUTF8 { k in value.withUTF8 { v in e.metadata(m, key: UnsafeRawBufferPointer(k), value: UnsafeRawBufferPointer(v)) } }
        }
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
