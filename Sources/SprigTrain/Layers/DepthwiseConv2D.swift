// DepthwiseConv2D: one K×K filter per channel (channel multiplier 1), as in MobileNet.
//
//   x     [N][H][W][C]                   NHWC
//   W     [KH][KW][C]                    the device runtime's layout (docs/blob-format.md, op 3)
//   b     [C]
//   y     [N][OH][OW][C]                 OH = (H + 2·pad − KH) / stride + 1, likewise OW
//
//   forward    y[n][oy][ox][c] = b[c] + Σ_{ky,kx valid} x[n][iy][ix][c] · W[ky][kx][c]
//              with iy = oy·stride − pad + ky, ix = ox·stride − pad + kx; taps in the padding add 0
//   backward   dW[ky][kx][c] += Σ_{n,oy,ox} dy[n][oy][ox][c] · x[n][iy][ix][c]
//              db[c]         += Σ_{n,oy,ox} dy[n][oy][ox][c]
//              dx[n][iy][ix][c] = Σ_{(oy,ox,ky,kx) that read it} dy[n][oy][ox][c] · W[ky][kx][c]
//
// Every sum runs along one channel, and channels are the contiguous axis of x, W, dy and dx, so
// each output pixel is a few SIMD16/SIMD8 lanes of multiply-adds over its valid taps (no im2col).
// Samples split over threads. dW is summed per sample into its own slice of scratch, and the
// slices are added in sample order, so the result does not depend on the thread count.
// The channel multiplier is 1 because that is all the runtime's DepthwiseConv2D runs.
// `depthwiseNaive*` below are the plain-loop references the fast paths are tested against.

/// A depthwise 2-D convolution over NHWC images: square kernel, stride, symmetric zero padding,
/// one filter per channel, weights `[KH][KW][C]`.
///
/// ```
/// var rng = SprigRNG(seed: 1)
/// let dw = DepthwiseConv2D(channels: 32, kernelSize: 3, stride: 2, padding: 1, bias: false, rng: &rng)
/// let y = dw.forward(x, training: true)    // [8][14][14][32] -> [8][7][7][32]
/// ```
public final class DepthwiseConv2D: Layer {
    public let channels: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let stride: Int
    /// Zero rows/columns added on every side.
    public let padding: Int
    /// `[KH][KW][C]`, He-normal with fan_in = KH·KW (each output sees one channel).
    public let weight: Parameter
    /// `[C]`, zero at init; nil when built with `bias: false` (followed by BatchNorm2D).
    public let bias: Parameter?
    /// When false, backward skips dL/dx and returns an empty `[0]` tensor.
    public var computesInputGradient = true
    /// Threads over samples; nil uses `GEMM.defaultThreads`.
    public var threads: Int?

    private var input: Tensor?
    private var weightScratch: [Float] = []

    /// - Precondition: positive channels, kernel and stride; padding ≥ 0.
    public init(channels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = true, rng: inout SprigRNG) {
        precondition(channels > 0 && kernelSize > 0 && stride > 0 && padding >= 0,
                     "DepthwiseConv2D: bad geometry C=\(channels) k=\(kernelSize) stride=\(stride) pad=\(padding)")
        self.channels = channels
        kernelHeight = kernelSize
        kernelWidth = kernelSize
        self.stride = stride
        self.padding = padding
        weight = Parameter(name: "weight",
                           value: Init.heNormal(shape: [kernelSize, kernelSize, channels],
                                                fanIn: kernelSize * kernelSize, rng: &rng))
        self.bias = bias ? Parameter(name: "bias", value: Tensor(zeros: [channels])) : nil
    }

    public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    /// Output height and width for an input of `height × width`.
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernelHeight) / stride + 1, (width + 2 * padding - kernelWidth) / stride + 1)
    }

    func geometry(_ shape: [Int]) -> ConvGeometry {
        let out = outputSize(height: shape[1], width: shape[2])
        return ConvGeometry(batch: shape[0], height: shape[1], width: shape[2], inputChannels: channels,
                            outputHeight: out.height, outputWidth: out.width,
                            kernelHeight: kernelHeight, kernelWidth: kernelWidth, stride: stride, padding: padding)
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == 4 && x.shape[3] == channels,
                     "DepthwiseConv2D.forward: expected [N][H][W][\(channels)], got \(x.shape)")
        let g = geometry(x.shape)
        precondition(g.outputHeight > 0 && g.outputWidth > 0,
                     "DepthwiseConv2D.forward: input \(x.shape) is smaller than the \(kernelHeight)×\(kernelWidth) kernel")
        input = x
        var y = Tensor(uninitializedShape: [g.batch, g.outputHeight, g.outputWidth, channels])
        let threads = threadsFor(values: g.rows * kernelHeight * kernelWidth * channels, resolvedThreads(self.threads))
        x.withUnsafeBufferPointer { xp in
            weight.value.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    let xb = xp.baseAddress!, wb = wp.baseAddress!, yb = yp.baseAddress!
                    let biasStorage = bias?.value.storage
                    withOptionalPointer(biasStorage) { bb in
                        parallelFor(g.batch, threads: threads) { samples in
                            for n in samples { depthwiseForwardSample(xb, wb, bb, yb, g, sample: n) }
                        }
                    }
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let x = saved(input, "DepthwiseConv2D")
        let g = geometry(x.shape)
        precondition(dy.shape == [g.batch, g.outputHeight, g.outputWidth, channels],
                     "DepthwiseConv2D.backward: expected dy \([g.batch, g.outputHeight, g.outputWidth, channels]), got \(dy.shape)")
        let threads = threadsFor(values: g.rows * kernelHeight * kernelWidth * channels, resolvedThreads(self.threads))
        let taps = kernelHeight * kernelWidth * channels
        if weightScratch.count != g.batch * taps { weightScratch = [Float](repeating: 0, count: g.batch * taps) }
        var dx = computesInputGradient ? Tensor(uninitializedShape: x.shape) : Tensor(zeros: [0])
        let wantsInput = computesInputGradient
        x.withUnsafeBufferPointer { xp in
            dy.withUnsafeBufferPointer { dyp in
                weight.value.withUnsafeBufferPointer { wp in
                    weightScratch.withUnsafeMutableBufferPointer { sp in
                        dx.withUnsafeMutableBufferPointer { dxp in
                            let xb = xp.baseAddress!, dyb = dyp.baseAddress!, wb = wp.baseAddress!, sb = sp.baseAddress!
                            let dxb = dxp.baseAddress
                            parallelFor(g.batch, threads: threads) { samples in
                                for n in samples {
                                    depthwiseWeightGradientSample(xb, dyb, sb + n * taps, g, sample: n)
                                    if wantsInput, let dxb { depthwiseInputGradientSample(dyb, wb, dxb, g, sample: n) }
                                }
                            }
                        }
                    }
                }
            }
        }
        // dW += Σ_n slice_n, in sample order.
        weight.grad.withUnsafeMutableBufferPointer { gw in
            weightScratch.withUnsafeBufferPointer { sp in
                for n in 0..<g.batch {
                    let slice = sp.baseAddress! + n * taps
                    for i in 0..<taps { gw[i] += slice[i] }
                }
            }
        }
        if let bias {
            dy.withUnsafeBufferPointer { dyp in
                bias.grad.withUnsafeMutableBufferPointer { gb in
                    addColumnSums(dyp.baseAddress!, rowCount: g.rows, columns: channels, into: gb.baseAddress!)
                }
            }
        }
        return dx
    }
}

// MARK: - Fast kernels (one sample each; channels in SIMD16, SIMD8, then scalar)

@inline(__always)
private func withOptionalPointer<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let values else { return body(nil) }
    return values.withUnsafeBufferPointer { body($0.baseAddress!) }
}

@inline(__always)
private func lanes<V: SIMD>(_ p: UnsafePointer<Float>) -> V where V.Scalar == Float {
    UnsafeRawPointer(p).loadUnaligned(as: V.self)
}

@inline(__always)
private func store<V: SIMD>(_ v: V, _ p: UnsafeMutablePointer<Float>) where V.Scalar == Float {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
}

/// The valid taps `[first, end)` of a window starting at `origin` over an axis of `extent`.
@inline(__always)
private func tapRange(_ origin: Int, _ kernel: Int, _ extent: Int) -> (first: Int, end: Int) {
    (max(0, -origin), min(kernel, extent - origin))
}

/// Calls `body(c, V)` for channel blocks of 16 and 8, then `tail(c)` for each remaining channel.
@inline(__always)
private func channelBlocks(_ channels: Int, _ wide: (Int) -> Void, _ narrow: (Int) -> Void, _ tail: (Int) -> Void) {
    var c = 0
    while c + 16 <= channels { wide(c); c += 16 }
    if c + 8 <= channels { narrow(c); c += 8 }
    while c < channels { tail(c); c += 1 }
}

/// y of sample `n`.
private func depthwiseForwardSample(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                    _ y: UnsafeMutablePointer<Float>, _ g: ConvGeometry, sample n: Int) {
    let c = g.inputChannels, kw = g.kernelWidth
    let xn = x + n * g.height * g.width * c
    let yn = y + n * g.outputHeight * g.outputWidth * c
    for oy in 0..<g.outputHeight {
        let iy0 = oy * g.stride - g.padding
        let rows = tapRange(iy0, g.kernelHeight, g.height)
        for ox in 0..<g.outputWidth {
            let ix0 = ox * g.stride - g.padding
            let cols = tapRange(ix0, kw, g.width)
            let out = yn + (oy * g.outputWidth + ox) * c
            @inline(__always) func pixel<V: SIMD>(_: V.Type, _ j: Int) where V.Scalar == Float {
                var acc = V()
                if let bias { acc = lanes(bias + j) }
                for ky in rows.first..<max(rows.first, rows.end) {
                    var xp = xn + ((iy0 + ky) * g.width + ix0 + cols.first) * c + j
                    var wp = w + (ky * kw + cols.first) * c + j
                    for _ in cols.first..<max(cols.first, cols.end) {
                        acc = acc.addingProduct(lanes(xp) as V, lanes(wp) as V)
                        xp += c
                        wp += c
                    }
                }
                store(acc, out + j)
            }
            channelBlocks(c, { pixel(SIMD16<Float>.self, $0) }, { pixel(SIMD8<Float>.self, $0) }) { j in
                var acc: Float = bias?[j] ?? 0
                for ky in rows.first..<max(rows.first, rows.end) {
                    for kx in cols.first..<max(cols.first, cols.end) {
                        acc += xn[((iy0 + ky) * g.width + ix0 + kx) * c + j] * w[(ky * kw + kx) * c + j]
                    }
                }
                out[j] = acc
            }
        }
    }
}

/// slice = dW of sample `n` alone (overwritten, `[KH][KW][C]`).
private func depthwiseWeightGradientSample(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                           _ slice: UnsafeMutablePointer<Float>, _ g: ConvGeometry, sample n: Int) {
    let c = g.inputChannels, kw = g.kernelWidth
    slice.update(repeating: 0, count: g.kernelHeight * kw * c)
    let xn = x + n * g.height * g.width * c
    let dyn = dy + n * g.outputHeight * g.outputWidth * c
    for oy in 0..<g.outputHeight {
        let iy0 = oy * g.stride - g.padding
        let rows = tapRange(iy0, g.kernelHeight, g.height)
        for ox in 0..<g.outputWidth {
            let ix0 = ox * g.stride - g.padding
            let cols = tapRange(ix0, kw, g.width)
            let d = dyn + (oy * g.outputWidth + ox) * c
            @inline(__always) func pixel<V: SIMD>(_: V.Type, _ j: Int) where V.Scalar == Float {
                let dv: V = lanes(d + j)
                for ky in rows.first..<max(rows.first, rows.end) {
                    var xp = xn + ((iy0 + ky) * g.width + ix0 + cols.first) * c + j
                    var sp = slice + (ky * kw + cols.first) * c + j
                    for _ in cols.first..<max(cols.first, cols.end) {
                        store((lanes(sp) as V).addingProduct(dv, lanes(xp) as V), sp)
                        xp += c
                        sp += c
                    }
                }
            }
            channelBlocks(c, { pixel(SIMD16<Float>.self, $0) }, { pixel(SIMD8<Float>.self, $0) }) { j in
                for ky in rows.first..<max(rows.first, rows.end) {
                    for kx in cols.first..<max(cols.first, cols.end) {
                        slice[(ky * kw + kx) * c + j] += d[j] * xn[((iy0 + ky) * g.width + ix0 + kx) * c + j]
                    }
                }
            }
        }
    }
}

/// dx of sample `n` (overwritten): each output pixel scatters dy·W back onto the taps it read.
private func depthwiseInputGradientSample(_ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                          _ dx: UnsafeMutablePointer<Float>, _ g: ConvGeometry, sample n: Int) {
    let c = g.inputChannels, kw = g.kernelWidth
    let dxn = dx + n * g.height * g.width * c
    dxn.update(repeating: 0, count: g.height * g.width * c)
    let dyn = dy + n * g.outputHeight * g.outputWidth * c
    for oy in 0..<g.outputHeight {
        let iy0 = oy * g.stride - g.padding
        let rows = tapRange(iy0, g.kernelHeight, g.height)
        for ox in 0..<g.outputWidth {
            let ix0 = ox * g.stride - g.padding
            let cols = tapRange(ix0, kw, g.width)
            let d = dyn + (oy * g.outputWidth + ox) * c
            @inline(__always) func pixel<V: SIMD>(_: V.Type, _ j: Int) where V.Scalar == Float {
                let dv: V = lanes(d + j)
                for ky in rows.first..<max(rows.first, rows.end) {
                    var xp = dxn + ((iy0 + ky) * g.width + ix0 + cols.first) * c + j
                    var wp = w + (ky * kw + cols.first) * c + j
                    for _ in cols.first..<max(cols.first, cols.end) {
                        store((lanes(xp) as V).addingProduct(dv, lanes(wp) as V), xp)
                        xp += c
                        wp += c
                    }
                }
            }
            channelBlocks(c, { pixel(SIMD16<Float>.self, $0) }, { pixel(SIMD8<Float>.self, $0) }) { j in
                for ky in rows.first..<max(rows.first, rows.end) {
                    for kx in cols.first..<max(cols.first, cols.end) {
                        dxn[((iy0 + ky) * g.width + ix0 + kx) * c + j] += d[j] * w[(ky * kw + kx) * c + j]
                    }
                }
            }
        }
    }
}

// MARK: - Naive references (plain loops over the legend's formulas; kept for the tests)

extension DepthwiseConv2D {
    /// y by the legend's formula, one scalar at a time, summed in Double.
    public func naiveForward(_ x: Tensor) -> Tensor {
        let g = geometry(x.shape)
        let c = channels, w = weight.value.storage, b = bias?.value.storage
        var y = Tensor(zeros: [g.batch, g.outputHeight, g.outputWidth, c])
        for n in 0..<g.batch {
            for oy in 0..<g.outputHeight {
                for ox in 0..<g.outputWidth {
                    for ch in 0..<c {
                        var acc = Double(b?[ch] ?? 0)
                        for ky in 0..<kernelHeight {
                            for kx in 0..<kernelWidth {
                                let iy = oy * stride - padding + ky, ix = ox * stride - padding + kx
                                guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else { continue }
                                acc += Double(x[n, iy, ix, ch]) * Double(w[(ky * kernelWidth + kx) * c + ch])
                            }
                        }
                        y[n, oy, ox, ch] = Float(acc)
                    }
                }
            }
        }
        return y
    }

    /// (dx, dW, db) for input `x` and upstream `dy` by the legend's formulas, in Double; the
    /// layer's own gradients are left untouched.
    public func naiveBackward(_ x: Tensor, _ dy: Tensor) -> (dx: Tensor, weight: [Float], bias: [Float]) {
        let g = geometry(x.shape)
        let c = channels, w = weight.value.storage
        var dx = [Double](repeating: 0, count: x.count)
        var dw = [Double](repeating: 0, count: w.count)
        var db = [Double](repeating: 0, count: c)
        for n in 0..<g.batch {
            for oy in 0..<g.outputHeight {
                for ox in 0..<g.outputWidth {
                    for ch in 0..<c {
                        let d = Double(dy[n, oy, ox, ch])
                        db[ch] += d
                        for ky in 0..<kernelHeight {
                            for kx in 0..<kernelWidth {
                                let iy = oy * stride - padding + ky, ix = ox * stride - padding + kx
                                guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else { continue }
                                let xi = ((n * g.height + iy) * g.width + ix) * c + ch, wi = (ky * kernelWidth + kx) * c + ch
                                dw[wi] += d * Double(x.storage[xi])
                                dx[xi] += d * Double(w[wi])
                            }
                        }
                    }
                }
            }
        }
        return (Tensor(shape: x.shape, storage: dx.map(Float.init)), dw.map(Float.init), db.map(Float.init))
    }
}
