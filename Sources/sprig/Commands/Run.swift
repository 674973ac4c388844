// `sprig run`: accuracy and latency of a blob through SprigRuntime on the host.

import Foundation
import SprigRuntime
import SprigTrain

let runCommand = Command(
    name: "run",
    summary: "Accuracy and batch-1 latency of a .sprig blob on test images, through the device runtime.",
    usage: "sprig run MODEL.sprig [--data SOURCE] [--classes SPEC] [--limit N] [--json]",
    positionals: 1...1,
    options: [
        OptionSpec(name: "data", value: "SOURCE", help: dataSourceHelp, defaultValue: "the data the blob records, else builtin"),
        OptionSpec(name: "classes", value: "SPEC", help: "Classes of the test split, in the model's output order (e.g. 0-4).",
                   defaultValue: "0..outputs-1"),
        OptionSpec(name: "limit", value: "N", help: "Use at most N test images (0 = all).", defaultValue: "0"),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object (accuracy, latency_seconds_median, …)."),
    ],
    details: "Class c of --classes is expected at output c. Latency is the median over every image (set input + invoke).",
    run: runRun)

func runRun(_ a: ParsedArguments) throws {
    let blob = try BlobFile(a.positional[0])
    let outputs = blob.model.tensor(blob.model.output(0) ?? 0).elementCount
    let (source, splits) = try loadDataForModel(a, recorded: blob.dataRecord, input: nil, command: "run", model: blob.path,
                                                quiet: a.flag("json"))
    let test = splits.test
    let classes = try ClassSelection.parse(a.string("classes") ?? "0-\(outputs - 1)", present: test.labelsPresent)
    guard classes.count <= outputs else {
        throw UsageError(description: "--classes: \(classes.count) classes but \(blob.path) has \(outputs) outputs")
    }
    var data = try test.filtered(classes: classes)
    let limit = try a.int("limit", default: 0, range: 0...10_000_000)
    if limit > 0 && limit < data.count { data = data.subset(Array(0..<limit)) }
    guard data.count > 0 else { throw CommandError(description: "data \(source): no test images of classes \(classes)") }
    let (correct, latencies) = try measureBlob(blob, on: data, progress: a.flag("json") ? nil : ProgressBar("run", total: data.count, unit: "img"))
    var times = latencies
    times.sort()
    let median = times[times.count / 2]
    let accuracy = Double(correct) / Double(data.count)
    if a.flag("json") {
        var o = JSONObject()
        o.set("file", blob.path)
        o.set("accuracy", accuracy)
        o.set("correct", correct)
        o.set("count", data.count)
        o.set("latency_seconds_median", median)
        o.set("latency_seconds_min", times[0])
        o.set("latency_seconds_max", times[times.count - 1])
        o.set("blob_bytes", blob.model.bytes.count)
        o.set("arena_bytes", blob.model.arenaBytes)
        print(o.text)
    } else {
        print(String(format: "%@: accuracy %.2f%% (%d/%d) on classes %@ of %@; latency median %.1f us (min %.1f, max %.1f); arena %d bytes",
                     blob.path, accuracy * 100, correct, data.count, classes.map(String.init).joined(separator: ","),
                     "\(source)", median * 1e6, times[0] * 1e6, times[times.count - 1] * 1e6, blob.model.arenaBytes))
    }
}

/// Runs every image of `data` through the blob, one at a time: how many argmaxes equal the
/// label, and each image's wall time (setInput + invoke).
func measureBlob(_ blob: BlobFile, on data: Dataset, progress bar: ProgressBar?) throws -> (correct: Int, latencies: [Double]) {
    let arena = try allocateArena(blob.model.arenaBytes, path: blob.path, field: "arena_bytes")
    defer { free(arena.baseAddress) }
    let interpreter: Interpreter
    do {
        interpreter = try Interpreter(model: blob.model, arena: arena)
    } catch let e as SprigError {
        throw CommandError(description: "\(blob.path): \(e.message)")
    }
    guard data.valuesPerImage == interpreter.inputInfo.elementCount else {
        throw CommandError(description: "\(blob.path): input has \(interpreter.inputInfo.elementCount) elements, the images are \(shapeText(data.shape))")
    }
    var correct = 0
    var times = [Double](repeating: 0, count: data.count)
    for i in 0..<data.count {
        let image = Array(data.image(i))
        let t0 = DispatchTime.now().uptimeNanoseconds
        try image.withUnsafeBytes { try interpreter.setInput(pixels: $0) }
        interpreter.invoke()
        times[i] = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        if interpreter.argmax() == Int(data.labels[i]) { correct += 1 }
        if i % 64 == 0 || i == data.count - 1 { bar?.update(i + 1, status: String(format: "acc %.3f", Double(correct) / Double(i + 1))) }
    }
    return (correct, times)
}
