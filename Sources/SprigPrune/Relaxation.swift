// The two-temperature relaxation of differentiable architecture pruning
// (Colombo and Gao, 2021; docs/method.md).
//
//   θ_u      architecture logit of unit u
//   p_u      = σ(θ_u / T1)                                 inclusion probability
//   z_u      = σ((logit(p_u) + log v − log(1 − v)) / T2)   relaxed Bernoulli gate, v ~ U(0, 1)
//            = σ((θ_u / T1 + ℓ) / T2),  ℓ = log v − log(1 − v)   (logit(σ(a)) = a)
//
//   ∂p/∂θ = p (1 − p) / T1
//   ∂z/∂θ = z (1 − z) / (T1 · T2)
//
// As T1, T2 → 0 the gate becomes the hard decision [θ + T1·ℓ > 0], and the
// relaxed problem becomes the discrete one.

import Foundation

/// σ(x) = 1 / (1 + e^−x), evaluated without overflow for any finite x.
@inline(__always)
public func sigmoid(_ x: Double) -> Double {
    x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
}

/// A temperature annealed geometrically from `start` to `end` over `steps`.
///
/// Example: start 1, end 0.01, 100 steps → T(0) = 1, T(50) = 0.1, T(100) = 0.01.
public struct GeometricSchedule: Equatable, Sendable {
    public var start: Double
    public var end: Double
    public var steps: Int

    public init(start: Double, end: Double, steps: Int) {
        self.start = start
        self.end = end
        self.steps = max(steps, 1)
    }

    /// The temperature at `step` (clamped to `0 ... steps`).
    public func value(at step: Int) -> Double {
        let t = Double(min(max(step, 0), steps)) / Double(steps)
        return start * pow(end / start, t)
    }
}

/// Architecture logits of a set of units and their relaxed gates.
public struct GateRelaxation: Sendable {
    /// θ, one per unit.
    public var logits: [Double]

    public init(count: Int, initialLogit: Double = 3) {
        logits = [Double](repeating: initialLogit, count: count)
    }

    public init(logits: [Double]) {
        self.logits = logits
    }

    /// p_u = σ(θ_u / T1).
    public func probabilities(t1: Double) -> [Double] {
        logits.map { sigmoid($0 / t1) }
    }

    /// ∂p_u/∂θ_u = p(1 − p) / T1.
    public func probabilityDerivatives(t1: Double) -> [Double] {
        probabilities(t1: t1).map { $0 * (1 - $0) / t1 }
    }

    /// Relaxed gates for the given logistic noise ℓ_u = log v − log(1 − v), and ∂z/∂θ.
    public func gates(t1: Double, t2: Double, noise: [Double]) -> (gates: [Double], derivatives: [Double]) {
        var z = [Double](repeating: 0, count: logits.count)
        var dz = z
        for u in logits.indices {
            let g = sigmoid((logits[u] / t1 + noise[u]) / t2)
            z[u] = g
            dz[u] = g * (1 - g) / (t1 * t2)
        }
        return (z, dz)
    }

    /// Logistic noise ℓ = log v − log(1 − v) for v drawn uniformly in (0, 1) from `next`.
    public static func logisticNoise(count: Int, uniform next: () -> Double) -> [Double] {
        (0..<count).map { _ in
            let v = min(max(next(), 1e-12), 1 - 1e-12)
            return log(v) - log(1 - v)
        }
    }
}
