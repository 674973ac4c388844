// Learning-rate schedules, as pure functions of the 0-based step index
// (the number of optimizer steps already taken, i.e. `optimizer.stepCount` before the step).

import Foundation

/// A learning rate as a function of the step index.
///
/// ```swift
/// let schedule = LearningRateSchedule.cosine(base: 0.1, warmupSteps: 100, totalSteps: 1000)
/// optimizer.learningRate = schedule.learningRate(at: optimizer.stepCount)
/// ```
public enum LearningRateSchedule: Equatable, Sendable {
    /// `base` at every step.
    case constant(Float)
    /// `base · gamma^⌊step / every⌋`: multiplied by `gamma` every `every` steps.
    case step(base: Float, gamma: Float, every: Int)
    /// Linear warm-up then cosine decay:
    /// - `step < warmupSteps`: `base · (step + 1) / warmupSteps` (so step 0 is not zero);
    /// - then with `p = (step − warmupSteps) / (totalSteps − warmupSteps)` clamped to `0...1`:
    ///   `minimum + (base − minimum) · (1 + cos(π·p)) / 2`, reaching `minimum` at `totalSteps`
    ///   and staying there.
    case cosine(base: Float, warmupSteps: Int, totalSteps: Int, minimum: Float = 0)

    /// The learning rate for the step with 0-based index `step` (negative steps count as 0).
    public func learningRate(at step: Int) -> Float {
        let s = max(step, 0)
        switch self {
        case .constant(let lr):
            return lr
        case .step(let base, let gamma, let every):
            let k = every > 0 ? s / every : 0
            return Float(Double(base) * pow(Double(gamma), Double(k)))
        case .cosine(let base, let warmup, let total, let minimum):
            if s < warmup {
                return Float(Double(base) * Double(s + 1) / Double(warmup))
            }
            let span = max(total - warmup, 1)
            let p = min(Double(s - warmup) / Double(span), 1)
            return Float(Double(minimum) + (Double(base) - Double(minimum)) * (1 + cos(Double.pi * p)) / 2)
        }
    }
}
