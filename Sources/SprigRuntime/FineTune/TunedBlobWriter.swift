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
// The records go through BlobEmitter (Blob/BlobEmitter.swift), the writer
// BlobBuilder uses too, so sections, records, DATA and STRINGS are laid out
// exactly as the compiler lays them out. Pass 1 (`tunedLayout`) renumbers the
// tensors in the arena's scratch, places the new activations, and runs
// `emitTuned` on a measuring emitter to size STRINGS and DATA; pass 2 runs
// `emitTuned` again into the caller's buffer. The result is loaded with
// `Model` before it is handed back.

extension FineTuner {
    /// Exact bytes of the tuned blob.
    ///
    /// - Parameter classNames: UTF-8 class names separated by `,`, one per
    ///   class (stored as the `labels` metadata), or nil.
    /// - Throws: ``FineTuneError/notTuned``, ``FineTuneError/classNamesMismatch(names:classes:)``,
    ///   ``FineTuneError/formatLimit(limit:value:maximum:)``.
    public func tunedBlobBytes(classNames: UnsafeRawBufferPointer? = nil) throws(SprigError) -> Int {
        try tunedLayout(classNames: classNames).sections.fileBytes
    }

    /// Writes the tuned blob into `buffer` (16-byte aligned, at least
    /// ``tunedBlobBytes(classNames:)`` long) and returns its length.
    ///
    /// The same model, shots and options always give the same bytes.
    /// - Throws: the errors of ``tunedBlobBytes(classNames:)``;
    ///   ``FineTuneError/bufferTooSmall(need:have:)``; ``SprigError/bufferMisaligned(address:)``.
    ///   Nothing is written when one of these is thrown.
    /// - Complexity: O(blob bytes + tensors × ops); no allocation.
    public func writeTunedBlob(into buffer: UnsafeMutableRawBufferPointer,
                               classNames: UnsafeRawBufferPointer? = nil) throws(SprigError) -> Int {
        let t = try tunedLayout(classNames: classNames)
        let fileBytes = t.sections.fileBytes
        guard buffer.count >= fileBytes, let out = buffer.baseAddress else {
            throw .fineTune(.bufferTooSmall(need: fileBytes, have: buffer.count))
        }
        let address = Int(bitPattern: out)
        guard address & (BlobLayout.alignment - 1) == 0 else { throw .bufferMisaligned(address: address) }
        var emitter = BlobEmitter(into: buffer, sections: t.sections)
        emitTuned(into: &emitter, t, classNames: classNames)
        let file = try emitter.finish()
        _ = try Model(bytes: file)
        return file.count
    }

    /// Every record of the tuned blob, in the order the file holds them; run
    /// by pass 1 on a measuring emitter and by pass 2 on the real one.
    func emitTuned(into e: inout BlobEmitter, _ t: TunedLayout, classNames: UnsafeRawBufferPointer?) {
        guard let layout else { return }
        let remap = int32s(layout.remap)
        let d = head.featureCount, c = classCount
        e.header(arenaBytes: t.arenaBytes,
                 finetune: FineTunePlan(arenaBytes: t.planBytes, maxClasses: plan.maxClasses, maxShots: plan.maxShots,
                                        augmentation: plan.augmentation, maxLayers: plan.maxLayers))

        // Kept tensors: the record as it was, its name, data and quantization placed anew.
        // After `bias` or `last`, trained constants come from the arena.
        for old in 0..<model.tensorCount where remap[TunedLayout.stride * old] >= 0 {
            let info = model.tensor(old)
            var placed = info
            let name = e.string(model.name(info))
            placed.nameOffset = info.nameBytes > 0 ? name : 0
            if info.storage == .constant {
                let trained = segment == nil ? -1 : Int(int32s(layout.slots)[4 * old + 2])
                placed.dataOffset = e.constant(trained >= 0
                    ? UnsafeRawBufferPointer(start: base + layout.parameters.offset + trained, count: info.dataBytes)
                    : model.constantBytes(info))
            }
            if info.quantCount > 0 {
                placed.quantOffset = e.quantTable(count: info.quantCount)
                for q in 0..<info.quantCount { e.quantRecord(table: placed.quantOffset, channel: q, model.quant(info, q)) }
            }
            e.tensor(Int(remap[TunedLayout.stride * old]), placed)
        }
        // New tensors.
        if t.featuresF32 >= 0 { newTensor(&e, t.featuresF32, d, 0, arena: t.featuresF32At, constant: nil, "features.f32") }
        newTensor(&e, t.featuresL2, d, 0, arena: t.featuresL2At, constant: nil, "features.l2")
        newTensor(&e, t.weight, c, d, arena: 0, constant: UnsafeRawBufferPointer(start: floats(layout.weights), count: 4 * c * d),
                  "head.weight")
        newTensor(&e, t.bias, c, 0, arena: 0, constant: UnsafeRawBufferPointer(start: floats(layout.bias), count: 4 * c),
                  "head.bias")
        newTensor(&e, t.logits, c, 0, arena: t.logitsAt, constant: nil, "head.logits")
        if t.probs >= 0 { newTensor(&e, t.probs, c, 0, arena: t.probsAt, constant: nil, "head.probs") }

        // Backbone ops, tensor indices renumbered.
        for o in 0..<head.firstOp {
            let op = model.op(o)
            e.op(o, OpInfo(opcode: op.opcode, activation: op.activation, inputCount: op.inputCount,
                           inputs: (renumbered(op.inputs.0, remap), renumbered(op.inputs.1, remap),
                                    renumbered(op.inputs.2, remap), renumbered(op.inputs.3, remap),
                                    renumbered(op.inputs.4, remap), renumbered(op.inputs.5, remap)),
                           output: renumbered(op.output, remap), params: op.params))
        }
        // Head ops.
        let feature = renumbered(head.featureTensor, remap)
        var o = head.firstOp
        if t.featuresF32 >= 0 {
            headOp(&e, &o, .dequantize, (feature, -1, -1), t.featuresF32)
            headOp(&e, &o, .l2Normalize, (t.featuresF32, -1, -1), t.featuresL2)
        } else {
            headOp(&e, &o, .l2Normalize, (feature, -1, -1), t.featuresL2)
        }
        headOp(&e, &o, .dense, (t.featuresL2, t.weight, t.bias), t.logits)
        if t.probs >= 0 { headOp(&e, &o, .softmax, (t.logits, -1, -1), t.probs) }

        // IO: the original input, renumbered; the new output.
        for i in 0..<model.ioCount where model.io(i).role == 0 {
            let input = model.io(i)
            e.io(0, role: 0, tensor: renumbered(input.tensor, remap), mean: input.mean, std: input.std)
        }
        e.io(1, role: 1, tensor: t.probs >= 0 ? t.probs : t.logits, mean: 0, std: 1)

        // Metadata, in the order of tunedMetadataCount.
        for m in 0..<t.metadataCount {
            let (key, value) = tunedMetadata(m, classNames: classNames)
            e.metadata(m, key: key, value: value)
        }
    }

    /// A new f32 tensor `[d0]` or `[d0][d1]`: an activation at `arena`, or a
    /// constant whose bytes are placed in DATA.
    private func newTensor(_ e: inout BlobEmitter, _ index: Int, _ d0: Int, _ d1: Int, arena: Int,
                           constant: UnsafeRawBufferPointer?, _ label: StaticString) {
        let name = e.string(staticBytes(label))
        var offset = arena
        if let constant { offset = e.constant(constant) }
        e.tensor(index, TensorInfo(dtype: .f32, rank: d1 > 0 ? 2 : 1, storage: constant == nil ? .arena : .constant,
                                   dims: (d0, d1, 0, 0), dataOffset: offset, dataBytes: 4 * d0 * max(d1, 1),
                                   quantCount: 0, quantAxis: 0, quantOffset: 0, nameOffset: name,
                                   nameBytes: label.utf8CodeUnitCount))
    }

    /// Op `o` of the new head (up to three inputs, no activation, no params); advances `o`.
    private func headOp(_ e: inout BlobEmitter, _ o: inout Int, _ opcode: Opcode, _ inputs: (Int, Int, Int), _ output: Int) {
        let count = inputs.2 >= 0 ? 3 : inputs.1 >= 0 ? 2 : 1
        e.op(o, OpInfo(opcode: opcode, activation: .none, inputCount: count,
                       inputs: (inputs.0, inputs.1, inputs.2, -1, -1, -1), output: output, params: (0, 0, 0, 0, 0, 0, 0, 0)))
        o += 1
    }

    // MARK: Pass 1: sizes and the renumbering table

    /// The tuned blob's sections, counts, new tensors and arena (offsets
    /// absolute in the file, or in the arena for activations).
    struct TunedLayout {
        /// Int32s per tensor in the renumbering table: the first is the new
        /// index (-1: dropped); the entry keeps the 16 bytes the plan reserves
        /// (FineTuneLayout.remapEntryBytes), which sizes every plan.
        static let stride = FineTuneLayout.remapEntryBytes / 4
        var sections = BlobSections()
        var tensorCount = 0, opCount = 0, metadataCount = 0
        /// Inference arena of the tuned blob, and its fine-tuning plan bytes.
        var arenaBytes = 0, planBytes = 0
        /// New tensor indices (-1: absent) and their arena offsets.
        var featuresF32 = -1, featuresL2 = -1, weight = -1, bias = -1, logits = -1, probs = -1
        var featuresF32At = 0, featuresL2At = 0, logitsAt = 0, probsAt = 0
    }

    /// Sizes the tuned blob and fills the renumbering table (in the arena's
    /// scratch): per original tensor, its new index, or -1 when dropped.
    func tunedLayout(classNames: UnsafeRawBufferPointer?) throws(SprigError) -> TunedLayout {
        guard let layout else { throw .fineTune(.notTuned) }
        if let names = classNames, names.count > 0 {
            var count = 1
            for byte in names where byte == UInt8(ascii: ",") { count += 1 }
            guard count == classCount else { throw .fineTune(.classNamesMismatch(names: count, classes: classCount)) }
        }
        let d = head.featureCount, c = classCount
        let remap = int32s(layout.remap)
        let stride = TunedLayout.stride
        var t = TunedLayout()

        // Which tensors stay: the input, the features, and all the backbone touches.
        for i in 0..<model.tensorCount { remap[stride * i] = -1 }
        if let input = model.input(0) { remap[stride * input.tensor] = 0 }
        remap[stride * head.featureTensor] = 0
        for o in 0..<head.firstOp {
            let op = model.op(o)
            for s in 0..<op.inputCount where op.input(s) >= 0 { remap[stride * op.input(s)] = 0 }
            remap[stride * op.output] = 0
        }
        // Renumber in the original order; the kept activations keep their arena offsets.
        var kept = 0, arenaEnd = 0
        for i in 0..<model.tensorCount where remap[stride * i] >= 0 {
            remap[stride * i] = Int32(truncatingIfNeeded: kept)
            kept += 1
            let info = model.tensor(i)
            if info.storage == .arena { arenaEnd = max(arenaEnd, info.dataOffset + info.dataBytes) }
        }
        // New tensors, and the new activations' places after the kept ones.
        var next = kept
        var arena = RegionCursor(cursor: roundUp(arenaEnd, BlobLayout.alignment))
        if head.quantizedFeatures {
            t.featuresF32 = advance(&next, by: 1)
            t.featuresF32At = arena.take(4 * d).offset
        }
        t.featuresL2 = advance(&next, by: 1)
        t.featuresL2At = arena.take(4 * d).offset
        t.weight = advance(&next, by: 1)
        t.bias = advance(&next, by: 1)
        t.logits = advance(&next, by: 1)
        t.logitsAt = arena.take(4 * c).offset
        if head.softmax {
            t.probs = advance(&next, by: 1)
            t.probsAt = arena.take(4 * c).offset
        }
        t.tensorCount = next
        t.opCount = head.firstOp + (head.quantizedFeatures ? 3 : 2) + (head.softmax ? 1 : 0)
        t.arenaBytes = arena.cursor
        t.metadataCount = tunedMetadataCount(classNames: classNames)
        guard t.tensorCount <= BlobLayout.maxTensors else {
            throw .fineTune(.formatLimit(limit: .tensors, value: t.tensorCount, maximum: BlobLayout.maxTensors))
        }
        guard t.opCount <= BlobLayout.maxOps else {
            throw .fineTune(.formatLimit(limit: .ops, value: t.opCount, maximum: BlobLayout.maxOps))
        }
        // STRINGS and DATA as the writer will place them, then the sections.
        var measure = BlobEmitter.measuring()
        emitTuned(into: &measure, t, classNames: classNames)
        let limit = maxU32AsInt
        guard let sections = BlobSections(tensorCount: t.tensorCount, opCount: t.opCount, ioCount: 2,
                                          metadataCount: t.metadataCount, stringsBytes: measure.stringsBytes,
                                          dataBytes: measure.dataBytes) else {
            throw .fineTune(.formatLimit(limit: .fileBytes, value: Int.max, maximum: limit))
        }
        guard sections.fileBytes <= limit else {
            throw .fineTune(.formatLimit(limit: .fileBytes, value: sections.fileBytes, maximum: limit))
        }
        t.sections = sections
        // The tuned plan: the same classes and shots; its bytes follow the
        // inference arena and the per-tensor tables (see FineTuneLayout): the
        // renumbering table, and for `bias`/`last` the slot table too, so more
        // tensors grow the plan by both, fewer shrink it by the first only.
        let moreTensors = t.tensorCount - model.tensorCount
        t.planBytes = plan.arenaBytes + (t.arenaBytes - model.arenaBytes)
            + FineTuneLayout.remapEntryBytes * moreTensors
            + (moreTensors > 0 ? FineTuneLayout.slotEntryBytes * moreTensors : 0)
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

private func staticBytes(_ s: StaticString) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)
}

/// Tensor `index` of the original blob under its new number (-1 stays -1: an absent slot).
@inline(__always)
private func renumbered(_ index: Int, _ remap: UnsafeMutablePointer<Int32>) -> Int {
    index < 0 ? -1 : Int(remap[FineTuner.TunedLayout.stride * index])
}
