// The prunable unit groups of each named network (Sources/SprigTrain/Networks).
//
//   mlp     groups: fc1 (w0 neurons), fc2 (w1 neurons)
//   cnn     groups: conv1 … conv4 (their output channels)
//   resnet  groups: stem+stage1 (tied by the identity shortcut), stage1.inner, stage2, stage2.inner,
//           stage3, stage3.inner — a block's output channels and its shortcut's are one group

import SprigTrain

/// The pruning space (groups, and the layers between them with their pixel counts) of a named network.
public func pruningSpace(for a: Architecture, bytesPerElement: Int = 1) throws -> PruningSpace {
    switch a.family {
    case "mlp":
        return PruningSpace(
            groups: [.init(name: "fc1", size: a.widths[0]), .init(name: "fc2", size: a.widths[1])],
            layers: [.init(name: "fc1", input: .fixed(784), output: .group(0), inputPixels: 1, outputPixels: 1),
                     .init(name: "fc2", input: .group(0), output: .group(1)),
                     .init(name: "fc3", input: .group(1), output: .fixed(a.classes))],
            bytesPerElement: bytesPerElement)
    case "cnn":
        // Resolutions: 28 → pool → 14 → pool → 7 → pool → 3 (blocks 1-3 pool after themselves).
        let side = [28, 14, 7, 3]
        var layers: [PruningSpace.Layer] = []
        for i in 0..<4 {
            layers.append(.init(name: "conv\(i + 1)", input: i == 0 ? .fixed(1) : .group(i - 1), output: .group(i),
                                kernelArea: 9, inputPixels: side[i] * side[i], outputPixels: side[i] * side[i], bias: true))
        }
        layers.append(.init(name: "fc", input: .group(3), output: .fixed(a.classes), inputPixels: 1, outputPixels: 1))
        return PruningSpace(groups: (0..<4).map { .init(name: "conv\($0 + 1)", size: a.widths[$0]) }, layers: layers,
                            bytesPerElement: bytesPerElement)
    case "resnet":
        let side = [28, 14, 7]
        let stages = try resnetStageWidths(a.widths)
        var groups: [PruningSpace.Group] = []
        var layers: [PruningSpace.Layer] = []
        // Group 0: the stem and stage 1's output, tied by the identity shortcut.
        groups.append(.init(name: "stage1", size: stages[0].output))
        layers.append(.init(name: "stem", input: .fixed(1), output: .group(0), kernelArea: 9, inputPixels: 784, outputPixels: 784))
        var previous = 0
        for s in 0..<3 {
            let inner = groups.count
            groups.append(.init(name: "stage\(s + 1).inner", size: stages[s].inner))
            let out: Int
            if s == 0 {
                out = 0
            } else {
                out = groups.count
                groups.append(.init(name: "stage\(s + 1)", size: stages[s].output))
            }
            let inPixels = (s == 0 ? 28 * 28 : side[s - 1] * side[s - 1]), pixels = side[s] * side[s]
            layers.append(.init(name: "stage\(s + 1).conv1", input: .group(previous), output: .group(inner), kernelArea: 9,
                                inputPixels: inPixels, outputPixels: pixels))
            layers.append(.init(name: "stage\(s + 1).conv2", input: .group(inner), output: .group(out), kernelArea: 9,
                                inputPixels: pixels, outputPixels: pixels))
            if s > 0 {
                layers.append(.init(name: "stage\(s + 1).shortcut", input: .group(previous), output: .group(out), kernelArea: 1,
                                    inputPixels: inPixels, outputPixels: pixels))
            }
            previous = out
        }
        layers.append(.init(name: "fc", input: .group(previous), output: .fixed(a.classes)))
        return PruningSpace(groups: groups, layers: layers, bytesPerElement: bytesPerElement)
    default:
        throw NetworkError.unknownFamily(a.family)
    }
}
