// Network descriptions shared by the description tests of SprigTrainTests and SprigPruneTests:
// every preset at width 0.25 and one hand-written description, at three inputs.

import SprigTrain

public enum SharedDescriptions {
    /// conv 3×3 /2 with bias → BN → ReLU6 → depthwise 3×3 (bias) → BN → ReLU → residual
    /// (conv /2, BN, ReLU, conv, BN; projection shortcut) → avg_pool 3 /2 pad 1 → inverted
    /// residual whose shapes would allow an add but `residual: false` → flatten → dense 7 → ReLU.
    public static let handLayers: [LayerSpec] = [
        .conv(ConvSpec(filters: 6, kernel: 3, stride: 2, bias: true)), .batchNorm, .relu6,
        .depthwise(DepthwiseSpec(kernel: 3, bias: true)), .batchNorm, .relu,
        .residual(ResidualSpec(body: [.conv(ConvSpec(filters: 8, stride: 2)), .batchNorm, .relu,
                                      .conv(ConvSpec(filters: 10)), .batchNorm],
                               shortcut: .projection)),
        .avgPool(PoolSpec(kernel: 3, stride: 2, padding: 1)),
        .invertedResidual(InvertedResidualSpec(expand: 12, filters: 10, residual: false)),
        .flatten, .dense(DenseSpec(units: 7)), .relu,
    ]

    /// The three inputs: gray 28×28 (Fashion-MNIST statistics), colour 32×32 with distinct
    /// per-channel statistics, gray 8×8.
    public static let inputs: [InputSpec] = [
        .fashionMNIST,
        InputSpec(height: 32, width: 32, channels: 3, mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26]),
        InputSpec(height: 8, width: 8, channels: 1, mean: [0.5], std: [0.3]),
    ]

    public static let classes = 5

    /// Every preset at width 0.25 and the hand-written description, at `input`.
    public static func architectures(_ input: InputSpec) throws -> [(label: String, architecture: Architecture)] {
        var out: [(String, Architecture)] = []
        for family in Architecture.presets {
            out.append(("\(family) \(input.shape)",
                        try Architecture(family: family, classes: classes, width: 0.25, sourceClasses: Array(0..<classes),
                                         input: input)))
        }
        out.append(("hand \(input.shape)", Architecture(preset: nil, input: input, layers: handLayers, classes: classes,
                                                        sourceClasses: Array(0..<classes))))
        return out
    }

}
