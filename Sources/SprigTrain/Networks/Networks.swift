// Checkpoints of networks built from a description (NetworkSpec.swift, NetworkPlan.swift).
//
// Checkpoint (safetensors): every parameter under its Sequential path ("0.weight",
// "1.bias", "3.body.0.weight", …), each BatchNorm2D's running statistics as
// "<path>.running_mean" and "<path>.running_var", and the description as JSON in
// __metadata__["architecture"] (docs/checkpoint-format.md). Layouts are the device
// runtime's: Conv2D [KH][KW][Cin][Cout], DepthwiseConv2D [KH][KW][C], Dense [Out][In].

import Foundation

public enum NetworkError: Error, Equatable, CustomStringConvertible {
    case unknownFamily(String)
    case badWidth(Double)
    case checkpoint(path: String, detail: String)

    public var description: String {
        switch self {
        case .unknownFamily(let f): return "unknown model '\(f)'; known: \(Architecture.presets.joined(separator: ", "))"
        case .badWidth(let w): return "width multiplier \(w) is not in (0, 16]"
        case .checkpoint(let path, let detail): return "\(path): \(detail)"
        }
    }
}

/// Every trained tensor and BatchNorm statistic of a network, by checkpoint name
/// ("3.body.0.weight", "3.body.1.running_mean", …), in a fixed order.
public func namedTensors(_ network: Sequential, prefix: String = "") -> [(name: String, get: () -> Tensor, set: (Tensor) -> Void)] {
    var out: [(name: String, get: () -> Tensor, set: (Tensor) -> Void)] = []
    for (i, layer) in network.layers.enumerated() {
        let path = "\(prefix)\(i)."
        if let chain = layer as? Sequential {
            out += namedTensors(chain, prefix: path)
            continue
        }
        if let block = layer as? Residual {
            out += namedTensors(block.body, prefix: path + "body.")
            out += namedTensors(block.shortcut, prefix: path + "shortcut.")
            continue
        }
        for p in layer.parameters {
            out.append((path + p.name, { p.value }, { p.value = $0 }))
        }
        if let bn = layer as? BatchNorm2D {
            out.append((path + "running_mean", { bn.runningMean }, { bn.runningMean = $0 }))
            out.append((path + "running_var", { bn.runningVariance }, { bn.runningVariance = $0 }))
        }
    }
    return out
}

/// Number of trained parameters.
public func parameterCount(_ network: Sequential) -> Int {
    network.parameters.reduce(0) { $0 + $1.value.count }
}

/// Saves a network and its architecture (atomically).
///
/// - Parameter metadata: extra `__metadata__` entries (e.g. how the network was pruned).
/// - Throws: `NetworkError.checkpoint` naming the tensor and element when a value is NaN or
///   infinite (nothing is written, so an older file at `path` stays as it was).
public func saveCheckpoint(_ network: Sequential, architecture: Architecture, to path: String,
                           metadata: [String: String] = [:]) throws {
    var file = SafetensorsFile(metadata: metadata.merging(["architecture": architecture.json, "format": "sprig-checkpoint-2"]) { $1 })
    for entry in namedTensors(network) {
        let t = entry.get()
        try requireFinite(t.storage, tensor: entry.name, path: path)
        file.tensors[entry.name] = try SafetensorsTensor(shape: t.shape, floats: t.storage)
    }
    try file.write(path: path)
}

/// Loads a checkpoint: rebuilds its network from the architecture and fills every tensor.
///
/// Every tensor the description implies must be present with its exact shape (so an OIHW
/// PyTorch weight is refused, with a hint), and no other tensor may be. F32, F16 and BF16
/// tensors are accepted; F16 and BF16 are widened to Float32 exactly.
///
/// - Throws: `NetworkError.checkpoint` naming the file and the tensors for missing or
///   unexpected tensors, a shape mismatch (both shapes), another dtype, a NaN or infinite
///   value, or a missing or malformed architecture; `SafetensorsError` naming the file
///   for a file that is not valid safetensors.
public func loadCheckpoint(path: String) throws -> (network: Sequential, architecture: Architecture) {
    let file = try SafetensorsFile.read(path: path)
    guard let json = file.metadata["architecture"] else {
        throw NetworkError.checkpoint(path: path, detail: "__metadata__ has no 'architecture' (not a Sprig checkpoint)")
    }
    let architecture: Architecture
    do {
        architecture = try Architecture.decode(json: json)
    } catch let error as NetworkError {
        throw NetworkError.checkpoint(path: path, detail: "__metadata__['architecture']: \(error)")
    } catch {
        throw NetworkError.checkpoint(path: path, detail: "__metadata__['architecture'] is not valid: \(describeDecodingError(error))")
    }
    // Walked before anything is allocated: absurd classes, widths or shapes are refused
    // by the walk's bounds, and a description that does not fit its input is named.
    let plan: NetworkPlan
    do {
        plan = try architecture.plan()
    } catch {
        throw NetworkError.checkpoint(path: path, detail: "__metadata__['architecture']: \(error)")
    }
    // Up to twice the file is let through, so that a missing or mis-shaped tensor is
    // named below; past it the metadata cannot be what the file holds.
    let present = file.tensors.values.reduce(0) { $0 + $1.elementCount }
    let implied = plan.tensorValues
    guard implied <= 2 * present else {
        throw NetworkError.checkpoint(path: path, detail: "__metadata__['architecture'] (\(architecture.family), classes "
            + "\(architecture.classes), widths \(plan.widths)) implies \(implied) tensor values, but the file holds "
            + "only \(present)")
    }
    let network = try buildNetwork(architecture, seed: 0)
    let entries = namedTensors(network)
    // The names first: every tensor the description needs is there, and nothing else is.
    let missing = entries.map(\.name).filter { file.tensors[$0] == nil }
    guard missing.isEmpty else {
        throw NetworkError.checkpoint(path: path, detail: "\(missing.count == 1 ? "tensor" : "\(missing.count) tensors") "
            + "\(nameList(missing)) missing: the description in __metadata__['architecture'] needs "
            + "\(missing.count == 1 ? "it" : "them") (`sprig describe \(path)` lists every tensor)")
    }
    let needed = Set(entries.map(\.name))
    let unexpected = file.tensors.keys.filter { !needed.contains($0) }.sorted()
    guard unexpected.isEmpty else {
        let batchCounter = unexpected.allSatisfy { $0.hasSuffix("num_batches_tracked") }
        throw NetworkError.checkpoint(path: path, detail: "\(unexpected.count == 1 ? "tensor" : "\(unexpected.count) tensors") "
            + "\(nameList(unexpected)) \(unexpected.count == 1 ? "is" : "are") not part of the description in "
            + "__metadata__['architecture']"
            + (batchCounter ? " (PyTorch's BatchNorm counters; tools/torch-bridge writes checkpoints without them)" : ""))
    }
    // Then each tensor: dtype, exact shape, finite values.
    for entry in entries {
        let tensor = file.tensors[entry.name]!
        var target = entry.get()
        guard tensor.shape == target.shape else {
            throw NetworkError.checkpoint(path: path, detail: "tensor '\(entry.name)' has shape \(tensor.shape), the "
                + "description needs \(target.shape)" + layoutHint(found: tensor.shape, expected: target.shape))
        }
        let values: [Float]
        switch tensor.dtype {
        case .f32, .f16, .bf16:
            values = try tensor.widenedFloats()
        default:
            throw NetworkError.checkpoint(path: path, detail: "tensor '\(entry.name)' dtype is \(tensor.dtype.rawValue); a "
                + "checkpoint's weights are F32, F16 or BF16 (F16 and BF16 are widened to F32 exactly)")
        }
        try requireFinite(values, tensor: entry.name, path: path)
        target.storage = values
        entry.set(target)
    }
    return (network, architecture)
}

/// `'a', 'b', 'c'`, or the first five and how many more.
private func nameList(_ names: [String]) -> String {
    let shown = names.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
    return names.count > 5 ? shown + " and \(names.count - 5) more" : shown
}

/// What a mis-shaped tensor most likely is, as a clause to append to the error.
///
/// Sprig's layouts are channels-last: Conv2D `[KH][KW][Cin][Cout]`, DepthwiseConv2D
/// `[KH][KW][C]`. PyTorch stores them as OIHW, `[Cout][Cin][KH][KW]` and `[C][1][KH][KW]`.
func layoutHint(found: [Int], expected: [Int]) -> String {
    let pytorch = "; this looks like PyTorch's OIHW layout: convert the checkpoint with "
        + "`tools/torch-bridge from-torch FILE --out NEW.safetensors` (docs/checkpoint-format.md)"
    if expected.count == 4, found == [expected[3], expected[2], expected[0], expected[1]] { return pytorch }
    if expected.count == 3, found == [expected[2], 1, expected[0], expected[1]] { return pytorch }
    if Tensor.elementCount(found) == Tensor.elementCount(expected) {
        return "; the element count is right, so the layout is probably another one (docs/checkpoint-format.md, Tensors)"
    }
    return ""
}

/// Throws `NetworkError.checkpoint` naming the first NaN or infinite element of a tensor.
func requireFinite(_ values: [Float], tensor: String, path: String) throws {
    guard let i = values.firstIndex(where: { !$0.isFinite }) else { return }
    throw NetworkError.checkpoint(path: path, detail: "tensor '\(tensor)' element \(i) is \(values[i]); weights must be finite")
}
