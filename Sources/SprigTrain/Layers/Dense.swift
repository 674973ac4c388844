// Dense: y = x·Wᵀ + b.
//
//   x   [N][In]        (any rank: every axis but the last is batch; flattened to N rows)
//   W   [Out][In]      the device runtime's layout, copied to the blob as is
//   b   [Out]
//   y   [N][Out]
//
//   forward    y  = x · Wᵀ (+ b)          sgemm(transB)     bias pre-filled, beta 1
//   backward   dW += dyᵀ · x              sgemm(transA)     beta 1: accumulates
//              db += Σ_n dy[n]
//              dx  = dy · W               sgemm             skipped when !computesInputGradient

/// A fully connected layer with weight `[Out][In]` and optional bias `[Out]`.
///
/// ```
/// var rng = SprigRNG(seed: 1)
/// let fc = Dense(inputDimensions: 512, outputDimensions: 256, rng: &rng)
/// let y = fc.forward(x, training: true)      // x [64][512] -> y [64][256]
/// let dx = fc.backward(dy)                   // adds into fc.weight.grad, fc.bias!.grad
/// ```
public final class Dense: Layer {
    public let inputDimensions: Int
    public let outputDimensions: Int
    /// `[Out][In]`, He-normal at init.
    public let weight: Parameter
    /// `[Out]`, zero at init; nil when built with `bias: false`.
    public let bias: Parameter?
    /// When false, backward skips dL/dx (the first layer of a net) and returns an empty `[0]` tensor.
    public var computesInputGradient = true
    /// Threads for the GEMMs; nil uses `GEMM.defaultThreads`.
    public var threads: Int?

    private var input: Tensor?

    public init(inputDimensions: Int, outputDimensions: Int, bias: Bool = true, rng: inout SprigRNG) {
        precondition(inputDimensions > 0 && outputDimensions > 0,
                     "Dense: dimensions must be positive, got \(inputDimensions)->\(outputDimensions)")
        self.inputDimensions = inputDimensions
        self.outputDimensions = outputDimensions
        weight = Parameter(name: "weight",
                           value: Init.heNormal(shape: [outputDimensions, inputDimensions], fanIn: inputDimensions, rng: &rng))
        self.bias = bias ? Parameter(name: "bias", value: Tensor(zeros: [outputDimensions])) : nil
    }

    public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank >= 1 && x.shape.last == inputDimensions,
                     "Dense.forward: expected [..., \(inputDimensions)], got \(x.shape)")
        let rows = x.count / inputDimensions
        let outDim = outputDimensions, inDim = inputDimensions
        input = x
        var y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outDim])
        let threads = resolvedThreads(self.threads)
        y.withUnsafeMutableBufferPointer { yp in
            let yb = yp.baseAddress!
            var beta: Float = 0
            if let bias {
                bias.value.withUnsafeBufferPointer { bp in
                    for r in 0..<rows { (yb + r * outDim).update(from: bp.baseAddress!, count: outDim) }
                }
                beta = 1
            }
            x.withUnsafeBufferPointer { xp in
                weight.value.withUnsafeBufferPointer { wp in
                    sgemm(transA: false, transB: true, m: rows, n: outDim, k: inDim,
                          alpha: 1, a: xp.baseAddress!, lda: inDim, b: wp.baseAddress!, ldb: inDim,
                          beta: beta, c: yb, ldc: outDim, threads: threads)
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let x = saved(input, "Dense")
        let rows = x.count / inputDimensions
        let outDim = outputDimensions, inDim = inputDimensions
        precondition(dy.count == rows * outDim && dy.shape.last == outDim,
                     "Dense.backward: expected dy [..., \(outDim)] with \(rows) rows, got \(dy.shape)")
        let threads = resolvedThreads(self.threads)
        dy.withUnsafeBufferPointer { dyp in
            let dyb = dyp.baseAddress!
            // dW[Out][In] += dyᵀ[Out][N] · x[N][In]
            x.withUnsafeBufferPointer { xp in
                weight.grad.withUnsafeMutableBufferPointer { gw in
                    sgemm(transA: true, transB: false, m: outDim, n: inDim, k: rows,
                          alpha: 1, a: dyb, lda: outDim, b: xp.baseAddress!, ldb: inDim,
                          beta: 1, c: gw.baseAddress!, ldc: inDim, threads: threads)
                }
            }
            // db += Σ_n dy[n]
            if let bias {
                bias.grad.withUnsafeMutableBufferPointer { gb in
                    addColumnSums(dyb, rowCount: rows, columns: outDim, into: gb.baseAddress!)
                }
            }
        }
        guard computesInputGradient else { return Tensor(zeros: [0]) }
        // dx[N][In] = dy[N][Out] · W[Out][In]
        var dx = Tensor(uninitializedShape: x.shape)
        dx.withUnsafeMutableBufferPointer { dxp in
            dy.withUnsafeBufferPointer { dyp in
                weight.value.withUnsafeBufferPointer { wp in
                    sgemm(transA: false, transB: false, m: rows, n: inDim, k: outDim,
                          alpha: 1, a: dyp.baseAddress!, lda: outDim, b: wp.baseAddress!, ldb: inDim,
                          beta: 0, c: dxp.baseAddress!, ldc: inDim, threads: threads)
                }
            }
        }
        return dx
    }
}
