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
/// - Throws: errors naming the file and the tensor for a missing tensor, a shape
///   mismatch, a NaN or infinite value, or a missing or malformed architecture.
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
    for entry in namedTensors(network) {
        guard file.tensors[entry.name] != nil else {
            throw NetworkError.checkpoint(path: path, detail: "tensor '\(entry.name)' is missing")
        }
        let (shape, values) = try file.floats(entry.name)
        var target = entry.get()
        guard shape == target.shape else {
            throw NetworkError.checkpoint(path: path, detail: "tensor '\(entry.name)' has shape \(shape), the network needs \(target.shape)")
        }
        try requireFinite(values, tensor: entry.name, path: path)
        target.storage = values
        entry.set(target)
    }
    return (network, architecture)
}

/// Throws `NetworkError.checkpoint` naming the first NaN or infinite element of a tensor.
func requireFinite(_ values: [Float], tensor: String, path: String) throws {
    guard let i = values.firstIndex(where: { !$0.isFinite }) else { return }
    throw NetworkError.checkpoint(path: path, detail: "tensor '\(tensor)' element \(i) is \(values[i]); weights must be finite")
}
