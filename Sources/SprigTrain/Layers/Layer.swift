// Layer: what every trainer layer looks like, and Parameter: a trained tensor with its gradient.
//
// Contract shared by every layer in this folder:
//   - forward(x, training:) computes y and saves what backward needs (a reference to x, an
//     index map, a scratch buffer). Tensors are values, so saving x never copies it.
//   - backward(dy) pairs with the most recent forward. It returns dL/dx and ADDS dL/dθ into
//     each parameter's `grad`. Zeroing is an explicit `zeroGrad()` step, so gradients can be
//     accumulated over several forward/backward pairs.
//   - Layers are classes (they hold saved state) and compose by hand: a residual block is
//     `add.forward(conv2.forward(...), shortcut)`, then backward in reverse order.
//   - Layers with more than one input (Add, Gate) keep the Layer shape where it fits and offer
//     a two-input API beside it.

/// A trained tensor, its gradient (same shape) and a name such as `"weight"` or `"bias"`.
///
/// A class, so that a layer and an optimizer see the same storage.
public final class Parameter {
    /// PyTorch-style name inside its layer: `weight`, `bias`. Containers prefix it (`3.weight`).
    public let name: String
    public var value: Tensor
    /// dL/dvalue, accumulated by backward.
    public var grad: Tensor

    public init(name: String, value: Tensor) {
        self.name = name
        self.value = value
        self.grad = Tensor(zeros: value.shape)
    }

    /// Sets `grad` to zero.
    public func zeroGrad() { grad.zero() }
}

/// A fixed, numbered list of parameters in the shape optimizers want: index `i` gives the values
/// and the gradient of parameter `i` as flat Float buffers. It matches `ParameterStore`
/// (Optim/ParameterStore.swift) member for member, so conformance is one empty extension.
///
/// ```
/// var store = ParameterList(net.parameters)
/// optimizer.step(&store)
/// ```
public struct ParameterList {
    public var parameters: [Parameter]

    public init(_ parameters: [Parameter]) { self.parameters = parameters }

    public var parameterCount: Int { parameters.count }

    /// Calls `body` with the values and the gradient of parameter `index` (same count).
    public mutating func withParameter<R>(
        _ index: Int,
        _ body: (_ values: UnsafeMutableBufferPointer<Float>, _ gradients: UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        let p = parameters[index]
        return try p.value.withUnsafeMutableBufferPointer { v in
            try p.grad.withUnsafeMutableBufferPointer { g in try body(v, g) }
        }
    }
}

/// One differentiable step of a network: see the contract at the top of Layer.swift.
public protocol Layer: AnyObject {
    /// Computes the output and saves what `backward` needs.
    ///
    /// - Parameter training: selects batch statistics (BatchNorm2D) and masking (Dropout);
    ///   other layers ignore it.
    func forward(_ x: Tensor, training: Bool) -> Tensor

    /// Returns dL/dx for the most recent `forward` and adds dL/dθ into the parameters' `grad`.
    func backward(_ dy: Tensor) -> Tensor

    /// Trained tensors, in a fixed order.
    var parameters: [Parameter] { get }
}

extension Layer {
    /// Sets every parameter's gradient to zero.
    public func zeroGrad() {
        for p in parameters { p.zeroGrad() }
    }
}

// MARK: - Helpers shared by the layers

/// `sums[j] += Σ_i rows[i*columns + j]`: bias gradients and per-channel reductions.
///
/// Partial sums are taken in Float over blocks of 64 rows and added into the Float result block
/// by block, which keeps the error near that of pairwise summation at Float speed.
func addColumnSums(_ rows: UnsafePointer<Float>, rowCount: Int, columns: Int, into sums: UnsafeMutablePointer<Float>) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: columns) { partialBuffer in
        let partial = partialBuffer.baseAddress!
        var start = 0
        while start < rowCount {
            let end = min(rowCount, start + 64)
            partial.update(repeating: 0, count: columns)
            for i in start..<end {
                let row = rows + i * columns
                for j in 0..<columns { partial[j] += row[j] }
            }
            for j in 0..<columns { sums[j] += partial[j] }
            start = end
        }
    }
}

/// Elementwise loops: `body` gets disjoint element ranges covering `0..<count`, split over
/// threads when the tensor is large enough to repay the dispatch (`ParallelThresholds.values`).
@inline(__always)
func forEachChunk(_ count: Int, threads: Int?, _ body: (Range<Int>) -> Void) {
    parallelFor(count, threads: threadsFor(values: count, resolvedThreads(threads)), body)
}

/// Threads for a layer: its own setting, else `GEMM.defaultThreads`.
@inline(__always)
func resolvedThreads(_ own: Int?) -> Int { max(1, own ?? GEMM.defaultThreads) }

/// The value of a saved tensor, or a clear failure when backward runs before forward.
@inline(__always)
func saved<T>(_ value: T?, _ layer: StaticString) -> T {
    guard let value else { preconditionFailure("\(layer).backward called before forward") }
    return value
}
