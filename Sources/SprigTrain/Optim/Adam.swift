// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), as PyTorch computes them.
//
// At step t (1-based), for each element, with lr η, betas β1 β2, epsilon ε, weight decay λ:
//
//   Adam:   g ← g + λ·p                  (coupled L2: part of the gradient)
//   AdamW:  p ← p·(1 − η·λ)              (decoupled: applied to the weights directly)
//   m ← β1·m + (1 − β1)·g
//   v ← β2·v + (1 − β2)·g²
//   p ← p − (η / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
//
// The bias corrections 1 − β^t are computed in Double, like PyTorch's Python scalars.
//
// Worked example, η = 0.1, β1 = 0.9, β2 = 0.999, ε = 1e-8, p = 1, g = 0.5, t = 1:
//   m = 0.05, v = 0.00025; m̂ = 0.05/0.1 = 0.5, √v̂ = √(0.00025/0.001) = 0.5
//   p = 1 − 0.1 · 0.5/(0.5 + 1e-8) ≈ 0.9   (the first Adam step moves every weight by ≈ η)

import Foundation

/// Adam with optional coupled (Adam) or decoupled (AdamW) weight decay.
public final class Adam: Optimizer {
    public var learningRate: Float
    /// Kept in Double, as PyTorch keeps them as Python floats: `1 − β` is then exact to
    /// Double precision before the cast (Float(0.999) would make 1 − β2 off by 1.3e-5).
    public let beta1: Double
    public let beta2: Double
    public let epsilon: Float
    public let weightDecay: Float
    /// `true`: AdamW (decay applied to the weights); `false`: Adam with L2 added to the gradient.
    public let decoupledWeightDecay: Bool
    public private(set) var stepCount = 0
    private var firstMoments = OptimizerStateBuffers()
    private var secondMoments = OptimizerStateBuffers()

    /// - Precondition: `learningRate >= 0`, betas in `0..<1`, `epsilon > 0`, `weightDecay >= 0`.
    public init(learningRate: Float = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0, decoupledWeightDecay: Bool = false) {
        precondition(learningRate >= 0, "Adam: negative learning rate")
        precondition((0..<1).contains(beta1) && (0..<1).contains(beta2), "Adam: betas must be in [0, 1)")
        precondition(epsilon > 0 && weightDecay >= 0, "Adam: epsilon must be positive, weight decay non-negative")
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
    }

    /// AdamW: Adam with decoupled weight decay (PyTorch's default λ = 0.01).
    public static func adamW(learningRate: Float = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999,
                             epsilon: Float = 1e-8, weightDecay: Float = 0.01) -> Adam {
        Adam(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
             weightDecay: weightDecay, decoupledWeightDecay: true)
    }

    public func beginStep() { stepCount += 1 }

    public func update(parameter index: Int, values: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>) {
        precondition(stepCount > 0, "Adam.update before beginStep()")
        precondition(values.count == gradients.count, "Adam: parameter \(index) has \(values.count) values but \(gradients.count) gradients")
        let t = Double(stepCount)
        let stepSize = Float(Double(learningRate) / (1 - pow(beta1, t)))
        let correction2Sqrt = Float((1 - pow(beta2, t)).squareRoot())
        let (b1, c1, b2, c2) = (Float(beta1), Float(1 - beta1), Float(beta2), Float(1 - beta2))
        let (eps, wd, lr) = (epsilon, weightDecay, learningRate)
        let decoupled = decoupledWeightDecay
        firstMoments.with(index, count: values.count) { m, _ in
            secondMoments.with(index, count: values.count) { v, _ in
                for i in 0..<values.count {
                    var g = gradients[i]
                    if decoupled { values[i] *= 1 - lr * wd } else { g += wd * values[i] }
                    m[i] = b1 * m[i] + c1 * g
                    v[i] = b2 * v[i] + c2 * g * g
                    values[i] -= stepSize * m[i] / (v[i].squareRoot() / correction2Sqrt + eps)
                }
            }
        }
    }

    /// First and second moment of a parameter, `nil` before its first update.
    public func moments(parameter index: Int) -> (m: [Float], v: [Float])? {
        guard let m = firstMoments.buffer(index), let v = secondMoments.buffer(index) else { return nil }
        return (m, v)
    }

    /// Forgets all moments and the step count.
    public func reset() { firstMoments.removeAll(); secondMoments.removeAll(); stepCount = 0 }
}
