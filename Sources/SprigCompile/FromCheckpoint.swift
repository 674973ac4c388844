// From a trained network (a Sequential of trainer layers) to lowering steps,
// and the figures the compiler reports.

import SprigRuntime
import SprigTrain

/// The lowering steps of a chain of trainer layers (nested chains are flattened;
/// Dropout is the identity at inference).
public func loweringSteps(_ network: Sequential) throws -> [LoweringStep] {
    var steps: [LoweringStep] = []
    for layer in network.layers {
        switch layer {
        case let l as Conv2D: steps.append(.conv(l))
        case let l as DepthwiseConv2D: steps.append(.depthwiseConv(l))
        case let l as BatchNorm2D: steps.append(.batchNorm(l))
        case is ReLU: steps.append(.relu)
        case is ReLU6: steps.append(.relu6)
        case let l as MaxPool2D: steps.append(.maxPool(l))
        case let l as AvgPool2D: steps.append(.avgPool(l))
        case is GlobalAveragePool: steps.append(.globalAveragePool)
        case is Flatten: steps.append(.flatten)
        case let l as Dense: steps.append(.dense(l))
        case is Dropout: continue
        case let l as Sequential: steps += try loweringSteps(l)
        case let l as Residual:
            steps.append(.residual(body: try loweringSteps(l.body), shortcut: try loweringSteps(l.shortcut)))
            switch l.activation {
            case .relu: steps.append(.relu)
            case .none: break  // an inverted residual: a ReLU6 layer after it, if any, fuses into the Add
            }
        default: throw LoweringError(description: "layer \(type(of: layer)) cannot be compiled")
        }
    }
    return steps
}

