// The network description: one typed value that every stage reads.
//
// An `Architecture` is the input (shape and per-channel normalisation), an
// ordered list of layers and blocks, and the classifier head. It is stored whole
// in a checkpoint's __metadata__["architecture"] as JSON (docs/checkpoint-format.md):
//
//   {"version": 2, "preset": "cnn",
//    "input": {"height": 28, "width": 28, "channels": 1, "mean": [0.286], "std": [0.353]},
//    "layers": [{"conv": {"filters": 32, "kernel": 3, "padding": 1, "bias": false}},
//               "batch_norm", "relu", {"max_pool": {"kernel": 2}}, …, "global_average_pool"],
//    "head": {"classes": 5, "source_classes": [0, 1, 2, 3, 4], "class_names": ["t-shirt", …]}}
//
// A parameterless layer is a string; any other is an object with one key, its
// kind. Omitted fields take the defaults below. `NetworkPlan` (NetworkPlan.swift)
// walks the description once to get every shape, pruning group, gate and cost;
// `Presets.swift` writes the named families as descriptions.

import Foundation

/// The input of a network: `[height][width][channels]` and its normalisation
/// `x ↦ (x/255 − mean[c]) / std[c]` (one value: every channel).
public struct InputSpec: Codable, Equatable, Sendable {
    public var height: Int
    public var width: Int
    public var channels: Int
    public var mean: [Float]
    public var std: [Float]

    public init(height: Int, width: Int, channels: Int, mean: [Float], std: [Float]) {
        self.height = height
        self.width = width
        self.channels = channels
        self.mean = mean
        self.std = std
    }

    /// Fashion-MNIST's 28×28 gray images with its training-set statistics.
    public static let fashionMNIST = InputSpec(height: 28, width: 28, channels: 1, mean: [0.2860], std: [0.3530])

    /// `[height, width, channels]`.
    public var shape: [Int] { [height, width, channels] }

    /// Whether the channels' statistics differ, so that one mean and std cannot stand for them
    /// (the compiled blob then normalises with a 1×1 depthwise op).
    public var hasDistinctChannelStatistics: Bool { Set(mean).count > 1 || Set(std).count > 1 }
}

/// A shape as messages write it: [28, 28, 1] → "28×28×1".
public func shapeText(_ shape: [Int]) -> String { shape.map(String.init).joined(separator: "×") }

/// A convolution's geometry. `filters` is the output channels; padding is symmetric.
public struct ConvSpec: Codable, Equatable, Sendable {
    public var filters: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    public var bias: Bool

    public init(filters: Int, kernel: Int = 3, stride: Int = 1, padding: Int? = nil, bias: Bool = false) {
        self.filters = filters
        self.kernel = kernel
        self.stride = stride
        self.padding = padding ?? kernel / 2
        self.bias = bias
    }

    enum CodingKeys: String, CodingKey { case filters, kernel, stride, padding, bias }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let kernel = try c.decodeIfPresent(Int.self, forKey: .kernel) ?? 3
        self.init(filters: try c.decode(Int.self, forKey: .filters), kernel: kernel,
                  stride: try c.decodeIfPresent(Int.self, forKey: .stride) ?? 1,
                  padding: try c.decodeIfPresent(Int.self, forKey: .padding),
                  bias: try c.decodeIfPresent(Bool.self, forKey: .bias) ?? false)
    }
}

/// A depthwise convolution (channel multiplier 1): as many outputs as inputs.
public struct DepthwiseSpec: Codable, Equatable, Sendable {
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    public var bias: Bool

    public init(kernel: Int = 3, stride: Int = 1, padding: Int? = nil, bias: Bool = false) {
        self.kernel = kernel
        self.stride = stride
        self.padding = padding ?? kernel / 2
        self.bias = bias
    }

    enum CodingKeys: String, CodingKey { case kernel, stride, padding, bias }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let kernel = try c.decodeIfPresent(Int.self, forKey: .kernel) ?? 3
        self.init(kernel: kernel, stride: try c.decodeIfPresent(Int.self, forKey: .stride) ?? 1,
                  padding: try c.decodeIfPresent(Int.self, forKey: .padding),
                  bias: try c.decodeIfPresent(Bool.self, forKey: .bias) ?? false)
    }
}

/// A pooling window; the stride defaults to the kernel (non-overlapping windows).
public struct PoolSpec: Codable, Equatable, Sendable {
    public var kernel: Int
    public var stride: Int
    public var padding: Int

    public init(kernel: Int = 2, stride: Int? = nil, padding: Int = 0) {
        self.kernel = kernel
        self.stride = stride ?? kernel
        self.padding = padding
    }

    enum CodingKeys: String, CodingKey { case kernel, stride, padding }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(kernel: try c.decodeIfPresent(Int.self, forKey: .kernel) ?? 2,
                  stride: try c.decodeIfPresent(Int.self, forKey: .stride),
                  padding: try c.decodeIfPresent(Int.self, forKey: .padding) ?? 0)
    }
}

/// A fully connected layer of `units` outputs; its input must be flat (after
/// `flatten` or `global_average_pool`).
public struct DenseSpec: Codable, Equatable, Sendable {
    public var units: Int
    public var bias: Bool

    public init(units: Int, bias: Bool = true) {
        self.units = units
        self.bias = bias
    }

    enum CodingKeys: String, CodingKey { case units, bias }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(units: try c.decode(Int.self, forKey: .units), bias: try c.decodeIfPresent(Bool.self, forKey: .bias) ?? true)
    }
}

/// `activation(body(x) + shortcut(x))`. The identity shortcut needs the body to keep
/// the shape; `projection` is a 1×1 conv (no bias) + BatchNorm whose stride is the
/// body's total stride.
public struct ResidualSpec: Codable, Equatable, Sendable {
    public enum Shortcut: String, Codable, Sendable { case identity, projection }
    public enum Activation: String, Codable, Sendable { case relu, none }

    public var body: [LayerSpec]
    public var shortcut: Shortcut
    public var activation: Activation

    public init(body: [LayerSpec], shortcut: Shortcut = .identity, activation: Activation = .relu) {
        self.body = body
        self.shortcut = shortcut
        self.activation = activation
    }

    enum CodingKeys: String, CodingKey { case body, shortcut, activation }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(body: try c.decode([LayerSpec].self, forKey: .body),
                  shortcut: try c.decodeIfPresent(Shortcut.self, forKey: .shortcut) ?? .identity,
                  activation: try c.decodeIfPresent(Activation.self, forKey: .activation) ?? .relu)
    }
}

/// MobileNetV2's block: 1×1 conv to `expand` channels + BN + ReLU6, depthwise k×k
/// with `stride` + BN + ReLU6, 1×1 conv to `filters` + BN, plus the input when
/// `residual` (nil: when the shapes allow, stride 1 and as many inputs as `filters`).
public struct InvertedResidualSpec: Codable, Equatable, Sendable {
    public var expand: Int
    public var filters: Int
    public var kernel: Int
    public var stride: Int
    public var residual: Bool?

    public init(expand: Int, filters: Int, kernel: Int = 3, stride: Int = 1, residual: Bool? = nil) {
        self.expand = expand
        self.filters = filters
        self.kernel = kernel
        self.stride = stride
        self.residual = residual
    }

    enum CodingKeys: String, CodingKey { case expand, filters, kernel, stride, residual }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(expand: try c.decode(Int.self, forKey: .expand), filters: try c.decode(Int.self, forKey: .filters),
                  kernel: try c.decodeIfPresent(Int.self, forKey: .kernel) ?? 3,
                  stride: try c.decodeIfPresent(Int.self, forKey: .stride) ?? 1,
                  residual: try c.decodeIfPresent(Bool.self, forKey: .residual))
    }

    /// The block as plain layers, in the order of its trainer layers and checkpoint names.
    public var layers: [LayerSpec] {
        [.conv(ConvSpec(filters: expand, kernel: 1)), .batchNorm, .relu6,
         .depthwise(DepthwiseSpec(kernel: kernel, stride: stride)), .batchNorm, .relu6,
         .conv(ConvSpec(filters: filters, kernel: 1)), .batchNorm]
    }
}

/// One layer or block of a network description.
public indirect enum LayerSpec: Equatable, Sendable {
    case conv(ConvSpec)
    case depthwise(DepthwiseSpec)
    case batchNorm
    case relu
    case relu6
    case maxPool(PoolSpec)
    case avgPool(PoolSpec)
    case globalAveragePool
    case flatten
    case dense(DenseSpec)
    case residual(ResidualSpec)
    case invertedResidual(InvertedResidualSpec)

    /// The JSON name of the kind.
    public var kind: String {
        switch self {
        case .conv: return "conv"
        case .depthwise: return "depthwise"
        case .batchNorm: return "batch_norm"
        case .relu: return "relu"
        case .relu6: return "relu6"
        case .maxPool: return "max_pool"
        case .avgPool: return "avg_pool"
        case .globalAveragePool: return "global_average_pool"
        case .flatten: return "flatten"
        case .dense: return "dense"
        case .residual: return "residual"
        case .invertedResidual: return "inverted_residual"
        }
    }

    static let simple: [String: LayerSpec] = ["batch_norm": .batchNorm, "relu": .relu, "relu6": .relu6,
                                              "global_average_pool": .globalAveragePool, "flatten": .flatten]
    static let kinds = ["conv", "depthwise", "batch_norm", "relu", "relu6", "max_pool", "avg_pool",
                        "global_average_pool", "flatten", "dense", "residual", "inverted_residual"]
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension LayerSpec: Codable {
    public init(from decoder: any Decoder) throws {
        if let single = try? decoder.singleValueContainer(), let name = try? single.decode(String.self) {
            guard let layer = LayerSpec.simple[name] else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                    "unknown layer '\(name)'; a layer is one of \(LayerSpec.kinds.joined(separator: ", "))"
                    + (LayerSpec.kinds.contains(name) ? " ('\(name)' needs an object with its fields)" : "")))
            }
            self = layer
            return
        }
        let c = try decoder.container(keyedBy: AnyKey.self)
        guard c.allKeys.count == 1, let key = c.allKeys.first else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                "a layer is a string or an object with one key, its kind; found keys \(c.allKeys.map(\.stringValue).sorted())"))
        }
        switch key.stringValue {
        case "conv": self = .conv(try c.decode(ConvSpec.self, forKey: key))
        case "depthwise": self = .depthwise(try c.decode(DepthwiseSpec.self, forKey: key))
        case "max_pool": self = .maxPool(try c.decode(PoolSpec.self, forKey: key))
        case "avg_pool": self = .avgPool(try c.decode(PoolSpec.self, forKey: key))
        case "dense": self = .dense(try c.decode(DenseSpec.self, forKey: key))
        case "residual": self = .residual(try c.decode(ResidualSpec.self, forKey: key))
        case "inverted_residual": self = .invertedResidual(try c.decode(InvertedResidualSpec.self, forKey: key))
        case let name:
            if let layer = LayerSpec.simple[name] {
                self = layer
            } else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + [key], debugDescription:
                    "unknown layer '\(name)'; a layer is one of \(LayerSpec.kinds.joined(separator: ", "))"))
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .batchNorm, .relu, .relu6, .globalAveragePool, .flatten:
            var s = encoder.singleValueContainer()
            try s.encode(kind)
            return
        default: break
        }
        var c = encoder.container(keyedBy: AnyKey.self)
        let key = AnyKey(kind)
        switch self {
        case .conv(let v): try c.encode(v, forKey: key)
        case .depthwise(let v): try c.encode(v, forKey: key)
        case .maxPool(let v), .avgPool(let v): try c.encode(v, forKey: key)
        case .dense(let v): try c.encode(v, forKey: key)
        case .residual(let v): try c.encode(v, forKey: key)
        case .invertedResidual(let v): try c.encode(v, forKey: key)
        case .batchNorm, .relu, .relu6, .globalAveragePool, .flatten: break
        }
    }
}

/// What a checkpoint needs to rebuild its network: the description, the classes,
/// and the name of the preset it came from.
public struct Architecture: Equatable, Sendable {
    /// The schema version written; 1 was the family string + widths form, still read.
    public static let version = 2

    /// The preset the description was made from ("cnn", …), or nil for a user's own.
    public var preset: String?
    public var input: InputSpec
    /// The backbone, in order; the head (a Dense to `classes`) follows it.
    public var layers: [LayerSpec]
    public var classes: Int
    /// The dataset classes the outputs stand for, in output order.
    public var sourceClasses: [Int]
    /// Display names of the outputs, when the data has them.
    public var classNames: [String]?

    public init(preset: String?, input: InputSpec, layers: [LayerSpec], classes: Int, sourceClasses: [Int],
                classNames: [String]? = nil) {
        self.preset = preset
        self.input = input
        self.layers = layers
        self.classes = classes
        self.sourceClasses = sourceClasses
        self.classNames = classNames
    }

    /// The preset's name, or "custom".
    public var family: String { preset ?? "custom" }

    /// The input normalisation.
    public var normalization: Normalization { Normalization(mean: input.mean, std: input.std) }

    /// The JSON stored in a checkpoint (keys sorted, so equal descriptions give equal text).
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// Decodes a description: version 2, or the version-1 form (family + widths).
    public static func decode(json: String) throws -> Architecture {
        try JSONDecoder().decode(Architecture.self, from: Data(json.utf8))
    }
}

extension Architecture: Codable {
    enum CodingKeys: String, CodingKey {
        case version, preset, input, layers, head
        // version 1
        case family, classes, widths, sourceClasses, mean, std
    }

    struct Head: Codable {
        var classes: Int
        var sourceClasses: [Int]
        var classNames: [String]?
        enum CodingKeys: String, CodingKey {
            case classes
            case sourceClasses = "source_classes"
            case classNames = "class_names"
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if c.contains(.family) && !c.contains(.version) {
            // Version 1: {"family", "classes", "widths", "sourceClasses", "mean", "std"}.
            let family = try c.decode(String.self, forKey: .family)
            // Every version-1 checkpoint took Fashion-MNIST's images, with its own statistics.
            var input = InputSpec.fashionMNIST
            input.mean = [try c.decode(Float.self, forKey: .mean)]
            input.std = [try c.decode(Float.self, forKey: .std)]
            self = try Architecture(preset: family, widths: try c.decode([Int].self, forKey: .widths), input: input,
                                    classes: try c.decode(Int.self, forKey: .classes),
                                    sourceClasses: try c.decode([Int].self, forKey: .sourceClasses))
            return
        }
        let version = try c.decode(Int.self, forKey: .version)
        guard version == Architecture.version else {
            throw DecodingError.dataCorruptedError(forKey: .version, in: c, debugDescription:
                "version \(version) is not one this Sprig reads (\(Architecture.version), or the older family form)")
        }
        let head = try c.decode(Head.self, forKey: .head)
        self.init(preset: try c.decodeIfPresent(String.self, forKey: .preset), input: try c.decode(InputSpec.self, forKey: .input),
                  layers: try c.decode([LayerSpec].self, forKey: .layers), classes: head.classes,
                  sourceClasses: head.sourceClasses, classNames: head.classNames)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Architecture.version, forKey: .version)
        try c.encodeIfPresent(preset, forKey: .preset)
        try c.encode(input, forKey: .input)
        try c.encode(layers, forKey: .layers)
        try c.encode(Head(classes: classes, sourceClasses: sourceClasses, classNames: classNames), forKey: .head)
    }
}
