// Weight initialisation. Conv2D and Dense draw their weights here at construction.

/// He (Kaiming) initialisation, as in He et al. 2015 and PyTorch's `kaiming_normal_`
/// with `mode="fan_in"`, `nonlinearity="relu"`.
public enum Init {
    /// Normal values with mean 0 and standard deviation `sqrt(2 / fanIn)` (gain √2 for ReLU).
    ///
    /// fan_in is the number of inputs that feed one output: `In` for Dense `[Out][In]`,
    /// `KH·KW·Cin` for Conv2D `[KH][KW][Cin][Cout]`.
    ///
    /// - Precondition: `fanIn > 0`.
    public static func heNormal(shape: [Int], fanIn: Int, rng: inout SprigRNG) -> Tensor {
        precondition(fanIn > 0, "Init.heNormal: fanIn must be positive, got \(fanIn)")
        let std = (2 / Float(fanIn)).squareRoot()
        var t = Tensor(uninitializedShape: shape)
        t.withUnsafeMutableBufferPointer { p in
            for i in p.indices { p[i] = std * rng.normal() }
        }
        return t
    }
}
