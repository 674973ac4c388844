// The optimizer interface and stepping a whole `ParameterStore`.
//
// One training step:
//
//   optimizer.learningRate = schedule.learningRate(at: optimizer.stepCount)
//   let norm = clipGradientNorm(&store, maxNorm: 5)      // optional
//   optimizer.step(&store)                               // beginStep() + update(...) per parameter
//   (zero the gradients: an explicit step of the caller)
//
// State (momentum, Adam moments) is created on the first update of each parameter index and
// keyed by that index, so parameters must keep their index and length between steps.

/// A first-order optimizer over flat Float parameters.
public protocol Optimizer: AnyObject {
    /// The learning rate used by the next `update`; set it from a schedule before each step.
    var learningRate: Float { get set }
    /// Number of `beginStep()` calls so far (Adam's `t`).
    var stepCount: Int { get }
    /// Starts a step: increments `stepCount`. Call once per step, before the `update`s.
    func beginStep()
    /// Updates one parameter in place from its gradient.
    ///
    /// - Precondition: `beginStep()` was called; `values.count == gradients.count`, and that
    ///   count is the same on every call for this `index`.
    func update(parameter index: Int, values: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>)
}

extension Optimizer {
    /// One full step: `beginStep()`, then `update` for every parameter of `store`.
    public func step<Store: ParameterStore>(_ store: inout Store) {
        beginStep()
        for i in 0..<store.parameterCount {
            store.withParameter(i) { values, gradients in
                update(parameter: i, values: values, gradients: UnsafeBufferPointer(gradients))
            }
        }
    }
}

/// Shared bookkeeping for per-parameter state buffers.
struct OptimizerStateBuffers {
    private var buffers: [Int: [Float]] = [:]

    /// Calls `body` with the buffer of `index`, creating it zero-filled on first use.
    /// `fresh` tells whether it was just created.
    mutating func with<R>(_ index: Int, count: Int, _ body: (UnsafeMutableBufferPointer<Float>, _ fresh: Bool) -> R) -> R {
        let fresh = buffers[index] == nil
        if fresh { buffers[index] = [Float](repeating: 0, count: count) }
        precondition(buffers[index]!.count == count,
                     "optimizer: parameter \(index) changed length from \(buffers[index]!.count) to \(count)")
        return buffers[index]!.withUnsafeMutableBufferPointer { body($0, fresh) }
    }

    /// The buffer of `index`, if any (for tests and inspection).
    func buffer(_ index: Int) -> [Float]? { buffers[index] }

    mutating func removeAll() { buffers.removeAll() }
}
