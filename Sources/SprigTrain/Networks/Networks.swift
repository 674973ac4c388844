// Named networks and their checkpoints.
//
//   mlp   Flatten → Dense 784→w0 → ReLU → Dense w0→w1 → ReLU → Dense w1→classes      (widths 512, 256)
//   cnn   4 × [Conv3×3 same (no bias) → BatchNorm2D → ReLU], MaxPool 2 after blocks 1–3,
//         GlobalAveragePool → Dense widths[3]→classes                                 (widths 32, 64, 128, 128)
//   resnet stem Conv3×3 w0 + BN + ReLU, then 3 stages of one basic Residual block each
//         (Conv3×3 + BN + ReLU + Conv3×3 + BN, shortcut identity or 1×1 stride-2 projection + BN),
//         stages 2–3 halve the resolution; GlobalAveragePool → Dense                 (widths 16, 32, 64)
//         A pruned resnet has six widths, one per unit group (`resnetStageWidths`).
//
// A network is a `Sequential`; the unit groups DAP prunes are each conv's output
// channels (cnn) and each hidden Dense's neurons (mlp). Width multipliers scale the
// default widths; explicit widths build a physically smaller network of the same family.
//
// Checkpoint (safetensors): every parameter under its Sequential path ("0.weight",
// "1.bias", …), each BatchNorm2D's running statistics as "<i>.running_mean" and
// "<i>.running_var", and the architecture as JSON in __metadata__["architecture"].
// Layouts are the device runtime's: Conv2D [KH][KW][Cin][Cout], Dense [Out][In].

import Foundation

/// What a checkpoint needs to rebuild its network.
public struct Architecture: Codable, Equatable, Sendable {
    public var family: String
    public var classes: Int
    public var widths: [Int]
    /// The dataset classes the outputs stand for, in output order.
    public var sourceClasses: [Int]
    public var mean: Float
    public var std: Float

    public static let families = ["mlp", "cnn", "resnet"]
    /// Families outside the CLI's list: `refcnn` is the reference network of the committed fixtures.
    public static let internalFamilies = ["refcnn"]

    public static func defaultWidths(_ family: String) -> [Int] {
        switch family {
        case "mlp": return [512, 256]
        case "resnet", "refcnn": return [16, 32, 64]
        default: return [32, 64, 128, 128]
        }
    }

    /// The default architecture of `family`, widths scaled by `width`.
    public init(family: String, classes: Int, width: Double = 1, sourceClasses: [Int],
                mean: Float = 0.2860, std: Float = 0.3530) throws {
        guard Architecture.families.contains(family) || Architecture.internalFamilies.contains(family) else {
            throw NetworkError.unknownFamily(family)
        }
        guard width > 0, width <= 16 else { throw NetworkError.badWidth(width) }
        self.family = family
        self.classes = classes
        self.widths = Architecture.defaultWidths(family).map { max(1, Int((Double($0) * width).rounded())) }
        self.sourceClasses = sourceClasses
        self.mean = mean
        self.std = std
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}

extension Architecture {
    /// The most classes and units per layer a checkpoint may declare.
    public static let maxUnits = 65_536

    /// Throws, naming the field, when `classes` or a width is outside 1...``maxUnits``.
    public func checkRanges() throws {
        guard classes > 0 && classes <= Architecture.maxUnits else {
            throw NetworkError.checkpoint(path: "architecture", detail: "classes is \(classes), not in 1...\(Architecture.maxUnits)")
        }
        guard widths.allSatisfy({ $0 > 0 && $0 <= Architecture.maxUnits }) else {
            throw NetworkError.checkpoint(path: "architecture", detail: "widths \(widths) must each be in 1...\(Architecture.maxUnits)")
        }
    }

    /// Float values the network of this architecture holds (parameters and
    /// BatchNorm running statistics), counted without building it, saturating.
    /// `loadCheckpoint` compares it with the file before allocating anything.
    /// A test checks it against every family's built network.
    public var tensorElements: Int {
        func mul(_ xs: Int...) -> Int {
            xs.reduce(1) { a, b in let (p, o) = a.multipliedReportingOverflow(by: b); return o ? Int.max : p }
        }
        func add(_ xs: Int...) -> Int {
            xs.reduce(0) { a, b in let (s, o) = a.addingReportingOverflow(b); return o ? Int.max : s }
        }
        func conv(_ k: Int, _ cin: Int, _ cout: Int, bias: Bool) -> Int { add(mul(k, k, cin, cout), bias ? cout : 0) }
        let bn = { (c: Int) in mul(4, c) }  // γ, β, running mean and variance
        let w = widths
        switch family {
        case "mlp" where w.count == 2:
            return add(mul(784, w[0]), w[0], mul(w[0], w[1]), w[1], mul(w[1], classes), classes)
        case "cnn" where w.count == 4, "refcnn" where w.count == 3:
            let ref = family == "refcnn"
            var total = 0, channels = 1
            for c in w {
                total = add(total, conv(3, channels, c, bias: ref), ref ? 0 : bn(c))
                channels = c
            }
            return add(total, mul(channels, classes), classes)
        case "resnet":
            guard let stages = try? resnetStageWidths(w) else { return 0 }
            var channels = stages[0].output
            var total = add(conv(3, 1, channels, bias: false), bn(channels))
            for (i, (inner, out)) in stages.enumerated() {
                total = add(total, conv(3, channels, inner, bias: false), bn(inner), conv(3, inner, out, bias: false), bn(out))
                if i > 0 || channels != out { total = add(total, conv(1, channels, out, bias: false), bn(out)) }
                channels = out
            }
            return add(total, mul(channels, classes), classes)
        default:
            return 0  // buildNetwork names the problem
        }
    }
}

public enum NetworkError: Error, Equatable, CustomStringConvertible {
    case unknownFamily(String)
    case badWidth(Double)
    case checkpoint(path: String, detail: String)

    public var description: String {
        switch self {
        case .unknownFamily(let f): return "unknown model '\(f)'; known: \(Architecture.families.joined(separator: ", "))"
        case .badWidth(let w): return "width multiplier \(w) is not in (0, 16]"
        case .checkpoint(let path, let detail): return "\(path): \(detail)"
        }
    }
}

/// Builds the network of `architecture` with He-initialised weights from `seed`.
public func buildNetwork(_ a: Architecture, seed: UInt64) throws -> Sequential {
    var rng = SprigRNG(seed: seed)
    try a.checkRanges()
    switch a.family {
    case "mlp":
        guard a.widths.count == 2 else { throw NetworkError.checkpoint(path: "architecture", detail: "mlp needs 2 widths") }
        return Sequential([
            Flatten(),
            Dense(inputDimensions: 784, outputDimensions: a.widths[0], rng: &rng), ReLU(),
            Dense(inputDimensions: a.widths[0], outputDimensions: a.widths[1], rng: &rng), ReLU(),
            Dense(inputDimensions: a.widths[1], outputDimensions: a.classes, rng: &rng),
        ])
    case "cnn":
        guard a.widths.count == 4 else { throw NetworkError.checkpoint(path: "architecture", detail: "cnn needs 4 widths") }
        var layers: [any Layer] = []
        var channels = 1
        for (i, w) in a.widths.enumerated() {
            layers.append(Conv2D(inputChannels: channels, outputChannels: w, kernelSize: 3, padding: 1, bias: false, rng: &rng))
            layers.append(BatchNorm2D(channels: w))
            layers.append(ReLU())
            if i < 3 { layers.append(MaxPool2D(kernelSize: 2)) }
            channels = w
        }
        layers.append(GlobalAveragePool())
        layers.append(Dense(inputDimensions: channels, outputDimensions: a.classes, rng: &rng))
        return Sequential(layers)
    case "refcnn":
        // Conv3×3 16 + ReLU → MaxPool 2 → Conv3×3 32 + ReLU → MaxPool 2 → Conv3×3 64 + ReLU → GAP → Dense.
        guard a.widths.count == 3 else { throw NetworkError.checkpoint(path: "architecture", detail: "refcnn needs 3 widths") }
        var layers: [any Layer] = []
        var channels = 1
        for (i, w) in a.widths.enumerated() {
            layers.append(Conv2D(inputChannels: channels, outputChannels: w, kernelSize: 3, padding: 1, bias: true, rng: &rng))
            layers.append(ReLU())
            if i < 2 { layers.append(MaxPool2D(kernelSize: 2)) }
            channels = w
        }
        layers.append(GlobalAveragePool())
        layers.append(Dense(inputDimensions: channels, outputDimensions: a.classes, rng: &rng))
        return Sequential(layers)
    case "resnet":
        let stages = try resnetStageWidths(a.widths)
        var layers: [any Layer] = [
            Conv2D(inputChannels: 1, outputChannels: stages[0].output, kernelSize: 3, padding: 1, bias: false, rng: &rng),
            BatchNorm2D(channels: stages[0].output), ReLU(),
        ]
        var channels = stages[0].output
        for (i, (inner, w)) in stages.enumerated() {
            let stride = i == 0 ? 1 : 2
            let body = Sequential([
                Conv2D(inputChannels: channels, outputChannels: inner, kernelSize: 3, stride: stride, padding: 1, bias: false, rng: &rng),
                BatchNorm2D(channels: inner), ReLU(),
                Conv2D(inputChannels: inner, outputChannels: w, kernelSize: 3, padding: 1, bias: false, rng: &rng),
                BatchNorm2D(channels: w),
            ])
            let shortcut = stride == 1 && channels == w ? Sequential([]) : Sequential([
                Conv2D(inputChannels: channels, outputChannels: w, kernelSize: 1, stride: stride, bias: false, rng: &rng),
                BatchNorm2D(channels: w),
            ])
            layers.append(Residual(body: body, shortcut: shortcut))
            channels = w
        }
        layers.append(GlobalAveragePool())
        layers.append(Dense(inputDimensions: channels, outputDimensions: a.classes, rng: &rng))
        return Sequential(layers)
    default:
        throw NetworkError.unknownFamily(a.family)
    }
}

/// A resnet's (inner, output) width per stage. Three widths give inner = output (the supernet);
/// six are the pruned form, in the order of its unit groups:
/// [stem and stage 1 output, stage 1 inner, stage 2 inner, stage 2 output, stage 3 inner, stage 3 output].
public func resnetStageWidths(_ w: [Int]) throws -> [(inner: Int, output: Int)] {
    guard w.allSatisfy({ $0 > 0 }) else { throw NetworkError.checkpoint(path: "architecture", detail: "resnet widths must be positive, got \(w)") }
    switch w.count {
    case 3: return w.map { ($0, $0) }
    case 6: return [(w[1], w[0]), (w[2], w[3]), (w[4], w[5])]
    default: throw NetworkError.checkpoint(path: "architecture", detail: "resnet needs 3 widths (or 6 when pruned), got \(w.count)")
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
    var file = SafetensorsFile(metadata: metadata.merging(["architecture": architecture.json, "format": "sprig-checkpoint-1"]) { $1 })
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
        architecture = try JSONDecoder().decode(Architecture.self, from: Data(json.utf8))
    } catch {
        throw NetworkError.checkpoint(path: path, detail: "__metadata__['architecture'] is not valid: \(describeDecodingError(error))")
    }
    // Bounded by the file before anything is allocated: absurd classes or widths
    // would otherwise ask for hundreds of gigabytes.
    do {
        try architecture.checkRanges()
    } catch let NetworkError.checkpoint(_, detail) {
        throw NetworkError.checkpoint(path: path, detail: "__metadata__['architecture']: \(detail)")
    }
    // Up to twice the file is let through, so that a missing or mis-shaped tensor is
    // named below; past it the metadata cannot be what the file holds.
    let present = file.tensors.values.reduce(0) { $0 + $1.elementCount }
    let implied = architecture.tensorElements
    guard implied <= 2 * present else {
        throw NetworkError.checkpoint(path: path, detail: "__metadata__['architecture'] (\(architecture.family), classes "
            + "\(architecture.classes), widths \(architecture.widths)) implies \(implied) tensor values, but the file holds "
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
