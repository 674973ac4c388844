// Finite differences: the oracle for every hand-written backward pass.
//
// A test writes the scalar loss as a closure of one flat parameter vector (an input, a weight,
// a gate) and compares the analytic gradient its layer produced with central differences:
//
//   g_i ≈ (L(x + ε e_i) − L(x − ε e_i)) / (2ε)         error O(ε² · L''')
//
// Everything here is Double. For Float parameters the perturbed value is rounded to Float (that
// is what the layer sees) and the quotient divides by the step actually taken, not by 2ε, so the
// rounding of x ± ε costs nothing. The loss closure should sum in Double (for example
// L = Σ r_i·y_i with a fixed random r), which leaves the layer's own Float rounding as the noise
// floor: roughly (ulp of the loss) / ε, hence a per-op ε.
//
// Kinks (ReLU at 0, a tie inside a max-pool window) make the central difference meaningless
// there. Tests skip such points explicitly; `oneSidedGap` also flags them: the forward and
// backward one-sided quotients agree to O(ε·L'') on smooth ground and differ by the jump in
// slope at a kink.

/// A numeric gradient with, per coordinate, the disagreement of its one-sided quotients.
public struct NumericGradient {
    /// Central-difference estimate of dL/dx_i.
    public var central: [Double]
    /// |forward quotient − backward quotient|: O(ε·|L''|) where L is smooth, ≈ the slope jump at a kink.
    public var oneSidedGap: [Double]
}

/// Absolute and relative tolerance: coordinate i passes when
/// `|analytic − numeric| ≤ absolute + relative · max(|analytic|, |numeric|)`.
public struct GradientTolerance: Sendable {
    public var absolute: Double
    public var relative: Double
    public init(absolute: Double, relative: Double) {
        self.absolute = absolute
        self.relative = relative
    }
}

/// The outcome of comparing an analytic gradient with a numeric one.
public struct GradientCheckReport: CustomStringConvertible {
    /// Name of the checked tensor (for messages).
    public var label: String
    /// Coordinates compared.
    public var checked: Int
    /// Coordinates left out by the skip rule (kinks).
    public var skipped: Int
    /// Coordinates that exceeded the tolerance.
    public var failures: [Int]
    /// The coordinate with the largest error relative to its allowance, and its values.
    public var worstIndex: Int?
    public var worstAnalytic: Double = 0
    public var worstNumeric: Double = 0
    /// Largest `|analytic − numeric| / (absolute + relative · max(|a|, |n|))`; ≤ 1 passes.
    public var worstRatio: Double = 0

    public var passed: Bool { failures.isEmpty && checked > 0 }

    public var description: String {
        var s = "\(label): checked \(checked), skipped \(skipped), failed \(failures.count)"
        if let worstIndex {
            s += "; worst [\(worstIndex)] analytic \(worstAnalytic) numeric \(worstNumeric) (ratio \(worstRatio))"
        }
        return s
    }
}

/// Central-difference gradients and their comparison with analytic ones.
public enum FiniteDifference {
    /// Numeric gradient of `loss` at `x`, perturbing each coordinate by ±`epsilon`.
    ///
    /// ```
    /// let g = FiniteDifference.gradient(at: [1, 2], epsilon: 1e-4) { v in v[0] * v[0] + 3 * v[1] }
    /// // g.central ≈ [2, 3]
    /// ```
    ///
    /// - Complexity: `2·x.count + 1` evaluations of `loss`.
    public static func gradient(at x: [Double], epsilon: Double, loss: ([Double]) -> Double) -> NumericGradient {
        precondition(epsilon > 0, "FiniteDifference: epsilon must be positive")
        var v = x
        let f0 = loss(v)
        var result = NumericGradient(central: [], oneSidedGap: [])
        for i in x.indices {
            v[i] = x[i] + epsilon
            let fp = loss(v)
            v[i] = x[i] - epsilon
            let fm = loss(v)
            v[i] = x[i]
            result.central.append((fp - fm) / (2 * epsilon))
            result.oneSidedGap.append(abs((fp - f0) / epsilon - (f0 - fm) / epsilon))
        }
        return result
    }

    /// Numeric gradient for a Float vector: `x_i ± epsilon` is rounded to Float, and each
    /// quotient divides by the step actually taken (computed in Double).
    ///
    /// - Precondition: `epsilon` is large enough that `x_i ± epsilon != x_i` in Float.
    public static func gradient(at x: [Float], epsilon: Float, loss: ([Float]) -> Double) -> NumericGradient {
        precondition(epsilon > 0, "FiniteDifference: epsilon must be positive")
        var v = x
        let f0 = loss(v)
        var result = NumericGradient(central: [], oneSidedGap: [])
        for i in x.indices {
            let plus = x[i] + epsilon, minus = x[i] - epsilon
            precondition(plus != x[i] && minus != x[i], "FiniteDifference: epsilon \(epsilon) vanishes at x[\(i)] = \(x[i])")
            v[i] = plus
            let fp = loss(v)
            v[i] = minus
            let fm = loss(v)
            v[i] = x[i]
            let up = Double(plus) - Double(x[i]), down = Double(x[i]) - Double(minus)
            result.central.append((fp - fm) / (up + down))
            result.oneSidedGap.append(abs((fp - f0) / up - (f0 - fm) / down))
        }
        return result
    }

    /// Compares `analytic` with `numeric.central` coordinate by coordinate.
    ///
    /// - Parameters:
    ///   - skip: coordinates to leave out (points within ε of a kink).
    /// - Precondition: equal lengths.
    public static func compare(_ label: String, analytic: [Double], numeric: NumericGradient,
                               tolerance: GradientTolerance, skip: (Int) -> Bool = { _ in false }) -> GradientCheckReport {
        precondition(analytic.count == numeric.central.count,
                     "FiniteDifference.compare(\(label)): \(analytic.count) analytic values, \(numeric.central.count) numeric")
        var report = GradientCheckReport(label: label, checked: 0, skipped: 0, failures: [], worstIndex: nil)
        for i in analytic.indices {
            if skip(i) {
                report.skipped += 1
                continue
            }
            report.checked += 1
            let a = analytic[i], n = numeric.central[i]
            let allowance = tolerance.absolute + tolerance.relative * max(abs(a), abs(n))
            let ratio = abs(a - n) / allowance
            if !(ratio <= 1) { report.failures.append(i) }
            if !(ratio <= report.worstRatio) || report.worstIndex == nil {
                report.worstRatio = ratio.isNaN ? .infinity : ratio
                report.worstIndex = i
                report.worstAnalytic = a
                report.worstNumeric = n
            }
        }
        return report
    }

    /// `compare` for a Float analytic gradient.
    public static func compare(_ label: String, analytic: [Float], numeric: NumericGradient,
                               tolerance: GradientTolerance, skip: (Int) -> Bool = { _ in false }) -> GradientCheckReport {
        compare(label, analytic: analytic.map(Double.init), numeric: numeric, tolerance: tolerance, skip: skip)
    }
}
