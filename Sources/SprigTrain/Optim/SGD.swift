// Stochastic gradient descent with momentum, Nesterov momentum and coupled L2 weight decay.
// The update is PyTorch's `torch.optim.SGD` (dampening 0):
//
//   g ← g + λ·p                          (weight decay λ, coupled: part of the gradient)
//   b ← g                 on the first step of a parameter
//   b ← μ·b + g           afterwards     (momentum μ)
//   d ← g + μ·b  (Nesterov)  or  d ← b   (μ = 0: d ← g, no buffer kept)
//   p ← p − η·d
//
// Worked example, μ = 0.9, η = 0.1, p = 1, g = 0.5 at every step:
//   step 1: b = 0.5,            p = 1 − 0.05       = 0.95
//   step 2: b = 0.9·0.5 + 0.5 = 0.95, p = 0.95 − 0.095 = 0.855

/// SGD with optional (Nesterov) momentum and L2 weight decay.
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    public private(set) var stepCount = 0
    private var momentumBuffers = OptimizerStateBuffers()

    /// - Precondition: `learningRate >= 0`, `momentum >= 0`, `weightDecay >= 0`;
    ///   Nesterov needs `momentum > 0`.
    public init(learningRate: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        precondition(learningRate >= 0 && momentum >= 0 && weightDecay >= 0, "SGD: negative hyperparameter")
        precondition(!nesterov || momentum > 0, "SGD: Nesterov momentum needs momentum > 0")
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
    }

    public func beginStep() { stepCount += 1 }

    public func update(parameter index: Int, values: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>) {
        precondition(stepCount > 0, "SGD.update before beginStep()")
        precondition(values.count == gradients.count, "SGD: parameter \(index) has \(values.count) values but \(gradients.count) gradients")
        let (lr, mu, wd) = (learningRate, momentum, weightDecay)
        guard mu != 0 else {
            for i in 0..<values.count { values[i] -= lr * (gradients[i] + wd * values[i]) }
            return
        }
        let nesterov = self.nesterov
        momentumBuffers.with(index, count: values.count) { buffer, fresh in
            let count = values.count
            let v = values.baseAddress!, gp = gradients.baseAddress!, bp = buffer.baseAddress!
            // Blocks of 16 values, split over the trainer's threads when the parameter is large
            // (each element is updated by one thread with the same operations whatever the split).
            let blocks = (count + 15) / 16
            parallelFor(blocks, threads: threadsFor(values: 4 * count, GEMM.defaultThreads)) { range in
                let end = min(count, range.upperBound * 16)
                // 16 values at a time, then one by one: the same operations in the same order per
                // element (Swift does not fuse them), so the same bits as the scalar loop alone.
                var i = range.lowerBound * 16
                while i + 16 <= end {
                    let vi = UnsafeMutableRawPointer(v + i), gi = UnsafeRawPointer(gp + i), bi = UnsafeMutableRawPointer(bp + i)
                    let value = vi.loadUnaligned(as: SIMD16<Float>.self)
                    let g = gi.loadUnaligned(as: SIMD16<Float>.self) + wd * value
                    let b = fresh ? g : mu * bi.loadUnaligned(as: SIMD16<Float>.self) + g
                    bi.storeBytes(of: b, as: SIMD16<Float>.self)
                    vi.storeBytes(of: value - lr * (nesterov ? g + mu * b : b), as: SIMD16<Float>.self)
                    i += 16
                }
                while i < end {
                    let g = gp[i] + wd * v[i]
                    let b = fresh ? g : mu * bp[i] + g
                    bp[i] = b
                    v[i] -= lr * (nesterov ? g + mu * b : b)
                    i += 1
                }
            }
        }
    }

    /// The momentum buffer of a parameter, `nil` before its first update or without momentum.
    public func momentumBuffer(parameter index: Int) -> [Float]? { momentumBuffers.buffer(index) }

    /// Forgets all momentum and the step count.
    public func reset() { momentumBuffers.removeAll(); stepCount = 0 }
}
