// `sprig import`: an ONNX model (from torch.onnx.export) → a Sprig checkpoint in
// the network description, for prune, compile and finetune
// (SprigTrain/Import/ONNXImport.swift, docs/onnx-import.md).

import Foundation
import SprigTrain

let importCommand = Command(
    name: "import",
    summary: "Import an ONNX model (torch.onnx.export, opset 13+) as a Sprig checkpoint.",
    usage: "sprig import MODEL.onnx [--mean M[,M,M]] [--std S[,S,S]] [--names a,b,c] --out CKPT.safetensors [--json]",
    positionals: 1...1,
    options: [
        OptionSpec(name: "mean", value: "LIST", help: "The normalisation the model expects, x = (pixel/255 − mean) / std: one value or one per channel, "
            + "on the [0, 1] scale of torchvision's ToTensor (e.g. 0.485,0.456,0.406).", defaultValue: "0"),
        OptionSpec(name: "std", value: "LIST", help: "Its standard deviations, as many as --mean (e.g. 0.229,0.224,0.225).", defaultValue: "1"),
        OptionSpec(name: "names", value: "LIST", help: "Class names of the outputs, comma-separated, one per output.", defaultValue: "none (indices)"),
        OptionSpec(name: "out", value: "PATH", help: "The checkpoint to write (atomically)."),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object (file, opset, nodes, layers, params, macs, input, classes)."),
    ],
    details: "Supported ops: Conv (with group = channels: depthwise), BatchNormalization, Relu, Clip(0, 6) as ReLU6, MaxPool, "
        + "AveragePool, GlobalAveragePool, Flatten, Reshape to [N, -1], Gemm, MatMul + Add, Add (residual), Identity, Dropout. "
        + "See docs/onnx-import.md.\n",
    run: runImport)

func runImport(_ a: ParsedArguments) throws {
    guard let out = a.string("out") else { throw UsageError(description: "--out CKPT.safetensors is required") }
    let path = a.positional[0]
    func floats(_ name: String, _ text: String) throws -> [Float] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        return try items.map { item in
            guard let v = Float(item), v.isFinite else { throw UsageError(description: "--\(name): '\(item)' is not a number") }
            return v
        }
    }
    let mean = try floats("mean", a.string("mean", default: "0"))
    let std = try floats("std", a.string("std", default: "1"))
    guard mean.count == std.count else {
        throw UsageError(description: "--mean has \(mean.count) values and --std \(std.count); give as many of each (1 or one per channel)")
    }
    if let bad = std.first(where: { $0 < 1e-6 }) { throw UsageError(description: "--std: \(bad) is below 1e-6") }
    let names = a.string("names").map { $0.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) } }
    if let names, names.contains(where: \.isEmpty) { throw UsageError(description: "--names: an empty name in '\(a.string("names")!)'") }

    let bytes: [UInt8]
    do {
        bytes = try readFileBytes(atPath: path, maxBytes: 1 << 31)
    } catch {
        throw CommandError(description: "\(path): cannot be read (\(plainDescription(error)))")
    }
    let imported: ImportedModel
    let network: Sequential
    do {
        imported = try importONNX(bytes, options: ONNXImportOptions(mean: mean, std: std, classNames: names))
        network = try buildImportedNetwork(imported)
    } catch let e as ONNXError {
        throw CommandError(description: "\(path): \(e)")
    }
    let plan = try imported.architecture.plan()
    try saveCheckpoint(network, architecture: imported.architecture, to: out,
                       metadata: ["import": "{\"source\":\(jsonQuote((path as NSString).lastPathComponent)),\"opset\":\(imported.opset),"
                                  + "\"producer\":\(jsonQuote(imported.producer))}"])
    let input = imported.architecture.input
    if a.flag("json") {
        var o = JSONObject()
        o.set("file", out)
        o.set("source", path)
        o.set("opset", Int(imported.opset))
        o.set("producer", imported.producer)
        o.set("nodes", imported.nodeCount)
        o.set("layers", imported.architecture.layers.count)
        o.set("params", plan.parameters)
        o.set("macs", plan.macs)
        o.set("input", raw: "[" + input.shape.map(String.init).joined(separator: ",") + "]")
        o.set("classes", imported.architecture.classes)
        print(o.text)
    } else {
        print("\(out): imported \(path) (opset \(imported.opset), \(imported.nodeCount) nodes\(imported.producer.isEmpty ? "" : ", from \(imported.producer)")): "
            + "input \(shapeText(input.shape)), \(imported.architecture.layers.count) layers + head of \(imported.architecture.classes) classes, "
            + "\(plan.parameters) params, \(plan.macs) MACs; `sprig describe \(out)` lists them")
    }
}
