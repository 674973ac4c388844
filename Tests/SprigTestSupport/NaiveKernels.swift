// Naive reference kernels: the oracles of the kernel tests.
//
// They are written for obviousness, not speed, and share no code with
// SprigRuntime's kernels:
//   - Float32 ops compute in Double, with plain loops over every output and
//     every tap, and test each tap against the input bounds;
//   - int8 ops use Int64 arithmetic throughout, and their fixed-point
//     primitives are computed from the definitions (exact rational rounding),
//     not from the runtime's bit tricks. Where the runtime's Int32 arithmetic
//     wraps by contract (accumulators, Add's left shift and sum), the
//     reference computes exactly in Int64 and then truncates to Int32.
//
// Layouts are those of OpTypes.swift: images [H][W][C], Dense [Out][In],
// Conv2D [KH][KW][Cin][Cout], Depthwise [KH][KW][C].
import Foundation
import SprigRuntime

/// Requantization parameters as arrays (the runtime's `RequantQ8` holds pointers).
public struct NaiveRequant {
    public var multipliers: [Int32]
    public var shifts: [Int32]
    public var outputZeroPoint: Int32
    public var clampMin: Int32
    public var clampMax: Int32

    public init(multipliers: [Int32], shifts: [Int32], outputZeroPoint: Int32, clampMin: Int32, clampMax: Int32) {
        self.multipliers = multipliers
        self.shifts = shifts
        self.outputZeroPoint = outputZeroPoint
        self.clampMin = clampMin
        self.clampMax = clampMax
    }
}

public enum Naive {
    // MARK: - Float32 references (Double precision)

    static func clamp(_ x: Double, _ c: ClampF32) -> Double {
        min(max(x, Double(c.lower)), Double(c.upper))
    }

    /// out[o] = clamp(bias[o] + Σ_i in[i]·w[o][i]).
    public static func dense(input: [Float], weights: [Float], bias: [Float]?, inputCount: Int, outputCount: Int,
                             clamp c: ClampF32) -> [Double] {
        (0 ..< outputCount).map { o in
            var acc = bias.map { Double($0[o]) } ?? 0
            for i in 0 ..< inputCount { acc += Double(input[i]) * Double(weights[o * inputCount + i]) }
            return clamp(acc, c)
        }
    }

    /// Conv2D with HWIO weights; taps outside the input are skipped.
    public static func conv2d(input: [Float], weights: [Float], bias: [Float]?, window w: Window2D,
                              clamp c: ClampF32) -> [Double] {
        var out = [Double](repeating: 0, count: w.outputHeight * w.outputWidth * w.outputChannels)
        for oy in 0 ..< w.outputHeight {
            for ox in 0 ..< w.outputWidth {
                for co in 0 ..< w.outputChannels {
                    var acc = bias.map { Double($0[co]) } ?? 0
                    for ky in 0 ..< w.kernelHeight {
                        for kx in 0 ..< w.kernelWidth {
                            let iy = oy * w.strideHeight - w.padTop + ky
                            let ix = ox * w.strideWidth - w.padLeft + kx
                            guard iy >= 0, iy < w.inputHeight, ix >= 0, ix < w.inputWidth else { continue }
                            for ci in 0 ..< w.inputChannels {
                                let x = input[(iy * w.inputWidth + ix) * w.inputChannels + ci]
                                let k = weights[((ky * w.kernelWidth + kx) * w.inputChannels + ci) * w.outputChannels + co]
                                acc += Double(x) * Double(k)
                            }
                        }
                    }
                    out[(oy * w.outputWidth + ox) * w.outputChannels + co] = clamp(acc, c)
                }
            }
        }
        return out
    }

    /// Depthwise Conv2D, multiplier 1, weights [KH][KW][C].
    public static func depthwiseConv2d(input: [Float], weights: [Float], bias: [Float]?, window w: Window2D,
                                       clamp c: ClampF32) -> [Double] {
        let channels = w.outputChannels
        var out = [Double](repeating: 0, count: w.outputHeight * w.outputWidth * channels)
        for oy in 0 ..< w.outputHeight {
            for ox in 0 ..< w.outputWidth {
                for ch in 0 ..< channels {
                    var acc = bias.map { Double($0[ch]) } ?? 0
                    for ky in 0 ..< w.kernelHeight {
                        for kx in 0 ..< w.kernelWidth {
                            let iy = oy * w.strideHeight - w.padTop + ky
                            let ix = ox * w.strideWidth - w.padLeft + kx
                            guard iy >= 0, iy < w.inputHeight, ix >= 0, ix < w.inputWidth else { continue }
                            acc += Double(input[(iy * w.inputWidth + ix) * channels + ch])
                                * Double(weights[(ky * w.kernelWidth + kx) * channels + ch])
                        }
                    }
                    out[(oy * w.outputWidth + ox) * channels + ch] = clamp(acc, c)
                }
            }
        }
        return out
    }

    /// The valid input values of one pooling window, channel `ch`.
    static func windowValues<T>(_ input: [T], _ w: Window2D, _ oy: Int, _ ox: Int, _ ch: Int) -> [T] {
        var values: [T] = []
        for ky in 0 ..< w.kernelHeight {
            for kx in 0 ..< w.kernelWidth {
                let iy = oy * w.strideHeight - w.padTop + ky
                let ix = ox * w.strideWidth - w.padLeft + kx
                if iy >= 0, iy < w.inputHeight, ix >= 0, ix < w.inputWidth {
                    values.append(input[(iy * w.inputWidth + ix) * w.outputChannels + ch])
                }
            }
        }
        return values
    }

    static func pool<T, R>(_ input: [T], _ w: Window2D, _ reduce: ([T]) -> R) -> [R] {
        var out: [R] = []
        out.reserveCapacity(w.outputHeight * w.outputWidth * w.outputChannels)
        for oy in 0 ..< w.outputHeight {
            for ox in 0 ..< w.outputWidth {
                for ch in 0 ..< w.outputChannels { out.append(reduce(windowValues(input, w, oy, ox, ch))) }
            }
        }
        return out
    }

    /// Max over the valid taps; an empty window gives −Float.greatestFiniteMagnitude.
    public static func maxPool2d(input: [Float], window: Window2D) -> [Double] {
        pool(input, window) { v in Double(v.max() ?? -Float.greatestFiniteMagnitude) }
    }

    /// Mean over the valid taps (padding not counted); an empty window gives 0.
    public static func avgPool2d(input: [Float], window: Window2D) -> [Double] {
        pool(input, window) { v in v.isEmpty ? 0 : v.reduce(0.0) { $0 + Double($1) } / Double(v.count) }
    }

    /// Mean of each channel over all pixels.
    public static func globalAveragePool(input: [Float], height: Int, width: Int, channels: Int) -> [Double] {
        (0 ..< channels).map { ch in
            var s = 0.0
            for p in 0 ..< height * width { s += Double(input[p * channels + ch]) }
            return height * width == 0 ? 0 : s / Double(height * width)
        }
    }

    /// clamp(a + b).
    public static func add(a: [Float], b: [Float], clamp c: ClampF32) -> [Double] {
        zip(a, b).map { clamp(Double($0) + Double($1), c) }
    }

    /// softmax with Foundation's exp in Double.
    public static func softmax(_ x: [Float]) -> [Double] {
        guard let m = x.max() else { return [] }
        let e = x.map { Foundation.exp(Double($0) - Double(m)) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// L2 normalisation from the definition, in Double: `x / max(‖x‖₂, 1e-12)`.
    public static func l2Normalize(_ x: [Float]) -> [Double] {
        let norm = x.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let d = Swift.max(norm, 1e-12)
        return x.map { Double($0) / d }
    }

    // MARK: - Fixed-point primitives (Int64, from the definitions)

    /// gemmlowp's SaturatingRoundingDoublingHighMul, literally: 64-bit product,
    /// nudge ±2^30, C truncating division by 2^31; saturates a == b == Int32.min.
    public static func saturatingRoundingDoublingHighMul(_ a: Int32, _ b: Int32) -> Int32 {
        if a == Int32.min && b == Int32.min { return Int32.max }
        let ab = Int64(a) * Int64(b)
        let nudge: Int64 = ab >= 0 ? (1 << 30) : (1 - (1 << 30))
        return Int32((ab + nudge) / (1 << 31))
    }

    /// x / 2^exponent rounded to nearest, halves away from zero, from the
    /// magnitude: sign(x)·floor((|x| + 2^(e−1)) / 2^e).
    public static func roundingDivideByPOT(_ x: Int32, _ exponent: Int32) -> Int32 {
        let divisor = Int64(1) << Int64(exponent)
        let magnitude = abs(Int64(x))
        let rounded = (magnitude + divisor / 2) / divisor
        return Int32(x < 0 ? -rounded : rounded)
    }

    /// TFLite MultiplyByQuantizedMultiplier: x·2^left wraps to Int32 (as in
    /// TFLite), then the doubling high multiply, then the rounding shift.
    public static func multiplyByQuantizedMultiplier(_ x: Int32, _ multiplier: Int32, _ shift: Int32) -> Int32 {
        let left = max(shift, 0), right = max(-shift, 0)
        let shifted = Int32(truncatingIfNeeded: Int64(x) << Int64(left))
        return roundingDivideByPOT(saturatingRoundingDoublingHighMul(shifted, multiplier), right)
    }

    /// clamp(v + zeroPoint, clampMin, clampMax) clamped to int8, in Int64.
    public static func outputStage(_ v: Int32, zeroPoint: Int32, clampMin: Int32, clampMax: Int32) -> Int8 {
        var r = Int64(v) + Int64(zeroPoint)
        r = min(max(r, Int64(clampMin)), Int64(clampMax))
        return Int8(min(max(r, -128), 127))
    }

    static func requantize(_ acc: Int64, channel: Int, _ q: NaiveRequant) -> Int8 {
        let wrapped = Int32(truncatingIfNeeded: acc)     // the runtime's Int32 accumulator wraps
        let scaled = multiplyByQuantizedMultiplier(wrapped, q.multipliers[channel], q.shifts[channel])
        return outputStage(scaled, zeroPoint: q.outputZeroPoint, clampMin: q.clampMin, clampMax: q.clampMax)
    }

    // MARK: - int8 references

    public static func denseQ8(input: [Int8], inputZeroPoint: Int32, weights: [Int8], bias: [Int32]?,
                               inputCount: Int, outputCount: Int, requant q: NaiveRequant) -> [Int8] {
        (0 ..< outputCount).map { o in
            var acc: Int64 = bias.map { Int64($0[o]) } ?? 0
            for i in 0 ..< inputCount {
                acc += (Int64(input[i]) - Int64(inputZeroPoint)) * Int64(weights[o * inputCount + i])
            }
            return requantize(acc, channel: o, q)
        }
    }

    public static func conv2dQ8(input: [Int8], inputZeroPoint: Int32, weights: [Int8], bias: [Int32]?,
                                window w: Window2D, requant q: NaiveRequant) -> [Int8] {
        var out = [Int8](repeating: 0, count: w.outputHeight * w.outputWidth * w.outputChannels)
        for oy in 0 ..< w.outputHeight {
            for ox in 0 ..< w.outputWidth {
                for co in 0 ..< w.outputChannels {
                    var acc: Int64 = bias.map { Int64($0[co]) } ?? 0
                    for ky in 0 ..< w.kernelHeight {
                        for kx in 0 ..< w.kernelWidth {
                            let iy = oy * w.strideHeight - w.padTop + ky
                            let ix = ox * w.strideWidth - w.padLeft + kx
                            guard iy >= 0, iy < w.inputHeight, ix >= 0, ix < w.inputWidth else { continue }
                            for ci in 0 ..< w.inputChannels {
                                let x = Int64(input[(iy * w.inputWidth + ix) * w.inputChannels + ci])
                                let k = Int64(weights[((ky * w.kernelWidth + kx) * w.inputChannels + ci) * w.outputChannels + co])
                                acc += (x - Int64(inputZeroPoint)) * k
                            }
                        }
                    }
                    out[(oy * w.outputWidth + ox) * w.outputChannels + co] = requantize(acc, channel: co, q)
                }
            }
        }
        return out
    }

    public static func depthwiseConv2dQ8(input: [Int8], inputZeroPoint: Int32, weights: [Int8], bias: [Int32]?,
                                         window w: Window2D, requant q: NaiveRequant) -> [Int8] {
        let channels = w.outputChannels
        var out = [Int8](repeating: 0, count: w.outputHeight * w.outputWidth * channels)
        for oy in 0 ..< w.outputHeight {
            for ox in 0 ..< w.outputWidth {
                for ch in 0 ..< channels {
                    var acc: Int64 = bias.map { Int64($0[ch]) } ?? 0
                    for ky in 0 ..< w.kernelHeight {
                        for kx in 0 ..< w.kernelWidth {
                            let iy = oy * w.strideHeight - w.padTop + ky
                            let ix = ox * w.strideWidth - w.padLeft + kx
                            guard iy >= 0, iy < w.inputHeight, ix >= 0, ix < w.inputWidth else { continue }
                            acc += (Int64(input[(iy * w.inputWidth + ix) * channels + ch]) - Int64(inputZeroPoint))
                                * Int64(weights[(ky * w.kernelWidth + kx) * channels + ch])
                        }
                    }
                    out[(oy * w.outputWidth + ox) * channels + ch] = requantize(acc, channel: ch, q)
                }
            }
        }
        return out
    }

    /// Max over the valid taps; an empty window gives −128.
    public static func maxPool2dQ8(input: [Int8], window: Window2D) -> [Int8] {
        pool(input, window) { v in v.max() ?? -128 }
    }

    /// TFLite's rounding average: sum > 0 ? (sum + n/2)/n : (sum − n/2)/n, truncating division.
    static func roundedAverage(_ values: [Int8]) -> Int8 {
        guard !values.isEmpty else { return 0 }
        let sum = values.reduce(Int64(0)) { $0 + Int64($1) }
        let n = Int64(values.count)
        let q = sum > 0 ? (sum + n / 2) / n : (sum - n / 2) / n
        return Int8(min(max(q, -128), 127))
    }

    /// Rounded mean over the valid taps; an empty window gives 0.
    public static func avgPool2dQ8(input: [Int8], window: Window2D) -> [Int8] {
        pool(input, window, roundedAverage)
    }

    public static func globalAveragePoolQ8(input: [Int8], height: Int, width: Int, channels: Int) -> [Int8] {
        (0 ..< channels).map { ch in
            roundedAverage((0 ..< height * width).map { input[$0 * channels + ch] })
        }
    }

    public static func addQ8(a: [Int8], b: [Int8], params p: AddQ8Params) -> [Int8] {
        zip(a, b).map { x, y in
            let xs = Int32(truncatingIfNeeded: (Int64(x) - Int64(p.aZeroPoint)) << Int64(p.leftShift))
            let ys = Int32(truncatingIfNeeded: (Int64(y) - Int64(p.bZeroPoint)) << Int64(p.leftShift))
            let xr = multiplyByQuantizedMultiplier(xs, p.aMultiplier, p.aShift)
            let yr = multiplyByQuantizedMultiplier(ys, p.bMultiplier, p.bShift)
            let sum = Int32(truncatingIfNeeded: Int64(xr) + Int64(yr))
            let o = multiplyByQuantizedMultiplier(sum, p.outputMultiplier, p.outputShift)
            return outputStage(o, zeroPoint: p.outputZeroPoint, clampMin: p.clampMin, clampMax: p.clampMax)
        }
    }

    /// Integer softmax through a 256-entry table (see `softmaxQ8`).
    public static func softmaxQ8(input: [Int8], expTable: [Int32]) -> [Int8] {
        guard let m = input.max() else { return [] }
        let e = input.map { Int64(expTable[Int(m) - Int($0)]) }
        let s = e.reduce(0, +)
        return e.map { Int8(min(max((($0 * 256 + s / 2) / s) - 128, -128), 127)) }
    }

    /// The table of `makeSoftmaxExpTable` before rounding, with Foundation's exp
    /// in Double of the same Float argument `−d·inputScale`.
    public static func softmaxExpTable(inputScale: Float) -> [Double] {
        (0 ..< 256).map { 16_777_216 * Foundation.exp(Double(-Float($0) * inputScale)) }
    }

    /// TFLite quantization: round(x / scale) (Float division, halves away from
    /// zero) + zeroPoint, clamped; NaN → zeroPoint.
    public static func quantize(_ x: [Float], scale: Float, zeroPoint: Int32) -> [Int8] {
        x.map { v in
            let q = v / scale
            if q.isNaN { return Int8(min(max(Int64(zeroPoint), -128), 127)) }
            if q >= 1e12 { return 127 }
            if q <= -1e12 { return -128 }
            let r = Int64(Foundation.round(Double(q))) + Int64(zeroPoint)
            return Int8(min(max(r, -128), 127))
        }
    }

    /// scale·(q − zeroPoint) in Double.
    public static func dequantize(_ q: [Int8], scale: Float, zeroPoint: Int32) -> [Double] {
        q.map { Double(scale) * Double(Int64($0) - Int64(zeroPoint)) }
    }
}
