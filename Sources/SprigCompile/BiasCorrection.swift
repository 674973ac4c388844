// Empirical bias correction: the int8 blob's rounding shifts the mean of each output
// channel (clipped tails all push one way, and a narrow layer averages little of its
// rounding away), and the shift passes on to every later layer. For one weighted op after
// another, in the order they run, the int8 blob is built and run on the calibration
// images, the mean of (int8 output − f32 output) is measured per output channel over every
// position, and that mean is taken off the op's bias before the next op is measured, so
// each correction sees the ones before it. (Measuring only where the f32 value lies inside
// the linear part of the op's range was tried too: docs/method.md has both.)
// Only the int8 blob's biases move; the f32 network and its blob are untouched.
// (The method: Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias
// Correction", 2019, section 4.2, in its empirical form.)

import Foundation
import SprigRuntime
import SprigTrain
import SprigWriter

/// What ``correctBiases(_:blob:samples:ranges:floatLayers:floatClassifier:)`` produced and measured.
public struct BiasCorrection: Sendable {
    /// The Float32 network with the corrected biases, to quantize with the same ranges.
    public var builder: BlobBuilder
    /// Biases corrected (weighted ops with a bias whose output is int8).
    public var layers: Int
    /// The largest correction, in units of the op's output step (its int8 scale).
    public var largestSteps: Double
    /// SQNR in dB of the int8 outputs against the Float32 outputs on the samples, before
    /// and after the correction.
    public var sqnrBefore: Double
    public var sqnrAfter: Double
}

/// Corrects the biases of `builder` (the Float32 network of `blob`) for the mean error
/// the int8 blob quantized with `ranges` (and `floatLayers` and `floatClassifier`, as
/// ``quantizeNetwork(_:ranges:floatLayers:floatClassifier:)``)
/// shows on `samples`.
///
/// - Complexity: one int8 blob built and run on the samples per corrected op, plus one.
public func correctBiases(_ builder: BlobBuilder, blob: [UInt8], samples: [[UInt8]], ranges: [Int: ActivationRange],
                          floatLayers: Int = 0, floatClassifier: Bool = false) throws(CalibrationError) -> BiasCorrection {
    let (values, reference) = try observeFloat(blob: blob, samples: samples, sorted: false)
    var signal = 0.0
    for row in reference { for x in row { signal += Double(x) * Double(x) } }

    /// Builds the int8 blob of `network`, runs it, and returns the values op outputs
    /// named `watch` take in int8 (concatenated over the samples) and the SQNR of its outputs.
    func runInt8(_ network: BlobBuilder, watch: String?) throws(CalibrationError) -> (values: [Int8], quant: QuantParams?, sqnr: Double) {
        let q8: BlobBuilder
        let bytes: [UInt8]
        do {
            q8 = try quantizeNetwork(network, ranges: ranges, floatLayers: floatLayers, floatClassifier: floatClassifier)
            bytes = try q8.build()
        } catch {
            throw .invalidBlob("quantizing: \(error)")
        }
        let watched = watch.flatMap { name in
            q8.tensors.firstIndex { $0.name == name && $0.dtype == .i8 && $0.storage == .arena }
        }
        let host = try HostBlob(bytes)
        var seen: [Int8] = []
        var noise = 0.0
        for (i, image) in samples.enumerated() {
            try host.run(image, index: i, observe: { o in
                guard let w = watched, host.model.op(o).output == w else { return }
                seen.append(contentsOf: host.interpreter.bytes(of: w).bindMemory(to: Int8.self))
            })
            for (x, y) in zip(reference[i], host.outputs) { noise += (Double(x) - Double(y)) * (Double(x) - Double(y)) }
        }
        let sqnr = noise > 0 ? 10 * log10(max(signal, .leastNormalMagnitude) / noise) : .infinity
        return (seen, watched.flatMap { q8.tensors[$0].quant.first }, sqnr)
    }

    var network = builder
    var corrected = 0
    var largest = 0.0
    var before: Double? = nil
    for op in builder.ops {
        guard op.opcode == .dense || op.opcode == .conv2d || op.opcode == .depthwiseConv2d,
              op.inputs.count > 2, op.inputs[2] >= 0, let f32 = values[op.output], !f32.isEmpty,
              ranges[op.output] != nil else { continue }
        let y = builder.tensors[op.output]
        let run = try runInt8(network, watch: y.name)
        if before == nil { before = run.sqnr }
        // A Float32 tail's op (a mixed blob) has no int8 output to correct.
        guard let q = run.quant, run.values.count == f32.count else { continue }
        let channels = y.shape.last ?? 1
        var sum = [Double](repeating: 0, count: channels), count = [Int](repeating: 0, count: channels)
        for (k, f) in f32.enumerated() {
            let c = k % channels
            sum[c] += Double(Int32(run.values[k]) - q.zeroPoint) * Double(q.scale) - Double(f)
            count[c] += 1
        }
        let biasTensor = op.inputs[2]
        var bias = floats(network.tensors[biasTensor].data)
        guard bias.count == channels else { continue }
        for c in 0..<channels where count[c] > 0 {
            let shift = sum[c] / Double(count[c])
            bias[c] -= Float(shift)
            largest = max(largest, abs(shift) / Double(q.scale))
        }
        network.setFloats(biasTensor, bias)
        corrected += 1
    }
    let after = try runInt8(network, watch: nil).sqnr
    return BiasCorrection(builder: network, layers: corrected, largestSteps: largest, sqnrBefore: before ?? after, sqnrAfter: after)
}
