// `sprig compare`: two blobs of one network (an f32 blob and its int8 twin, or a blob
// before and after a change) on the same test images: how often their argmaxes agree,
// and, tensor by tensor, how much signal survives in the second (its SQNR against the
// first). The per-tensor table says where an int8 blob loses its accuracy.

import Foundation
import SprigRuntime
import SprigTrain

let compareCommand = Command(
    name: "compare",
    summary: "Run two blobs of one network (e.g. f32 and q8) on the same images: argmax agreement, and each tensor's SQNR.",
    usage: "sprig compare REFERENCE.sprig OTHER.sprig [--data SOURCE] [--classes SPEC] [--limit N] [--json]",
    positionals: 2...2,
    options: [
        OptionSpec(name: "data", value: "SOURCE", help: dataSourceHelp, defaultValue: "the data REFERENCE records, else builtin"),
        OptionSpec(name: "classes", value: "SPEC", help: "Classes of the test split, in the models' output order (e.g. 0-4).",
                   defaultValue: "0..outputs-1"),
        OptionSpec(name: "limit", value: "N", help: "Use at most N test images (0 = all).", defaultValue: "0"),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object (agreement, accuracies, tensors; an SQNR is null where the two are equal)."),
    ],
    details: """
        Tensors are matched by name (the int8 twin of a tensor keeps its f32 name); an int8 tensor is \
        dequantized with its scale and zero point before it is compared. SQNR is 10·log10(Σx² / Σ(x − y)²) \
        in dB over all images, x the reference's values and y the other's: 40 dB is an error of 1% of the \
        signal's RMS, 20 dB of 10%. A tensor whose SQNR drops sharply from the one before it is where \
        precision is lost.
        """,
    run: runCompare)

/// One blob, its arena and interpreter, and a reader of any arena tensor as Float.
private final class BlobRunner {
    let blob: BlobFile
    let arena: UnsafeMutableRawBufferPointer
    let interpreter: Interpreter

    init(_ path: String) throws {
        blob = try BlobFile(path)
        arena = try allocateArena(blob.model.arenaBytes, path: path, field: "arena_bytes")
        do {
            interpreter = try Interpreter(model: blob.model, arena: arena)
        } catch let e as SprigError {
            free(arena.baseAddress)
            throw CommandError(description: "\(path): \(e.message)")
        }
    }

    deinit { free(arena.baseAddress) }

    /// The values of arena tensor `t` as Float: f32 as they are, int8 dequantized.
    func values(_ t: Int) -> [Float] {
        let info = blob.model.tensor(t)
        let raw = interpreter.bytes(of: t)
        switch info.dtype {
        case .f32:
            return Array(raw.bindMemory(to: Float.self))
        case .i8 where info.quantCount == 1:
            let q = blob.model.quant(info, 0)
            return raw.bindMemory(to: Int8.self).map { q.scale * Float(Int32($0) - q.zeroPoint) }
        default:
            return []
        }
    }
}

/// Signal and error energy of one tensor over the images seen so far.
private struct Energy {
    var signal = 0.0, error = 0.0, maxAbsError = 0.0

    mutating func add(reference x: [Float], other y: [Float]) {
        for i in 0..<min(x.count, y.count) {
            let d = Double(x[i]) - Double(y[i])
            signal += Double(x[i]) * Double(x[i])
            error += d * d
            maxAbsError = max(maxAbsError, abs(d))
        }
    }

    /// In dB; infinite when the two are equal.
    var sqnr: Double { error > 0 ? 10 * log10(max(signal, .leastNormalMagnitude) / error) : .infinity }
}

func runCompare(_ a: ParsedArguments) throws {
    let reference = try BlobRunner(a.positional[0]), other = try BlobRunner(a.positional[1])
    let rm = reference.blob.model, om = other.blob.model
    let outputs = rm.tensor(rm.output(0) ?? 0).elementCount
    guard rm.tensor(rm.input(0)?.tensor ?? 0).elementCount == om.tensor(om.input(0)?.tensor ?? 0).elementCount,
          om.tensor(om.output(0) ?? 0).elementCount == outputs else {
        throw CommandError(description: "\(other.blob.path): its input or output shape differs from \(reference.blob.path)'s: "
                           + "\(shapeString(om.tensor(om.input(0)?.tensor ?? 0))) → \(shapeString(om.tensor(om.output(0) ?? 0))) against "
                           + "\(shapeString(rm.tensor(rm.input(0)?.tensor ?? 0))) → \(shapeString(rm.tensor(rm.output(0) ?? 0)))")
    }
    let (source, splits) = try loadDataForModel(a, recorded: reference.blob.dataRecord, input: nil, command: "compare",
                                                model: reference.blob.path, quiet: a.flag("json"))
    let test = splits.test
    let classes = try ClassSelection.parse(a.string("classes") ?? "0-\(outputs - 1)", present: test.labelsPresent)
    guard classes.count <= outputs else {
        throw UsageError(description: "--classes: \(classes.count) classes but \(reference.blob.path) has \(outputs) outputs")
    }
    var data = try test.filtered(classes: classes)
    let limit = try a.int("limit", default: 0, range: 0...10_000_000)
    if limit > 0 && limit < data.count { data = data.subset(Array(0..<limit)) }
    guard data.count > 0 else { throw CommandError(description: "data \(source): no test images of classes \(classes)") }
    guard data.valuesPerImage == reference.interpreter.inputInfo.elementCount else {
        throw CommandError(description: "\(reference.blob.path): input has \(reference.interpreter.inputInfo.elementCount) elements, the images are \(shapeText(data.shape))")
    }

    // The reference's op outputs, in order, that the other blob has under the same name and size.
    var byName: [String: Int] = [:]
    for o in 0..<om.opCount {
        let t = om.op(o).output
        byName[other.blob.name(t)] = t
    }
    var pairs: [(name: String, reference: Int, other: Int, op: String)] = []
    for o in 0..<rm.opCount {
        let t = rm.op(o).output
        let name = reference.blob.name(t)
        guard let u = byName[name], om.tensor(u).elementCount == rm.tensor(t).elementCount,
              om.tensor(u).dtype == .f32 || om.tensor(u).quantCount == 1 else { continue }
        pairs.append((name, t, u, rm.op(o).opcode.name.description))
    }
    var energy = [Energy](repeating: Energy(), count: pairs.count)
    var outputEnergy = Energy()
    var agree = 0, referenceCorrect = 0, otherCorrect = 0
    let bar = a.flag("json") ? nil : ProgressBar("compare", total: data.count, unit: "img")
    for i in 0..<data.count {
        let image = Array(data.image(i))
        for runner in [reference, other] {
            try image.withUnsafeBytes { (p) throws in
                do { try runner.interpreter.setInput(pixels: p) } catch let e as SprigError {
                    throw CommandError(description: "\(runner.blob.path): test image \(i): \(e.message)")
                }
            }
        }
        // Each tensor is read as soon as its op has run: a later op may reuse its arena bytes.
        var seen: [Int: [Float]] = [:]
        let wanted = Set(pairs.map(\.reference))
        reference.interpreter.invoke { o in
            let t = rm.op(o).output
            if wanted.contains(t) { seen[t] = reference.values(t) }
        }
        let index = Dictionary(pairs.enumerated().map { ($1.other, $0) }, uniquingKeysWith: { a, _ in a })
        other.interpreter.invoke { o in
            let u = om.op(o).output
            if let k = index[u], let x = seen[pairs[k].reference] { energy[k].add(reference: x, other: other.values(u)) }
        }
        outputEnergy.add(reference: (0..<outputs).map { reference.interpreter.output($0) },
                         other: (0..<outputs).map { other.interpreter.output($0) })
        let r = reference.interpreter.argmax(), s = other.interpreter.argmax()
        if r == s { agree += 1 }
        if r == Int(data.labels[i]) { referenceCorrect += 1 }
        if s == Int(data.labels[i]) { otherCorrect += 1 }
        if i % 64 == 0 || i == data.count - 1 { bar?.update(i + 1, status: String(format: "agree %.3f", Double(agree) / Double(i + 1))) }
    }
    let n = Double(data.count)
    func dB(_ x: Double) -> String { x.isInfinite ? "exact" : String(format: "%.1f dB", x) }
    if a.flag("json") {
        var o = JSONObject()
        o.set("reference", reference.blob.path)
        o.set("other", other.blob.path)
        o.set("count", data.count)
        o.set("agreement", Double(agree) / n)
        o.set("agreeing", agree)
        o.set("reference_accuracy", Double(referenceCorrect) / n)
        o.set("other_accuracy", Double(otherCorrect) / n)
        func setDB(_ o: inout JSONObject, _ key: String, _ x: Double) {
            if x.isInfinite { o.set(key, raw: "null") } else { o.set(key, x) }
        }
        setDB(&o, "output_sqnr_db", outputEnergy.sqnr)
        o.set("output_max_abs_error", outputEnergy.maxAbsError)
        var rows: [String] = []
        for (k, p) in pairs.enumerated() {
            var e = JSONObject()
            e.set("name", p.name)
            e.set("op", p.op)
            setDB(&e, "sqnr_db", energy[k].sqnr)
            e.set("max_abs_error", energy[k].maxAbsError)
            rows.append(e.text)
        }
        o.set("tensors", raw: "[" + rows.joined(separator: ",") + "]")
        print(o.text)
    } else {
        print("\(other.blob.path) against \(reference.blob.path), \(data.count) test images of classes \(classes.map(String.init).joined(separator: ",")) of \(source):")
        print("  tensor                          op                 SQNR      max |error|")
        for (k, p) in pairs.enumerated() {
            print("  " + p.name.padding(toLength: 32, withPad: " ", startingAt: 0) + p.op.padding(toLength: 18, withPad: " ", startingAt: 0)
                  + dB(energy[k].sqnr).padding(toLength: 10, withPad: " ", startingAt: 0) + String(format: "%.4g", energy[k].maxAbsError))
        }
        print("  " + "output".padding(toLength: 50, withPad: " ", startingAt: 0) + dB(outputEnergy.sqnr).padding(toLength: 10, withPad: " ", startingAt: 0)
              + String(format: "%.4g", outputEnergy.maxAbsError))
        print(String(format: "argmax agreement %.2f%% (%d/%d); accuracy %.2f%% reference, %.2f%% other",
                     Double(agree) / n * 100, agree, data.count, Double(referenceCorrect) / n * 100, Double(otherCorrect) / n * 100))
    }
}
