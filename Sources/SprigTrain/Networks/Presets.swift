// The named networks, written as descriptions (widths are the default; a width
// multiplier scales every channel count, rounded, at least 1):
//
//   mlp        Flatten → Dense 512 → ReLU → Dense 256 → ReLU → head
//   cnn        4 × [Conv3×3 (no bias) → BatchNorm → ReLU], MaxPool 2 after blocks 1–3,
//              GlobalAveragePool → head                                   (32, 64, 128, 128)
//   resnet     stem Conv3×3 16 + BN + ReLU, then 3 stages of one basic residual block
//              (Conv3×3 + BN + ReLU + Conv3×3 + BN, identity or 1×1 stride-2 projection),
//              stages 2–3 halve the resolution; GlobalAveragePool → head  (16, 32, 64)
//   mobilenet  MobileNetV2-style: stem Conv3×3 16 + BN + ReLU6, inverted residuals
//              (expansion 4, depthwise 3×3, ReLU6; an add where the shapes allow):
//              16 → 24 /2 → 24 → 32 /2 → 32, then Conv1×1 128 + BN + ReLU6,
//              GlobalAveragePool → head. The stem keeps the resolution, since the
//              inputs are small (28×28, 32×32); each "/2" block halves it.
//   refcnn     the committed fixtures' reference network (not offered to users):
//              3 × [Conv3×3 with bias → ReLU], MaxPool 2 after the first two, GAP → head
//
// Every preset takes any input shape the description admits; the shapes follow.

extension Architecture {
    /// The presets `sprig train --model` offers.
    public static let presets = ["mlp", "cnn", "resnet", "mobilenet"]
    /// Presets outside the CLI's list: `refcnn` is the reference network of the committed fixtures.
    public static let internalPresets = ["refcnn"]

    /// The default widths of a preset: one per layer its description lists as a width.
    public static func defaultWidths(_ preset: String) -> [Int] {
        switch preset {
        case "mlp": return [512, 256]
        case "resnet", "refcnn": return [16, 32, 64]
        case "mobilenet": return [16, 64, 16, 64, 24, 96, 24, 96, 32, 128, 32, 128]
        default: return [32, 64, 128, 128]
        }
    }

    /// A preset at its default widths scaled by `width`.
    ///
    /// - Throws: ``NetworkError/unknownFamily(_:)``, ``NetworkError/badWidth(_:)``.
    public init(family: String, classes: Int, width: Double = 1, sourceClasses: [Int],
                input: InputSpec = .fashionMNIST) throws {
        guard width > 0, width <= 16 else { throw NetworkError.badWidth(width) }
        guard Architecture.presets.contains(family) || Architecture.internalPresets.contains(family) else {
            throw NetworkError.unknownFamily(family)
        }
        let widths = Architecture.defaultWidths(family).map { max(1, Int((Double($0) * width).rounded())) }
        try self.init(preset: family, widths: widths, input: input, classes: classes, sourceClasses: sourceClasses)
    }

    /// A preset's description at explicit widths (the version-1 checkpoint form: a pruned
    /// resnet has six widths, [stem and stage 1 output, stage 1 inner, stage 2 inner,
    /// stage 2 output, stage 3 inner, stage 3 output]).
    public init(preset: String, widths w: [Int], input: InputSpec, classes: Int, sourceClasses: [Int]) throws {
        func need(_ n: Int...) throws {
            guard n.contains(w.count) else {
                throw NetworkError.checkpoint(path: "architecture", detail: "\(preset) needs "
                    + n.map(String.init).joined(separator: " or ") + " widths, got \(w.count)")
            }
            guard w.allSatisfy({ (1...Architecture.maxUnits).contains($0) }) else {
                throw NetworkError.checkpoint(path: "architecture", detail: "widths \(w) must each be in 1...\(Architecture.maxUnits)")
            }
        }
        var layers: [LayerSpec] = []
        switch preset {
        case "mlp":
            try need(2)
            layers = [.flatten, .dense(DenseSpec(units: w[0])), .relu, .dense(DenseSpec(units: w[1])), .relu]
        case "cnn":
            try need(4)
            for (i, f) in w.enumerated() {
                layers += [.conv(ConvSpec(filters: f)), .batchNorm, .relu]
                if i < 3 { layers.append(.maxPool(PoolSpec(kernel: 2))) }
            }
            layers.append(.globalAveragePool)
        case "refcnn":
            try need(3)
            for (i, f) in w.enumerated() {
                layers += [.conv(ConvSpec(filters: f, bias: true)), .relu]
                if i < 2 { layers.append(.maxPool(PoolSpec(kernel: 2))) }
            }
            layers.append(.globalAveragePool)
        case "resnet":
            try need(3, 6)
            let stages = w.count == 3 ? w.map { ($0, $0) } : [(w[1], w[0]), (w[2], w[3]), (w[4], w[5])]
            layers = [.conv(ConvSpec(filters: stages[0].1)), .batchNorm, .relu]
            var channels = stages[0].1
            for (s, (inner, out)) in stages.enumerated() {
                let stride = s == 0 ? 1 : 2
                let body: [LayerSpec] = [.conv(ConvSpec(filters: inner, stride: stride)), .batchNorm, .relu,
                                         .conv(ConvSpec(filters: out)), .batchNorm]
                layers.append(.residual(ResidualSpec(body: body, shortcut: stride == 1 && channels == out ? .identity : .projection)))
                channels = out
            }
            layers.append(.globalAveragePool)
        case "mobilenet":
            try need(12)
            // [stem, (expand, filters) × 5, last conv]; the blocks' strides are fixed.
            layers = [.conv(ConvSpec(filters: w[0])), .batchNorm, .relu6]
            let strides = [1, 2, 1, 2, 1]
            for b in 0..<5 {
                layers.append(.invertedResidual(InvertedResidualSpec(expand: w[1 + 2 * b], filters: w[2 + 2 * b], stride: strides[b])))
            }
            layers += [.conv(ConvSpec(filters: w[11], kernel: 1)), .batchNorm, .relu6, .globalAveragePool]
        default:
            throw NetworkError.unknownFamily(preset)
        }
        self.init(preset: preset, input: input, layers: layers, classes: classes, sourceClasses: sourceClasses)
    }

    /// Whether the network convolves (and so is trained with random shifts by default).
    public var isConvolutional: Bool {
        func convolves(_ specs: [LayerSpec]) -> Bool {
            specs.contains { spec in
                switch spec {
                case .conv, .depthwise, .invertedResidual: return true
                case .residual(let r): return convolves(r.body)
                default: return false
                }
            }
        }
        return convolves(layers)
    }
}
