// The pruning space of any network description, read off its plan
// (Sources/SprigTrain/Networks/NetworkPlan.swift says how groups are formed).
//
// Every conv, depthwise conv and Dense (the head too) is a layer of the cost model:
// its input side is its input's group (or the fixed channel count of the image),
// its output side its group (or the head's classes). A Dense after Flatten reads
// `spread` values per input channel, its kernel area in the cost model. Pixels are
// the layer's input and output H·W, so the model's params and MACs are the compiled
// blob's (biases counted everywhere: a BatchNorm folds into one; distinct per-channel
// input statistics add the blob's 1×1 depthwise normalisation op).

import SprigTrain

/// The pruning space (groups, and the layers between them with their pixel counts) of a network.
public func pruningSpace(for a: Architecture, bytesPerElement: Int = 1) throws -> PruningSpace {
    let plan = try a.plan()
    return pruningSpace(plan, bytesPerElement: bytesPerElement)
}

/// The pruning space of a walked description.
public func pruningSpace(_ plan: NetworkPlan, bytesPerElement: Int = 1) -> PruningSpace {
    var layers: [PruningSpace.Layer] = []
    let input = plan.input
    if input.hasDistinctChannelStatistics {
        // The compiled blob normalises distinct per-channel statistics with a 1×1 depthwise op.
        layers.append(.init(name: "normalize", input: .fixed(input.channels), output: .fixed(input.channels), kernelArea: 1,
                            inputPixels: input.height * input.width, outputPixels: input.height * input.width, depthwise: true))
    }
    for l in plan.layers {
        let input: PruningSpace.Side = l.inputGroup.map { .group($0) } ?? .fixed(l.input[l.input.count - 1] / max(l.spread, 1))
        let output: PruningSpace.Side = l.outputGroup.map { .group($0) } ?? .fixed(l.output[l.output.count - 1])
        let inPixels = l.input.count == 3 ? l.input[0] * l.input[1] : 1
        let outPixels = l.output.count == 3 ? l.output[0] * l.output[1] : 1
        switch l.kind {
        case .conv(let c):
            layers.append(.init(name: l.name, input: input, output: output, kernelArea: c.kernel * c.kernel,
                                inputPixels: inPixels, outputPixels: outPixels))
        case .depthwise(let d):
            layers.append(.init(name: l.name, input: input, output: output, kernelArea: d.kernel * d.kernel,
                                inputPixels: inPixels, outputPixels: outPixels, depthwise: true))
        case .dense:
            layers.append(.init(name: l.name, input: input, output: output, kernelArea: l.spread,
                                inputPixels: l.spread, outputPixels: 1))
        default:
            continue
        }
    }
    return PruningSpace(groups: plan.groups.map { .init(name: $0.name, size: $0.size) }, layers: layers,
                        bytesPerElement: bytesPerElement)
}
