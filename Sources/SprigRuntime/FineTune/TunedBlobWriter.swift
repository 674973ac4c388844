// Serialisation of a tuned model into a caller buffer, without the heap.
//
// The tuned blob is a complete version-1 blob (docs/blob-format.md):
//
//   kept    the backbone: every tensor that ops 0 ..< head.firstOp read or
//           write, the graph input and the feature tensor, renumbered in
//           their original order; their constants and quantization records
//           copied into the new DATA, their names into the new STRINGS.
//           Arena tensors keep their original offsets. After `bias` or
//           `last`, the trained constants are copied from the arena instead.
//   new     features.f32 [D]  (int8 features only) ← Dequantize(features)
//           features.l2  [D]                       ← L2Normalize
//           head.weight  [C][D] f32, head.bias [C] f32 (constants)
//           head.logits  [C]                       ← Dense
//           head.probs   [C]   (if the original ended in Softmax) ← Softmax
//   arena   the new activations are placed one after another from the end of
//           the kept tensors (16-aligned); the arena is not re-planned.
//   header  arena_bytes is that end; the fine-tuning plan keeps its classes,
//           shots, plan record version, augmentation and layers, and its bytes
//           grow (or shrink) by the change in arena and tensor count, so the
//           tuned blob can be tuned again.
//   meta    every entry is kept except `labels` (replaced by the class names
//           when given, else dropped: the old labels name other classes) and
//           `precision` (`mixed` when the features are int8).
//
// Sections are laid out as BlobBuilder lays them out: TENSORS, OPS, IO,
// METADATA, STRINGS, DATA, each 16-aligned. Pass 1 (`tunedLayout`) sizes
// everything and fills the renumbering table in the arena's scratch; pass 2
// writes. The result is loaded with `Model` before it is handed back.

extension FineTuner {
    /// Exact bytes of the tuned blob.
    ///
    /// - Parameter classNames: UTF-8 class names separated by `,`, one per
    ///   class (stored as the `labels` metadata), or nil.
    /// - Throws: ``FineTuneError/notTuned``, ``FineTuneError/classNamesMismatch(names:classes:)``,
    ///   ``FineTuneError/formatLimit(limit:value:maximum:)``.
    public func tunedBlobBytes(classNames: UnsafeRawBufferPointer? = nil) throws(SprigError) -> Int {
        try tunedLayout(classNames: classNames).fileBytes
    }

    /// Writes the tuned blob into `buffer` (16-byte aligned, at least
    /// ``tunedBlobBytes(classNames:)`` long) and returns its length.
    ///
    /// The same model, shots and options always give the same bytes.
    /// - Throws: the errors of ``tunedBlobBytes(classNames:)``;
    ///   ``FineTuneError/bufferTooSmall(need:have:)``; ``SprigError/bufferMisaligned(address:)``.
    ///   Nothing is written when it throws.
    /// - Complexity: O(blob bytes + tensors × ops); no allocation.
    public func writeTunedBlob(into buffer: UnsafeMutableRawBufferPointer,
                               classNames: UnsafeRawBufferPointer? = nil) throws(SprigError) -> Int {
        let t = try tunedLayout(classNames: classNames)
        guard buffer.count >= t.fileBytes, let out = buffer.baseAddress else {
            throw .fineTune(.bufferTooSmall(need: t.fileBytes, have: buffer.count))
        }
        let address = Int(bitPattern: out)
        guard address & (BlobLayout.alignment - 1) == 0 else { throw .bufferMisaligned(address: address) }
        guard let layout else { throw .fineTune(.notTuned) }
        out.initializeMemory(as: UInt8.self, repeating: 0, count: t.fileBytes)
        let src = model.base
        let remap = int32s(layout.remap)
        let d = head.featureCount, c = classCount

        // Header.
        put32(out, HeaderField.magic, BlobLayout.magic)
        out.storeBytes(of: UInt16(BlobLayout.version).littleEndian, toByteOffset: HeaderField.version, as: UInt16.self)
        out.storeBytes(of: UInt16(BlobLayout.headerBytes).littleEndian, toByteOffset: HeaderField.headerBytes, as: UInt16.self)
        put32(out, HeaderField.fileBytes, UInt32(truncatingIfNeeded: t.fileBytes))
        put32(out, HeaderField.sectionCount, UInt32(truncatingIfNeeded: t.sectionCount))
        put32(out, HeaderField.sectionTable, UInt32(BlobLayout.headerBytes))
        put32(out, HeaderField.arenaBytes, UInt32(truncatingIfNeeded: t.arenaBytes))
        put32(out, HeaderField.finetuneArenaBytes, UInt32(truncatingIfNeeded: t.planBytes))
        put32(out, HeaderField.finetuneMaxClasses, UInt32(truncatingIfNeeded: plan.maxClasses))
        put32(out, HeaderField.finetuneMaxShots, UInt32(truncatingIfNeeded: plan.maxShots))
        if let augmentation = plan.augmentation, let layers = plan.maxLayers {
            out.storeBytes(of: UInt8(1), toByteOffset: HeaderField.finetunePlanVersion, as: UInt8.self)
            out.storeBytes(of: UInt8(truncatingIfNeeded: augmentation), toByteOffset: HeaderField.finetuneAugmentation, as: UInt8.self)
            out.storeBytes(of: UInt8(truncatingIfNeeded: layers), toByteOffset: HeaderField.finetuneMaxLayers, as: UInt8.self)
        }
        // Section table.
        // (No local functions that capture a `var`: those box it on the heap in debug builds.)
        var entry = BlobLayout.headerBytes
        putSection(out, &entry, .tensors, t.tensorsAt, t.tensorCount * BlobLayout.tensorRecordBytes, t.tensorCount)
        putSection(out, &entry, .ops, t.opsAt, t.opCount * BlobLayout.opRecordBytes, t.opCount)
        putSection(out, &entry, .io, t.ioAt, 2 * BlobLayout.ioRecordBytes, 2)
        if t.metadataCount > 0 { putSection(out, &entry, .metadata, t.metadataAt, t.metadataCount * BlobLayout.metadataRecordBytes, t.metadataCount) }
        if t.stringsBytes > 0 { putSection(out, &entry, .strings, t.stringsAt, t.stringsBytes, 0) }
        putSection(out, &entry, .data, t.dataAt, t.dataBytes, 0)

        // Kept tensors: the record copied, then data, quantization and name re-pointed.
        for old in 0..<model.tensorCount {
            let e = remap + 4 * old
            guard e[0] >= 0 else { continue }
            let info = model.tensor(old)
            let r = t.tensorsAt + Int(e[0]) * BlobLayout.tensorRecordBytes
            (out + r).copyMemory(from: src + model.tensorsOffset + old * BlobLayout.tensorRecordBytes,
                                byteCount: BlobLayout.tensorRecordBytes)
            if info.storage == .constant {
                put32(out, r + TensorField.dataOffset, UInt32(truncatingIfNeeded: t.dataAt + Int(e[1])))
                let trained = segment == nil ? -1 : Int(int32s(layout.slots)[4 * old + 2])
                let from = trained >= 0 ? UnsafeRawPointer(base + layout.parameters.offset + trained) : src + info.dataOffset
                (out + t.dataAt + Int(e[1])).copyMemory(from: from, byteCount: info.dataBytes)
            }
            if info.quantCount > 0 {
                put32(out, r + TensorField.quantOffset, UInt32(truncatingIfNeeded: t.dataAt + Int(e[2])))
                (out + t.dataAt + Int(e[2])).copyMemory(from: src + info.quantOffset,
                                                        byteCount: info.quantCount * BlobLayout.quantRecordBytes)
            }
            put32(out, r + TensorField.nameOffset, info.nameBytes > 0 ? UInt32(truncatingIfNeeded: e[3]) : 0)
            copyBytes(model.name(info), to: out + t.stringsAt + Int(e[3]))
        }
        // New tensors.
        func tensor(_ index: Int, _ storage: Storage, _ d0: Int, _ d1: Int, offset: Int, name: Int, _ label: StaticString) {
            let r = t.tensorsAt + index * BlobLayout.tensorRecordBytes
            let rank = d1 > 0 ? 2 : 1
            out.storeBytes(of: DType.f32.rawValue, toByteOffset: r + TensorField.dtype, as: UInt8.self)
            out.storeBytes(of: UInt8(rank), toByteOffset: r + TensorField.rank, as: UInt8.self)
            out.storeBytes(of: storage.rawValue, toByteOffset: r + TensorField.storage, as: UInt8.self)
            put32(out, r + TensorField.dims, UInt32(truncatingIfNeeded: d0))
            put32(out, r + TensorField.dims + 4, UInt32(truncatingIfNeeded: d1))
            put32(out, r + TensorField.dataOffset, UInt32(truncatingIfNeeded: offset))
            put32(out, r + TensorField.dataBytes, UInt32(truncatingIfNeeded: 4 * d0 * max(d1, 1)))
            put32(out, r + TensorField.nameOffset, UInt32(truncatingIfNeeded: name))
            put32(out, r + TensorField.nameBytes, UInt32(truncatingIfNeeded: label.utf8CodeUnitCount))
            copyBytes(UnsafeRawBufferPointer(start: label.utf8Start, count: label.utf8CodeUnitCount),
                      to: out + t.stringsAt + name)
        }
        if t.featuresF32 >= 0 {
            tensor(t.featuresF32, .arena, d, 0, offset: t.featuresF32At, name: t.names.featuresF32, "features.f32")
        }
        tensor(t.featuresL2, .arena, d, 0, offset: t.featuresL2At, name: t.names.featuresL2, "features.l2")
        tensor(t.weight, .constant, c, d, offset: t.dataAt + t.weightAt, name: t.names.weight, "head.weight")
        tensor(t.bias, .constant, c, 0, offset: t.dataAt + t.biasAt, name: t.names.bias, "head.bias")
        tensor(t.logits, .arena, c, 0, offset: t.logitsAt, name: t.names.logits, "head.logits")
        if t.probs >= 0 { tensor(t.probs, .arena, c, 0, offset: t.probsAt, name: t.names.probs, "head.probs") }
        (out + t.dataAt + t.weightAt).copyMemory(from: floats(layout.weights), byteCount: 4 * c * d)
        (out + t.dataAt + t.biasAt).copyMemory(from: floats(layout.bias), byteCount: 4 * c)

        // Backbone ops: copied, tensor indices renumbered.
        for o in 0..<head.firstOp {
            let r = t.opsAt + o * BlobLayout.opRecordBytes
            (out + r).copyMemory(from: src + model.opsOffset + o * BlobLayout.opRecordBytes, byteCount: BlobLayout.opRecordBytes)
            for s in 0..<BlobLayout.maxInputs {
                let v = readU32(model.bytes, model.opsOffset + o * BlobLayout.opRecordBytes + OpField.inputs + 4 * s)
                if v != BlobLayout.absent { put32(out, r + OpField.inputs + 4 * s, UInt32(bitPattern: remap[4 * toInt(v)])) }
            }
            put32(out, r + OpField.output, UInt32(bitPattern: remap[4 * model.op(o).output]))
        }
        // Head ops.
        var o = head.firstOp
        func op(_ opcode: Opcode, _ inputs: (Int, Int, Int), _ count: Int, _ output: Int, _ o: inout Int) {
            let r = t.opsAt + o * BlobLayout.opRecordBytes
            out.storeBytes(of: opcode.rawValue, toByteOffset: r + OpField.opcode, as: UInt8.self)
            out.storeBytes(of: UInt8(count), toByteOffset: r + OpField.inputCount, as: UInt8.self)
            for s in 0..<BlobLayout.maxInputs { put32(out, r + OpField.inputs + 4 * s, BlobLayout.absent) }
            put32(out, r + OpField.inputs, UInt32(truncatingIfNeeded: inputs.0))
            if count > 1 { put32(out, r + OpField.inputs + 4, UInt32(truncatingIfNeeded: inputs.1)) }
            if count > 2 { put32(out, r + OpField.inputs + 8, UInt32(truncatingIfNeeded: inputs.2)) }
            put32(out, r + OpField.output, UInt32(truncatingIfNeeded: output))
            o += 1
        }
        let feature = Int(remap[4 * head.featureTensor])
        if t.featuresF32 >= 0 {
            op(.dequantize, (feature, -1, -1), 1, t.featuresF32, &o)
            op(.l2Normalize, (t.featuresF32, -1, -1), 1, t.featuresL2, &o)
        } else {
            op(.l2Normalize, (feature, -1, -1), 1, t.featuresL2, &o)
        }
        op(.dense, (t.featuresL2, t.weight, t.bias), 3, t.logits, &o)
        if t.probs >= 0 { op(.softmax, (t.logits, -1, -1), 1, t.probs, &o) }

        // IO: the original input record, renumbered; the new output.
        for i in 0..<model.ioCount where model.io(i).role == 0 {
            (out + t.ioAt).copyMemory(from: src + model.ioOffset + i * BlobLayout.ioRecordBytes, byteCount: BlobLayout.ioRecordBytes)
            put32(out, t.ioAt + IOField.tensor, UInt32(bitPattern: remap[4 * model.io(i).tensor]))
        }
        put32(out, t.ioAt + BlobLayout.ioRecordBytes + IOField.role, 1)
        put32(out, t.ioAt + BlobLayout.ioRecordBytes + IOField.tensor, UInt32(truncatingIfNeeded: t.probs >= 0 ? t.probs : t.logits))
        put32(out, t.ioAt + BlobLayout.ioRecordBytes + IOField.std, Float(1).bitPattern)

        // Metadata: records and their strings, in the order pass 1 counted them.
        var cursor = t.names.metadata
        for m in 0..<t.metadataCount {
            let (key, value) = tunedMetadata(m, classNames: classNames)
            let r = t.metadataAt + m * BlobLayout.metadataRecordBytes
            put32(out, r + MetadataField.keyOffset, UInt32(truncatingIfNeeded: cursor))
            put32(out, r + MetadataField.keyBytes, UInt32(truncatingIfNeeded: key.count))
            copyBytes(key, to: out + t.stringsAt + cursor)
            cursor += key.count
            put32(out, r + MetadataField.valueOffset, UInt32(truncatingIfNeeded: cursor))
            put32(out, r + MetadataField.valueBytes, UInt32(truncatingIfNeeded: value.count))
            copyBytes(value, to: out + t.stringsAt + cursor)
            cursor += value.count
        }

        // CRC last, then prove the blob by loading it.
        let file = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<t.fileBytes])
        put32(out, HeaderField.crc, CRC32.blob(UnsafeRawBufferPointer(file)))
        _ = try Model(bytes: UnsafeRawBufferPointer(file))
        return t.fileBytes
    }

    // MARK: Pass 1: sizes and the renumbering table

    /// Offsets and counts of a tuned blob (absolute in the file unless noted).
    struct TunedLayout {
        var tensorCount = 0, opCount = 0, metadataCount = 0
        var sectionCount = 0
        var tensorsAt = 0, opsAt = 0, ioAt = 0, metadataAt = 0, stringsAt = 0, dataAt = 0
        var stringsBytes = 0, dataBytes = 0, fileBytes = 0
        /// Inference arena of the tuned blob, and its fine-tuning plan bytes.
        var arenaBytes = 0, planBytes = 0
        /// New tensor indices (-1: absent) and their arena offsets.
        var featuresF32 = -1, featuresL2 = -1, weight = -1, bias = -1, logits = -1, probs = -1
        var featuresF32At = 0, featuresL2At = 0, logitsAt = 0, probsAt = 0
        /// Offsets of the head constants inside DATA.
        var weightAt = 0, biasAt = 0
        /// Offsets of the new strings inside STRINGS.
        var names = (featuresF32: 0, featuresL2: 0, weight: 0, bias: 0, logits: 0, probs: 0, metadata: 0)
    }

    /// Sizes the tuned blob and fills the renumbering table (in the arena's
    /// scratch): per original tensor, its new index (-1 = dropped) and the
    /// offsets of its data, quantization and name in the new sections.
    func tunedLayout(classNames: UnsafeRawBufferPointer?) throws(SprigError) -> TunedLayout {
        guard let layout else { throw .fineTune(.notTuned) }
        if let names = classNames, names.count > 0 {
            var count = 1
            for byte in names where byte == UInt8(ascii: ",") { count += 1 }
            guard count == classCount else { throw .fineTune(.classNamesMismatch(names: count, classes: classCount)) }
        }
        let d = head.featureCount, c = classCount
        let remap = int32s(layout.remap)
        var t = TunedLayout()

        // Which tensors stay: the input, the features, and all the backbone touches.
        for i in 0..<model.tensorCount { remap[4 * i] = -1 }
        if let input = model.input(0) { remap[4 * input.tensor] = 0 }
        remap[4 * head.featureTensor] = 0
        for o in 0..<head.firstOp {
            let op = model.op(o)
            for s in 0..<op.inputCount where op.input(s) >= 0 { remap[4 * op.input(s)] = 0 }
            remap[4 * op.output] = 0
        }
        // Renumber, and place names, constants and quantization records.
        var kept = 0, strings = 0, data = 0, arenaEnd = 0
        for i in 0..<model.tensorCount where remap[4 * i] >= 0 {
            let info = model.tensor(i)
            let e = remap + 4 * i
            e[0] = Int32(truncatingIfNeeded: kept)
            kept += 1
            e[3] = Int32(truncatingIfNeeded: strings)
            strings += info.nameBytes
            e[1] = 0
            e[2] = -1
            if info.storage == .constant {
                data = roundUp(data, BlobLayout.alignment)
                e[1] = Int32(truncatingIfNeeded: data)
                data += info.dataBytes
            } else {
                arenaEnd = max(arenaEnd, info.dataOffset + info.dataBytes)
            }
            if info.quantCount > 0 {
                data = roundUp(data, BlobLayout.alignment)
                e[2] = Int32(truncatingIfNeeded: data)
                data += info.quantCount * BlobLayout.quantRecordBytes
            }
        }
        // New tensors, their names, data and arena places.
        var next = kept
        var arena = RegionCursor(cursor: roundUp(arenaEnd, BlobLayout.alignment))
        if head.quantizedFeatures {
            t.featuresF32 = next; next += 1
            t.names.featuresF32 = advance(&strings, by: 12)  // "features.f32"
            t.featuresF32At = arena.take(4 * d).offset
        }
        t.featuresL2 = next; next += 1
        t.names.featuresL2 = advance(&strings, by: 11)  // "features.l2"
        t.featuresL2At = arena.take(4 * d).offset
        t.weight = next; next += 1
        t.names.weight = advance(&strings, by: 11)  // "head.weight"
        data = roundUp(data, BlobLayout.alignment)
        t.weightAt = advance(&data, by: 4 * c * d)
        t.bias = next; next += 1
        t.names.bias = advance(&strings, by: 9)  // "head.bias"
        data = roundUp(data, BlobLayout.alignment)
        t.biasAt = advance(&data, by: 4 * c)
        t.logits = next; next += 1
        t.names.logits = advance(&strings, by: 11)  // "head.logits"
        t.logitsAt = arena.take(4 * c).offset
        if head.softmax {
            t.probs = next; next += 1
            t.names.probs = advance(&strings, by: 10)  // "head.probs"
            t.probsAt = arena.take(4 * c).offset
        }
        t.tensorCount = next
        t.opCount = head.firstOp + (head.quantizedFeatures ? 3 : 2) + (head.softmax ? 1 : 0)
        t.arenaBytes = arena.cursor
        // Metadata strings.
        t.names.metadata = strings
        t.metadataCount = tunedMetadataCount(classNames: classNames)
        for m in 0..<t.metadataCount {
            let (key, value) = tunedMetadata(m, classNames: classNames)
            strings += key.count + value.count
        }
        t.stringsBytes = strings
        t.dataBytes = roundUp(data, BlobLayout.alignment)
        guard t.tensorCount <= BlobLayout.maxTensors else {
            throw .fineTune(.formatLimit(limit: .tensors, value: t.tensorCount, maximum: BlobLayout.maxTensors))
        }
        guard t.opCount <= BlobLayout.maxOps else {
            throw .fineTune(.formatLimit(limit: .ops, value: t.opCount, maximum: BlobLayout.maxOps))
        }
        // Sections, in BlobBuilder's order.
        t.sectionCount = 4 + (t.metadataCount > 0 ? 1 : 0) + (t.stringsBytes > 0 ? 1 : 0)
        var file = RegionCursor(cursor: roundUp(BlobLayout.headerBytes + t.sectionCount * BlobLayout.sectionEntryBytes,
                                                BlobLayout.alignment))
        t.tensorsAt = file.take(t.tensorCount * BlobLayout.tensorRecordBytes).offset
        t.opsAt = file.take(t.opCount * BlobLayout.opRecordBytes).offset
        t.ioAt = file.take(2 * BlobLayout.ioRecordBytes).offset
        if t.metadataCount > 0 { t.metadataAt = file.take(t.metadataCount * BlobLayout.metadataRecordBytes).offset }
        if t.stringsBytes > 0 { t.stringsAt = file.take(t.stringsBytes).offset }
        t.dataAt = file.take(t.dataBytes).offset
        t.fileBytes = file.cursor
        // The tuned plan: the same classes and shots; its bytes follow the
        // inference arena and the per-tensor tables (see FineTuneLayout): the
        // renumbering table, and for `bias`/`last` the slot table too, so more
        // tensors grow the plan by both, fewer shrink it by the first only.
        let moreTensors = t.tensorCount - model.tensorCount
        t.planBytes = plan.arenaBytes + (t.arenaBytes - model.arenaBytes)
            + FineTuneLayout.remapEntryBytes * moreTensors
            + (moreTensors > 0 ? FineTuneLayout.slotEntryBytes * moreTensors : 0)
        let limit = maxU32AsInt
        guard t.fileBytes <= limit else { throw .fineTune(.formatLimit(limit: .fileBytes, value: t.fileBytes, maximum: limit)) }
        guard t.arenaBytes <= limit, t.planBytes <= limit else {
            throw .fineTune(.formatLimit(limit: .arenaBytes, value: max(t.arenaBytes, t.planBytes), maximum: limit))
        }
        return t
    }

    /// Entries of the tuned blob's metadata: the original entries but `labels`
    /// and `precision`, then `precision` (`mixed` for int8 features, else the
    /// original value if any), then `labels` (the class names, if given).
    func tunedMetadataCount(classNames: UnsafeRawBufferPointer?) -> Int {
        var count = 0, precision = false
        for i in 0..<model.metadataCount {
            let key = model.metadata(i).key
            if bytesEqual(key, "precision") { precision = true } else if !bytesEqual(key, "labels") { count += 1 }
        }
        if head.quantizedFeatures || precision { count += 1 }
        if let names = classNames, names.count > 0 { count += 1 }
        return count
    }

    /// Entry `index` of the tuned metadata, in the order of ``tunedMetadataCount(classNames:)``.
    func tunedMetadata(_ index: Int, classNames: UnsafeRawBufferPointer?) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
        var k = 0
        var precision: UnsafeRawBufferPointer? = nil
        for i in 0..<model.metadataCount {
            let (key, value) = model.metadata(i)
            if bytesEqual(key, "labels") { continue }
            if bytesEqual(key, "precision") {
                if precision == nil { precision = value }
                continue
            }
            if k == index { return (key, value) }
            k += 1
        }
        if head.quantizedFeatures || precision != nil {
            if k == index { return (staticBytes("precision"), head.quantizedFeatures ? staticBytes("mixed") : precision ?? staticBytes("")) }
            k += 1
        }
        return (staticBytes("labels"), classNames ?? staticBytes(""))
    }
}

/// Returns `value` and adds `count` to it.
@inline(__always)
private func advance(_ value: inout Int, by count: Int) -> Int {
    let at = value
    value += count
    return at
}

private func putSection(_ out: UnsafeMutableRawPointer, _ entry: inout Int, _ kind: SectionKind, _ offset: Int,
                        _ bytes: Int, _ count: Int) {
    put32(out, entry + SectionField.kind, kind.rawValue)
    put32(out, entry + SectionField.offset, UInt32(truncatingIfNeeded: offset))
    put32(out, entry + SectionField.bytes, UInt32(truncatingIfNeeded: bytes))
    put32(out, entry + SectionField.count, UInt32(truncatingIfNeeded: count))
    entry += BlobLayout.sectionEntryBytes
}

private func staticBytes(_ s: StaticString) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)
}

@inline(__always)
private func put32(_ p: UnsafeMutableRawPointer, _ at: Int, _ v: UInt32) {
    p.storeBytes(of: v.littleEndian, toByteOffset: at, as: UInt32.self)
}

@inline(__always)
private func copyBytes(_ bytes: UnsafeRawBufferPointer, to destination: UnsafeMutableRawPointer) {
    if let s = bytes.baseAddress, bytes.count > 0 { destination.copyMemory(from: s, byteCount: bytes.count) }
}
