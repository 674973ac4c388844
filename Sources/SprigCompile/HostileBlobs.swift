// The worst blobs the format's caps allow for each load-time scan, next to a
// plain blob of the same size: what `sprig bench --load` times and what
// LoadCostTests checks (docs/reliability.md, section 4).
//
//   plain          one Dense whose 16 MiB of f32 weights are scanned twice (non-finite, bounds)
//   aliased-data   the same, plus 4,093 records whose data alias the 16 MiB constant
//                  (took 11.5 s to load before; now refused at the first alias)
//   aliased-quant  a 512K-channel quantization table and 4,000 records aliasing it
//                  (took 12.3 s before; now refused at the first alias)
//   shared-weights 1,024 Conv2D ops over 96×96×8 sharing one input and one set of weights
//                  (28.6 s per invoke before; now refused at load)
//   max-records    4,096 tensors and 1,024 ops, the caps: the O(tensors²) and
//                  O(ops² × 36) record comparisons at their largest

import SprigRuntime
import SprigWriter

/// One hostile or plain blob, with what it is.
public struct HostileBlob {
    public var name: String
    public var what: String
    public var bytes: [UInt8]
}

/// The blobs above. `scale` shrinks every size by a power of two (tests use 1/64).
public func hostileBlobs(scaleShift: Int = 0) throws -> [HostileBlob] {
    let big = (4 << 20) >> scaleShift  // f32 elements: 16 MiB at scale 0
    var out: [HostileBlob] = []

    // plain: x[1024] → Dense 1024 → big/1024.
    func plain() -> BlobBuilder {
        var b = BlobBuilder()
        let x = b.addActivation("x", dtype: .f32, shape: [1024])
        b.addInput(x)
        let w = b.addConstant("w", floats: [Float](repeating: 1e-3, count: big), shape: [big / 1024, 1024])
        let y = b.addActivation("y", dtype: .f32, shape: [big / 1024])
        b.addOp(.dense, inputs: [x, w, -1], output: y)
        b.addOutput(y)
        return b
    }
    out.append(HostileBlob(name: "plain", what: "one Dense, \(4 * big) bytes of f32 weights", bytes: try plain().build()))

    // aliased-data: tiny records patched to alias the big constant.
    do {
        var b = plain()
        let aliases = min(4093, BlobLayout.maxTensors - b.tensors.count)
        for i in 0..<aliases { b.addConstant("alias\(i)", floats: [0], shape: [1]) }
        var blob = try b.build()
        let record = { (t: Int) in tensorRecordOffset(blob, t) }
        let at = readLE32(blob, record(1) + TensorField.dataOffset)
        for t in 3..<(3 + aliases) {
            writeLE32(&blob, record(t) + TensorField.dim(0), UInt32(big))
            writeLE32(&blob, record(t) + TensorField.dataOffset, at)
            writeLE32(&blob, record(t) + TensorField.dataBytes, UInt32(4 * big))
        }
        repairCRC(&blob)
        out.append(HostileBlob(name: "aliased-data", what: "\(aliases) records aliasing the \(4 * big)-byte constant",
                               bytes: blob))
    }

    // aliased-quant: one int8 constant with a per-channel table, records aliasing the table.
    do {
        let channels = (512 << 10) >> scaleShift
        var b = quantizeRoundTrip()
        let table = b.addConstant("table", int8s: [Int8](repeating: 1, count: channels), shape: [channels],
                                  quant: [QuantParams](repeating: QuantParams(scale: 1, zeroPoint: 0), count: channels))
        let aliases = 4000
        for i in 0..<aliases { b.addConstant("alias\(i)", int8s: [1], shape: [1], quant: [QuantParams(scale: 1, zeroPoint: 0)]) }
        var blob = try b.build()
        let at = readLE32(blob, tensorRecordOffset(blob, table) + TensorField.quantOffset)
        let dataAt = readLE32(blob, tensorRecordOffset(blob, table) + TensorField.dataOffset)
        for t in (table + 1)...(table + aliases) {
            let r = tensorRecordOffset(blob, t)
            writeLE32(&blob, r + TensorField.dim(0), UInt32(channels))
            writeLE32(&blob, r + TensorField.dataOffset, dataAt)
            writeLE32(&blob, r + TensorField.dataBytes, UInt32(channels))
            writeLE32(&blob, r + TensorField.quantCount, UInt32(channels))
            writeLE32(&blob, r + TensorField.quantOffset, at)
        }
        repairCRC(&blob)
        out.append(HostileBlob(name: "aliased-quant",
                               what: "\(aliases) records aliasing a \(channels)-channel quantization table", bytes: blob))
    }

    // shared-weights: every op reads tensor w (the builder writes it; only the loader refuses it).
    do {
        let side = max(24, 96 >> (scaleShift / 2))
        var b = BlobBuilder()
        let x = b.addActivation("x", dtype: .f32, shape: [side, side, 8])
        b.addInput(x)
        let w = b.addConstant("w", floats: [Float](repeating: 1e-3, count: 16 * 16 * 8 * 8), shape: [16, 16, 8, 8])
        var last = x
        for i in 0..<BlobLayout.maxOps {
            let y = b.addActivation("y\(i)", dtype: .f32, shape: [side - 15, side - 15, 8])
            b.addOp(.conv2d, inputs: [x, w, -1], output: y, params: [1, 1, 0, 0, 0, 0])
            last = y
        }
        b.addOutput(last)
        out.append(HostileBlob(name: "shared-weights",
                               what: "1024 Conv2D 16x16 over \(side)x\(side)x8 sharing one weight tensor",
                               bytes: try b.build(validate: false)))
    }

    // max-records: a chain of 1,024 Dense 1→1 ops and unused constants up to 4,096 tensors.
    do {
        var b = BlobBuilder()
        var v = b.addActivation("x", dtype: .f32, shape: [1])
        b.addInput(v)
        for i in 0..<BlobLayout.maxOps {
            let w = b.addConstant("w\(i)", floats: [0.5], shape: [1, 1])
            let y = b.addActivation("y\(i)", dtype: .f32, shape: [1])
            b.addOp(.dense, inputs: [v, w, -1], output: y)
            v = y
        }
        b.addOutput(v)
        while b.tensors.count < BlobLayout.maxTensors { b.addConstant("pad\(b.tensors.count)", floats: [0], shape: [1]) }
        out.append(HostileBlob(name: "max-records", what: "4096 tensors, 1024 ops", bytes: try b.build()))
    }
    return out
}

/// The smallest int8 graph: x[4] f32 → Quantize (`scale`, zero point 0) →
/// q[4] i8 → Dequantize → y[4] f32.
public func quantizeRoundTrip(scale: Float = 0.01) -> BlobBuilder {
    var b = BlobBuilder()
    let x = b.addActivation("x", dtype: .f32, shape: [4])
    b.addInput(x)
    let q = b.addActivation("q", dtype: .i8, shape: [4], quant: QuantParams(scale: scale, zeroPoint: 0))
    b.addOp(.quantize, inputs: [x], output: q)
    let y = b.addActivation("y", dtype: .f32, shape: [4])
    b.addOp(.dequantize, inputs: [q], output: y)
    b.addOutput(y)
    return b
}

private func sectionOffset(_ blob: [UInt8], kind: UInt32) -> Int {
    let count = Int(readLE32(blob, HeaderField.sectionCount)), table = Int(readLE32(blob, HeaderField.sectionTable))
    for s in 0..<count {
        let e = table + s * BlobLayout.sectionEntryBytes
        if readLE32(blob, e + SectionField.kind) == kind { return Int(readLE32(blob, e + SectionField.offset)) }
    }
    return 0
}

private func tensorRecordOffset(_ blob: [UInt8], _ t: Int) -> Int {
    sectionOffset(blob, kind: SectionKind.tensors.rawValue) + BlobLayout.tensorRecordBytes * t
}

private func readLE32(_ b: [UInt8], _ at: Int) -> UInt32 {
    UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
}

private func writeLE32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
    for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
}

private func repairCRC(_ b: inout [UInt8]) {
    let crc = b.withUnsafeBytes { CRC32.blob($0) }  // the CRC field counts as zero
    writeLE32(&b, HeaderField.crc, crc)
}
