// How optimizers see parameters: numbered flat Float buffers with a gradient of the same
// length. Any model can conform (the Tensor type included) without this folder knowing it.

/// A numbered set of parameters, each a flat `Float` buffer with a gradient buffer of the
/// same length. Indices must be stable across steps: optimizer state is keyed by them.
public protocol ParameterStore {
    /// Number of parameter tensors; indices are `0..<parameterCount`.
    var parameterCount: Int { get }

    /// Calls `body` with the values and the gradient of parameter `index`.
    ///
    /// - Precondition: both buffers have the same count, the same on every call for a given index.
    mutating func withParameter<R>(
        _ index: Int,
        _ body: (_ values: UnsafeMutableBufferPointer<Float>, _ gradients: UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R
}

/// The simplest `ParameterStore`: arrays of arrays. Used by tests and small tools.
public struct ArrayParameterStore: ParameterStore, Equatable, Sendable {
    public var values: [[Float]]
    public var gradients: [[Float]]

    /// Zero gradients shaped like `values`.
    public init(values: [[Float]]) {
        self.values = values
        self.gradients = values.map { [Float](repeating: 0, count: $0.count) }
    }

    /// - Precondition: `gradients[i].count == values[i].count` for every `i`.
    public init(values: [[Float]], gradients: [[Float]]) {
        precondition(values.count == gradients.count && zip(values, gradients).allSatisfy { $0.count == $1.count },
                     "ArrayParameterStore: values and gradients must have matching shapes")
        self.values = values
        self.gradients = gradients
    }

    public var parameterCount: Int { values.count }

    public mutating func withParameter<R>(
        _ index: Int,
        _ body: (UnsafeMutableBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try values[index].withUnsafeMutableBufferPointer { v in
            try gradients[index].withUnsafeMutableBufferPointer { g in try body(v, g) }
        }
    }
}
