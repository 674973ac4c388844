// Dropout: zero each value with probability p while training, scale the rest by 1/(1−p).
//
//   x, y, mask   any shape
//   train:  mask = (u ≥ p) / (1 − p) with u ~ U[0,1) from the layer's SprigRNG;  y = x · mask
//   eval:   y = x
//   backward   dx = dy · mask (train), dx = dy (eval)

/// Inverted dropout with its own seeded generator, so a seed reproduces the masks.
public final class Dropout: Layer {
    /// Probability of dropping a value, in `[0, 1)`.
    public let rate: Float
    /// The generator the masks are drawn from; advances on every training-mode forward.
    public var rng: SprigRNG

    private var mask: [Float] = []
    private var masked = false
    private var shape: [Int]?

    public init(rate: Float, seed: UInt64) {
        precondition(rate >= 0 && rate < 1, "Dropout: rate must be in [0, 1), got \(rate)")
        self.rate = rate
        rng = SprigRNG(seed: seed)
    }

    public var parameters: [Parameter] { [] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        shape = x.shape
        masked = training && rate > 0
        guard masked else { return x }
        let keep = 1 / (1 - rate)
        if mask.count != x.count { mask = [Float](repeating: 0, count: x.count) }
        var y = Tensor(uninitializedShape: x.shape)
        mask.withUnsafeMutableBufferPointer { mp in
            for i in mp.indices { mp[i] = rng.nextFloat() >= rate ? keep : 0 }
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    for i in 0..<xp.count { yp[i] = xp[i] * mp[i] }
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let s = saved(shape, "Dropout")
        precondition(dy.shape == s, "Dropout.backward: expected dy \(s), got \(dy.shape)")
        guard masked else { return dy }
        var dx = Tensor(uninitializedShape: s)
        mask.withUnsafeBufferPointer { mp in
            dy.withUnsafeBufferPointer { dyp in
                dx.withUnsafeMutableBufferPointer { dxp in
                    for i in 0..<dyp.count { dxp[i] = dyp[i] * mp[i] }
                }
            }
        }
        return dx
    }
}
