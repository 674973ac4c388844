// Conv2D: 2-D convolution (cross-correlation, as in PyTorch and TFLite) by im2col + sgemm.
//
//   x     [N][H][W][Cin]                 NHWC
//   W     [KH][KW][Cin][Cout]            HWIO, the device runtime's layout; viewed as [K][Cout]
//   b     [Cout]
//   y     [N][OH][OW][Cout]              OH = (H + 2·pad − KH) / stride + 1, likewise OW
//   cols  [M][K]    M = N·OH·OW, K = KH·KW·Cin, column order (ky, kx, ci) = row order of W
//
//   cols[(n,oy,ox)][(ky,kx,ci)] = x[n][oy·stride − pad + ky][ox·stride − pad + kx][ci]   (0 outside)
//
//   forward    cols = im2col(x)                         (1×1, stride 1, pad 0: cols is x itself)
//              y[M][Cout]  = cols · W (+ b)             sgemm
//   backward   dW[K][Cout] += colsᵀ · dy                sgemm(transA), beta 1: accumulates
//              db += Σ_M dy
//              dcols[M][K]  = dy · Wᵀ                   sgemm(transB)
//              dx = col2im(dcols)                       scatter-add of overlapping windows
//
// cols is kept from forward for backward; cols and dcols are private scratch reused across steps.

/// A 2-D convolution over NHWC images with HWIO weights, square kernel, symmetric zero padding.
///
/// ```
/// var rng = SprigRNG(seed: 1)
/// let conv = Conv2D(inputChannels: 32, outputChannels: 64, kernelSize: 3, padding: 1, bias: false, rng: &rng)
/// let y = conv.forward(x, training: true)    // [64][14][14][32] -> [64][14][14][64]
/// ```
public final class Conv2D: Layer {
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let stride: Int
    /// Zero rows/columns added on every side.
    public let padding: Int
    /// `[KH][KW][Cin][Cout]`, He-normal with fan_in = KH·KW·Cin.
    public let weight: Parameter
    /// `[Cout]`, zero at init; nil when built with `bias: false` (a conv followed by BatchNorm2D).
    public let bias: Parameter?
    /// When false, backward skips dL/dx (the first layer of a net) and returns an empty `[0]` tensor.
    public var computesInputGradient = true
    /// Threads for the GEMMs and im2col; nil uses `GEMM.defaultThreads`.
    public var threads: Int?

    private var inputShape: [Int] = []
    private var input: Tensor?          // saved only on the 1×1 path, where cols == x
    private var cols: [Float] = []
    private var dcols: [Float] = []

    public init(inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = true, rng: inout SprigRNG) {
        precondition(inputChannels > 0 && outputChannels > 0 && kernelSize > 0 && stride > 0 && padding >= 0,
                     "Conv2D: bad geometry Cin=\(inputChannels) Cout=\(outputChannels) k=\(kernelSize) stride=\(stride) pad=\(padding)")
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        kernelHeight = kernelSize
        kernelWidth = kernelSize
        self.stride = stride
        self.padding = padding
        let fanIn = kernelSize * kernelSize * inputChannels
        weight = Parameter(name: "weight",
                           value: Init.heNormal(shape: [kernelSize, kernelSize, inputChannels, outputChannels],
                                                fanIn: fanIn, rng: &rng))
        self.bias = bias ? Parameter(name: "bias", value: Tensor(zeros: [outputChannels])) : nil
    }

    public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    /// Output height and width for an input of `height × width`.
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernelHeight) / stride + 1, (width + 2 * padding - kernelWidth) / stride + 1)
    }

    private var isPointwise: Bool { kernelHeight == 1 && kernelWidth == 1 && stride == 1 && padding == 0 }

    private func geometry(_ shape: [Int]) -> ConvGeometry {
        ConvGeometry(batch: shape[0], height: shape[1], width: shape[2], inputChannels: inputChannels,
                     outputHeight: outputSize(height: shape[1], width: shape[2]).height,
                     outputWidth: outputSize(height: shape[1], width: shape[2]).width,
                     kernelHeight: kernelHeight, kernelWidth: kernelWidth, stride: stride, padding: padding)
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == 4 && x.shape[3] == inputChannels,
                     "Conv2D.forward: expected [N][H][W][\(inputChannels)], got \(x.shape)")
        let g = geometry(x.shape)
        precondition(g.outputHeight > 0 && g.outputWidth > 0,
                     "Conv2D.forward: input \(x.shape) is smaller than the \(kernelHeight)×\(kernelWidth) kernel")
        let threads = resolvedThreads(self.threads)
        let m = g.rows, k = g.depth, cout = outputChannels
        inputShape = x.shape
        if isPointwise {
            input = x
        } else {
            input = nil
            if cols.count != m * k { cols = [Float](unsafeUninitializedCapacity: m * k) { _, n in n = m * k } }
            x.withUnsafeBufferPointer { xp in
                cols.withUnsafeMutableBufferPointer { cp in
                    im2col(xp.baseAddress!, g, cp.baseAddress!, threads: threads)
                }
            }
        }
        var y = Tensor(uninitializedShape: [g.batch, g.outputHeight, g.outputWidth, cout])
        y.withUnsafeMutableBufferPointer { yp in
            let yb = yp.baseAddress!
            var beta: Float = 0
            if let bias {
                bias.value.withUnsafeBufferPointer { bp in
                    for r in 0..<m { (yb + r * cout).update(from: bp.baseAddress!, count: cout) }
                }
                beta = 1
            }
            let source = isPointwise ? x.storage : cols
            source.withUnsafeBufferPointer { ap in
                weight.value.withUnsafeBufferPointer { wp in
                    sgemm(transA: false, transB: false, m: m, n: cout, k: k,
                          alpha: 1, a: ap.baseAddress!, lda: k, b: wp.baseAddress!, ldb: cout,
                          beta: beta, c: yb, ldc: cout, threads: threads)
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        precondition(!inputShape.isEmpty, "Conv2D.backward called before forward")
        let g = geometry(inputShape)
        let threads = resolvedThreads(self.threads)
        let m = g.rows, k = g.depth, cout = outputChannels
        precondition(dy.shape == [g.batch, g.outputHeight, g.outputWidth, cout],
                     "Conv2D.backward: expected dy \([g.batch, g.outputHeight, g.outputWidth, cout]), got \(dy.shape)")
        let source = isPointwise ? saved(input, "Conv2D").storage : cols
        dy.withUnsafeBufferPointer { dyp in
            let dyb = dyp.baseAddress!
            // dW[K][Cout] += colsᵀ[K][M] · dy[M][Cout]
            source.withUnsafeBufferPointer { ap in
                weight.grad.withUnsafeMutableBufferPointer { gw in
                    sgemm(transA: true, transB: false, m: k, n: cout, k: m,
                          alpha: 1, a: ap.baseAddress!, lda: k, b: dyb, ldb: cout,
                          beta: 1, c: gw.baseAddress!, ldc: cout, threads: threads)
                }
            }
            if let bias {
                bias.grad.withUnsafeMutableBufferPointer { gb in
                    addColumnSums(dyb, rowCount: m, columns: cout, into: gb.baseAddress!)
                }
            }
        }
        guard computesInputGradient else { return Tensor(zeros: [0]) }
        var dx = Tensor(uninitializedShape: inputShape)     // col2im zeroes each sample before adding
        dy.withUnsafeBufferPointer { dyp in
            weight.value.withUnsafeBufferPointer { wp in
                dx.withUnsafeMutableBufferPointer { dxp in
                    if isPointwise {
                        // dx[M][Cin] = dy[M][Cout] · Wᵀ
                        sgemm(transA: false, transB: true, m: m, n: k, k: cout,
                              alpha: 1, a: dyp.baseAddress!, lda: cout, b: wp.baseAddress!, ldb: cout,
                              beta: 0, c: dxp.baseAddress!, ldc: k, threads: threads)
                        return
                    }
                    if dcols.count != m * k { dcols = [Float](unsafeUninitializedCapacity: m * k) { _, n in n = m * k } }
                    dcols.withUnsafeMutableBufferPointer { dcp in
                        // dcols[M][K] = dy[M][Cout] · Wᵀ[Cout][K]
                        sgemm(transA: false, transB: true, m: m, n: k, k: cout,
                              alpha: 1, a: dyp.baseAddress!, lda: cout, b: wp.baseAddress!, ldb: cout,
                              beta: 0, c: dcp.baseAddress!, ldc: k, threads: threads)
                        col2im(UnsafePointer(dcp.baseAddress!), g, dxp.baseAddress!, threads: threads)
                    }
                }
            }
        }
        return dx
    }
}

/// Sizes of one convolution call (see the legend at the top of Conv2D.swift).
struct ConvGeometry {
    var batch, height, width, inputChannels: Int
    var outputHeight, outputWidth: Int
    var kernelHeight, kernelWidth, stride, padding: Int
    /// M = N·OH·OW.
    var rows: Int { batch * outputHeight * outputWidth }
    /// K = KH·KW·Cin.
    var depth: Int { kernelHeight * kernelWidth * inputChannels }

    /// For output column `ox`: first input column, and the valid kx range `[kx0, kx1)`.
    @inline(__always)
    func columns(_ ox: Int) -> (ix0: Int, kx0: Int, kx1: Int) {
        let ix0 = ox * stride - padding
        return (ix0, max(0, -ix0), min(kernelWidth, width - ix0))
    }
}

/// cols = im2col(x): one row of K values per output pixel. For a fixed ky, the taps kx = 0..<KW
/// read KW·Cin consecutive input values (NHWC), so each is one contiguous copy, clipped at the
/// border; clipped-off taps are zero. Rows are split over threads by sample.
func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, _ cols: UnsafeMutablePointer<Float>, threads: Int) {
    parallelFor(g.batch, threads: threadsFor(values: g.rows * g.depth, threads)) { samples in
        let cin = g.inputChannels, k = g.depth, kw = g.kernelWidth
        for n in samples {
            for oy in 0..<g.outputHeight {
                for ox in 0..<g.outputWidth {
                    let row = cols + ((n * g.outputHeight + oy) * g.outputWidth + ox) * k
                    let (ix0, kx0, kx1) = g.columns(ox)
                    for ky in 0..<g.kernelHeight {
                        let iy = oy * g.stride - g.padding + ky
                        let dst = row + ky * kw * cin
                        if iy < 0 || iy >= g.height || kx0 >= kx1 {
                            dst.update(repeating: 0, count: kw * cin)
                            continue
                        }
                        if kx0 > 0 { dst.update(repeating: 0, count: kx0 * cin) }
                        let src = x + ((n * g.height + iy) * g.width + ix0 + kx0) * cin
                        let run = (kx1 - kx0) * cin
                        if run <= 16 {
                            for i in 0..<run { dst[kx0 * cin + i] = src[i] }
                        } else {
                            (dst + kx0 * cin).update(from: src, count: run)
                        }
                        if kx1 < kw { (dst + kx1 * cin).update(repeating: 0, count: (kw - kx1) * cin) }
                    }
                }
            }
        }
    }
}

/// dx = col2im(dcols): the adjoint of im2col, a scatter-add of overlapping windows. Each sample's
/// rows only touch that sample's pixels, so samples split over threads without races; each
/// thread zeroes its samples of dx first.
func col2im(_ dcols: UnsafePointer<Float>, _ g: ConvGeometry, _ dx: UnsafeMutablePointer<Float>, threads: Int) {
    parallelFor(g.batch, threads: threadsFor(values: g.rows * g.depth, threads)) { samples in
        let cin = g.inputChannels, k = g.depth, kw = g.kernelWidth
        let sampleSize = g.height * g.width * cin
        (dx + samples.lowerBound * sampleSize).update(repeating: 0, count: samples.count * sampleSize)
        for n in samples {
            for oy in 0..<g.outputHeight {
                for ox in 0..<g.outputWidth {
                    let row = dcols + ((n * g.outputHeight + oy) * g.outputWidth + ox) * k
                    let (ix0, kx0, kx1) = g.columns(ox)
                    if kx0 >= kx1 { continue }
                    for ky in 0..<g.kernelHeight {
                        let iy = oy * g.stride - g.padding + ky
                        if iy < 0 || iy >= g.height { continue }
                        let src = row + (ky * kw + kx0) * cin
                        let dst = dx + ((n * g.height + iy) * g.width + ix0 + kx0) * cin
                        for i in 0..<((kx1 - kx0) * cin) { dst[i] += src[i] }
                    }
                }
            }
        }
    }
}
