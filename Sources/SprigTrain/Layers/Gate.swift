// Gate: multiply each unit (channel, last axis) by a gate value. DAP builds on this.
//
//   x, y    [N][...][C]      channels last: [N][H][W][C] for conv units, [N][C] for dense units
//   g       [N][C]           per sample and per unit (DAP's sampled gates z), or
//           [C]              shared by the whole batch (hard masks, θ-only relaxations)
//   y[n][...][c] = x[n][...][c] · g[n][c]        (or g[c])
//
//   backward   dx[n][...][c] = dy[n][...][c] · g[n][c]
//              dg[n][c]      = Σ_{...} dy[n][...][c] · x[n][...][c]          (per-sample gates)
//              dg[c]         = Σ_n Σ_{...} dy[n][...][c] · x[n][...][c]      (shared gates)
//
// The gate is an input, not a parameter: the caller samples it each step and gets dL/dg back.

/// Per-unit multiplicative gate over the last axis.
///
/// ```
/// let gate = Gate()
/// let y = gate.forward(h, gate: z)             // h [N][H][W][C], z [N][C] or [C]
/// let (dh, dz) = gate.gradients(dy)            // dz has the shape of z
/// ```
/// As a `Layer`, `forward(_:training:)` uses the stored `gate` and `backward(_:)` keeps dL/dg
/// in `gateGradient`.
public final class Gate: Layer {
    /// The gate values used by `forward(_:training:)`: `[N][C]` or `[C]`.
    public var gate: Tensor?
    /// dL/dg from the most recent `backward(_:)` (overwritten, not accumulated).
    public private(set) var gateGradient: Tensor?

    private var input: Tensor?
    private var usedGate: Tensor?

    public init() {}

    public var parameters: [Parameter] { [] }

    /// `y = x · g` per unit; see the legend for the shapes.
    ///
    /// - Precondition: `x` has rank ≥ 2; `g` is `[C]` or `[N][C]` with `C = x.shape.last`, `N = x.shape[0]`.
    public func forward(_ x: Tensor, gate g: Tensor) -> Tensor {
        let (n, c, perSample) = Gate.layout(x.shape, g.shape)
        let inner = x.count / max(1, n * c)
        input = x
        usedGate = g
        var y = Tensor(uninitializedShape: x.shape)
        x.withUnsafeBufferPointer { xp in
            g.withUnsafeBufferPointer { gp in
                y.withUnsafeMutableBufferPointer { yp in
                    for s in 0..<n {
                        let gs = gp.baseAddress! + (perSample ? s * c : 0)
                        for p in 0..<inner {
                            let o = (s * inner + p) * c
                            for j in 0..<c { yp[o + j] = xp[o + j] * gs[j] }
                        }
                    }
                }
            }
        }
        return y
    }

    /// `forward(x, gate: self.gate)`.
    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        guard let g = gate else { preconditionFailure("Gate.forward: set `gate` before calling forward(_:training:)") }
        return forward(x, gate: g)
    }

    /// dL/dx and dL/dg for the most recent forward; dL/dg has the shape of the gate used.
    public func gradients(_ dy: Tensor) -> (input: Tensor, gate: Tensor) {
        let x = saved(input, "Gate"), g = saved(usedGate, "Gate")
        precondition(dy.shape == x.shape, "Gate.backward: expected dy \(x.shape), got \(dy.shape)")
        let (n, c, perSample) = Gate.layout(x.shape, g.shape)
        let inner = x.count / max(1, n * c)
        var dx = Tensor(uninitializedShape: x.shape)
        var dg = Tensor(zeros: g.shape)
        x.withUnsafeBufferPointer { xp in
            g.withUnsafeBufferPointer { gp in
                dy.withUnsafeBufferPointer { dyp in
                    dx.withUnsafeMutableBufferPointer { dxp in
                        dg.withUnsafeMutableBufferPointer { dgp in
                            for s in 0..<n {
                                let offset = perSample ? s * c : 0
                                let gs = gp.baseAddress! + offset, dgs = dgp.baseAddress! + offset
                                for p in 0..<inner {
                                    let o = (s * inner + p) * c
                                    for j in 0..<c {
                                        dxp[o + j] = dyp[o + j] * gs[j]
                                        dgs[j] += dyp[o + j] * xp[o + j]
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dx, dg)
    }

    /// dL/dx; dL/dg is kept in `gateGradient`.
    public func backward(_ dy: Tensor) -> Tensor {
        let (dx, dg) = gradients(dy)
        gateGradient = dg
        return dx
    }

    /// Batch, units, and whether the gate is per sample, checked against the legend.
    private static func layout(_ x: [Int], _ g: [Int]) -> (Int, Int, Bool) {
        precondition(x.count >= 2, "Gate: input must be [N][...][C], got \(x)")
        let n = x[0], c = x[x.count - 1]
        if g == [c] { return (n, c, false) }
        precondition(g == [n, c], "Gate: gate must be [\(c)] or [\(n)][\(c)] for input \(x), got \(g)")
        return (n, c, true)
    }
}
