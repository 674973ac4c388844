// `sprig inspect`: everything a blob holds, for people and for scripts.

import Foundation
import SprigRuntime
import SprigTrain

let inspectCommand = Command(
    name: "inspect",
    summary: "Show a .sprig blob: ops, shapes, dtypes, quantization, arena map, sizes, CRC.",
    usage: "sprig inspect MODEL.sprig [--json]",
    positionals: 1...1,
    options: [OptionSpec(name: "json", value: nil, help: "Print one JSON object.")],
    run: runInspect)

/// A blob held in an aligned buffer for as long as the value lives.
/// A zeroed, 16-byte aligned arena of `bytes` for the blob at `path`, or a `CommandError`
/// naming `field` when memory runs out (`allocate` would trap on a blob that plans 4 GiB).
/// Release it with `free(arena.baseAddress)`.
func allocateArena(_ bytes: Int, path: String, field: String) throws -> UnsafeMutableRawBufferPointer {
    var start: UnsafeMutableRawPointer? = nil
    guard posix_memalign(&start, 16, max(bytes, 16)) == 0, let start else {
        throw CommandError(description: "\(path): \(field): is \(bytes), more memory than can be allocated")
    }
    let arena = UnsafeMutableRawBufferPointer(start: start, count: max(bytes, 16))
    arena.initializeMemory(as: UInt8.self, repeating: 0)
    return arena
}

final class BlobFile {
    let path: String
    let buffer: UnsafeMutableRawBufferPointer
    let model: Model

    init(_ path: String) throws {
        self.path = path
        let data = try readFileBytes(atPath: path)
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(data.count, 1), alignment: 16)
        buffer.copyBytes(from: data)
        do {
            model = try Model(bytes: UnsafeRawBufferPointer(rebasing: buffer[0..<data.count]))
        } catch {
            buffer.deallocate()
            throw CommandError(description: "\(path): \(error.message)")
        }
    }

    deinit { buffer.deallocate() }

    func name(_ t: Int) -> String { String(decoding: model.name(model.tensor(t)), as: UTF8.self) }

    func metadata(_ key: StaticString) -> String {
        model.metadata(key: key).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}

func shapeString(_ t: TensorInfo) -> String {
    "[" + (0..<t.rank).map { String(t.dim($0)) }.joined(separator: ",") + "]"
}

func quantString(_ m: Model, _ t: TensorInfo) -> String {
    switch t.quantCount {
    case 0: return "-"
    case 1:
        let q = m.quant(t, 0)
        return String(format: "s=%.6g z=%d", q.scale, q.zeroPoint)
    default:
        let scales = (0..<t.quantCount).map { m.quant(t, $0).scale }
        return String(format: "%d ch, s in [%.3g, %.3g]", t.quantCount, scales.min() ?? 0, scales.max() ?? 0)
    }
}

func runInspect(_ a: ParsedArguments) throws {
    let blob = try BlobFile(a.positional[0])
    let m = blob.model
    if a.flag("json") {
        var o = JSONObject()
        o.set("file", blob.path)
        o.set("name", blob.metadata("name"))
        o.set("precision", blob.metadata("precision"))
        o.set("labels", blob.metadata("labels"))
        o.set("version", BlobLayout.version)
        o.set("crc32", String(format: "%08x", m.crc))
        o.set("crc_ok", true)
        o.set("blob_bytes", m.bytes.count)
        o.set("arena_bytes", m.arenaBytes)
        o.set("finetune_arena_bytes", m.finetuneArenaBytes)
        o.set("finetune_max_classes", m.finetuneMaxClasses)
        o.set("finetune_max_shots", m.finetuneMaxShots)
        o.set("params", m.parameterCount)
        o.set("macs", Int(clamping: m.work.macs))
        o.set("element_ops", Int(clamping: m.work.elementOps))
        var ops: [String] = []
        for i in 0..<m.opCount {
            let op = m.op(i)
            var e = JSONObject()
            e.set("index", i)
            e.set("op", op.opcode.name.description)
            e.set("activation", op.activation.name.description)
            e.set("inputs", raw: "[" + (0..<op.inputCount).map { String(op.input($0)) }.joined(separator: ",") + "]")
            e.set("output", op.output)
            e.set("macs", Int(clamping: m.work(ofOp: i).macs))
            e.set("element_ops", Int(clamping: m.work(ofOp: i).elementOps))
            ops.append(e.text)
        }
        o.set("ops", raw: "[" + ops.joined(separator: ",") + "]")
        var tensors: [String] = []
        for t in 0..<m.tensorCount {
            let info = m.tensor(t)
            var e = JSONObject()
            e.set("index", t)
            e.set("name", blob.name(t))
            e.set("dtype", info.dtype.name.description)
            e.set("shape", raw: shapeString(info))
            e.set("storage", info.storage == .arena ? "arena" : "constant")
            e.set("offset", info.dataOffset)
            e.set("bytes", info.dataBytes)
            if info.quantCount > 0 {
                let qs = (0..<info.quantCount).map { m.quant(info, $0) }
                e.set("scales", raw: "[" + qs.map { "\($0.scale)" }.joined(separator: ",") + "]")
                e.set("zero_points", raw: "[" + qs.map { "\($0.zeroPoint)" }.joined(separator: ",") + "]")
            }
            tensors.append(e.text)
        }
        o.set("tensors", raw: "[" + tensors.joined(separator: ",") + "]")
        print(o.text)
        return
    }
    var s = "\(blob.path): \(bytesText(m.bytes.count)), version \(BlobLayout.version), CRC \(String(format: "%08x", m.crc)) ok\n"
    for (k, v) in [("name", blob.metadata("name")), ("precision", blob.metadata("precision")), ("labels", blob.metadata("labels"))] where !v.isEmpty {
        s += "\(k): \(v)\n"
    }
    s += "params: \(m.parameterCount)\n"
    s += "work: \(m.work.macs) MACs and \(m.work.elementOps) other element ops per invoke (exact)\n"
    s += "arena: \(bytesText(m.arenaBytes)) for inference"
    s += m.finetuneArenaBytes > 0 ? ", \(bytesText(m.finetuneArenaBytes)) for fine-tuning (\(m.finetuneMaxClasses) classes × \(m.finetuneMaxShots) shots)\n" : "\n"
    s += "\nops:\n"
    s += "  " + right("#", 3) + "  " + left("op", 18) + left("act", 6) + left("dtype", 6) + left("output shape", 16) + right("MACs", 10) + "  output quantization\n"
    for i in 0..<m.opCount {
        let op = m.op(i)
        let y = m.tensor(op.output)
        s += "  " + right("\(i)", 3) + "  " + left(op.opcode.name.description, 18) + left(op.activation.name.description, 6)
            + left(m.tensor(op.inputs.0).dtype.name.description, 6) + left(shapeString(y), 16)
            + right("\(m.work(ofOp: i).macs)", 10) + "  " + quantString(m, y) + "\n"
    }
    s += "\ntensors:\n"
    for t in 0..<m.tensorCount {
        let info = m.tensor(t)
        let place = info.storage == .arena ? "arena" : "blob "
        s += "  " + right("\(t)", 3) + "  " + left(blob.name(t), 26) + left(info.dtype.name.description, 5)
            + left(shapeString(info), 16) + place + right("\(info.dataOffset)", 9) + " +" + left("\(info.dataBytes)", 8)
            + quantString(m, info) + "\n"
    }
    // The arena map: each activation's byte range, sorted by offset.
    s += "\narena map (\(m.arenaBytes) bytes):\n"
    let activations = (0..<m.tensorCount).filter { m.tensor($0).storage == .arena }
        .sorted { m.tensor($0).dataOffset < m.tensor($1).dataOffset }
    for t in activations {
        let info = m.tensor(t)
        let width = 40
        let start = m.arenaBytes > 0 ? info.dataOffset * width / m.arenaBytes : 0
        let end = m.arenaBytes > 0 ? max(start + 1, (info.dataOffset + info.dataBytes) * width / m.arenaBytes) : 1
        let bar = String(repeating: " ", count: start) + String(repeating: "█", count: min(width, end) - start)
        s += "  " + left(blob.name(t), 26) + "[" + right("\(info.dataOffset)", 7) + ", "
            + right("\(info.dataOffset + info.dataBytes)", 7) + ") |" + left(bar, width) + "|\n"
    }
    print(s, terminator: "")
}

/// `s` padded with spaces on the right to `width`.
func left(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}

/// `s` padded with spaces on the left to `width`.
func right(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
}
