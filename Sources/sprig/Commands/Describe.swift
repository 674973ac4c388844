// The network a command trains (`--model NAME` or `--model-spec FILE.json`), and
// `sprig describe`: every layer with its output shape, params and MACs, and the
// pruning groups.

import Foundation
import SprigPrune
import SprigTrain

let describeCommand = Command(
    name: "describe",
    summary: "Print a network's layers (output shape, params, MACs) and its pruning groups.",
    usage: "sprig describe [CKPT] [--model NAME | --model-spec FILE.json] [--input HxWxC] [--classes N] [--json]",
    positionals: 0...1,
    options: [
        OptionSpec(name: "model", value: "NAME", help: "A preset: " + Architecture.presets.joined(separator: ", ") + ".", defaultValue: "cnn"),
        OptionSpec(name: "model-spec", value: "FILE", help: "A network description (JSON; docs/checkpoint-format.md)."),
        OptionSpec(name: "width", value: "X", help: "Width multiplier of a preset's default widths.", defaultValue: "1.0"),
        OptionSpec(name: "input", value: "HxWxC", help: "Input shape, for a preset or a description without one.", defaultValue: defaultInputText),
        OptionSpec(name: "classes", value: "N", help: "Outputs of the head.", defaultValue: "10"),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object (layers, groups, params, macs)."),
    ],
    run: runDescribe)

/// The description that `--model` / `--model-spec` / `--width` name, for data of `shape` and `classes`.
///
/// - Throws: ``UsageError`` for an unknown preset, and ``CommandError`` naming the file, the
///   field and the value for a description that cannot be read or does not fit the data.
func modelArchitecture(_ a: ParsedArguments, input: InputSpec, classes: [Int]) throws -> Architecture {
    if let path = a.string("model-spec") {
        guard a.string("model") == nil else { throw UsageError(description: "give --model or --model-spec, not both") }
        return try readModelSpec(path, input: input, classes: classes)
    }
    let family = try a.choice("model", default: "cnn", among: Architecture.presets)
    let width = try a.double("width", default: 1, range: 0.01...16)
    let architecture = try Architecture(family: family, classes: classes.count, width: width, sourceClasses: classes, input: input)
    do {
        _ = try architecture.plan()
    } catch {
        throw CommandError(description: "--model \(family) does not fit input \(shapeText(input.shape)): \(error)")
    }
    return architecture
}

/// A user's description: `{"layers": [...]}`, optionally with `"input"` (its shape must be the data's).
func readModelSpec(_ path: String, input: InputSpec, classes: [Int]) throws -> Architecture {
    struct File: Decodable {
        struct Input: Decodable {
            var height: Int
            var width: Int
            var channels: Int
            var mean: [Float]?
            var std: [Float]?
        }
        var input: Input?
        var layers: [LayerSpec]
    }
    let bytes: Data
    do {
        bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
        throw CommandError(description: "\(path): cannot be read (\(plainDescription(error)))")
    }
    let file: File
    do {
        file = try JSONDecoder().decode(File.self, from: bytes)
    } catch {
        throw CommandError(description: "\(path): \(describeDecodingError(error))")
    }
    var spec = input
    if let i = file.input {
        guard [i.height, i.width, i.channels] == input.shape else {
            throw CommandError(description: "\(path): input is \(i.height)×\(i.width)×\(i.channels), but the data's images are "
                + "\(shapeText(input.shape))")
        }
        if let mean = i.mean { spec.mean = mean }
        if let std = i.std { spec.std = std }
    }
    let architecture = Architecture(preset: nil, input: spec, layers: file.layers, classes: classes.count, sourceClasses: classes)
    do {
        _ = try architecture.plan()
    } catch {
        throw CommandError(description: "\(path): \(error)")
    }
    return architecture
}

/// The default `--input`: Fashion-MNIST's shape, as "HxWxC".
let defaultInputText = InputSpec.fashionMNIST.shape.map(String.init).joined(separator: "x")

/// "32x32x3" → [32, 32, 3].
func parseShape(_ text: String, option: String) throws -> [Int] {
    let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
    guard parts.count == 3, parts.allSatisfy({ ($0 ?? 0) > 0 }) else {
        throw UsageError(description: "--\(option): '\(text)' is not HxWxC (e.g. 32x32x3)")
    }
    return parts.map { $0! }
}


func runDescribe(_ a: ParsedArguments) throws {
    let architecture: Architecture
    if let path = a.positional.first {
        guard a.string("model") == nil, a.string("model-spec") == nil else {
            throw UsageError(description: "give a checkpoint or --model / --model-spec, not both")
        }
        architecture = try loadCheckpoint(path: path).architecture
    } else {
        let shape = try parseShape(a.string("input", default: defaultInputText), option: "input")
        let classes = try a.int("classes", default: 10, range: 1...Architecture.maxUnits)
        var input = InputSpec.fashionMNIST
        (input.height, input.width, input.channels) = (shape[0], shape[1], shape[2])
        architecture = try modelArchitecture(a, input: input, classes: Array(0..<classes))
    }
    let plan = try architecture.plan()
    let space = pruningSpace(plan)
    if a.flag("json") {
        var layers: [String] = []
        for l in plan.layers {
            var o = JSONObject()
            o.set("path", l.path)
            o.set("name", l.name)
            o.set("output", raw: "[" + l.output.map(String.init).joined(separator: ",") + "]")
            o.set("params", l.parameters)
            o.set("macs", l.macs)
            if let g = l.outputGroup { o.set("group", plan.groups[g].name) }
            layers.append(o.text)
        }
        var o = JSONObject()
        o.set("model", architecture.family)
        o.set("input", raw: "[" + architecture.input.shape.map(String.init).joined(separator: ",") + "]")
        o.set("classes", architecture.classes)
        o.set("params", plan.parameters)
        o.set("blob_params", Int(space.fullCost(.params)))
        o.set("macs", Int(space.fullCost(.macs)))
        o.set("layers", raw: "[" + layers.joined(separator: ",") + "]")
        o.set("groups", raw: "[" + plan.groups.map { g in
            var j = JSONObject()
            j.set("name", g.name)
            j.set("size", g.size)
            return j.text
        }.joined(separator: ",") + "]")
        print(o.text)
        return
    }
    print("\(architecture.family): input \(shapeText(architecture.input.shape)), \(architecture.classes) classes")
    let rows = plan.layers.map { l -> [String] in
        [l.path, l.name, shapeText(l.output), l.parameters == 0 ? "" : "\(l.parameters)", l.macs == 0 ? "" : "\(l.macs)",
         l.outputGroup.map { plan.groups[$0].name } ?? ""]
    }
    let header = ["path", "layer", "output", "params", "MACs", "group"]
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    func line(_ r: [String]) -> String {
        r.enumerated().map { i, c in
            i >= 3 && i <= 4 ? String(repeating: " ", count: widths[i] - c.count) + c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
    print(line(header))
    for r in rows { print(line(r)) }
    print("total: \(plan.parameters) trained params; compiled: \(Int(space.fullCost(.params))) params (BatchNorm folded), "
        + "\(Int(space.fullCost(.macs))) MACs")
    print("pruning groups (\(plan.groups.count)): " + plan.groups.map { "\($0.name) \($0.size)" }.joined(separator: ", "))
}
