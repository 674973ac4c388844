// Calibration: run a Float32 blob on sample inputs and record the range of
// every activation tensor, through the interpreter's per-op observer.

import Foundation
import SprigRuntime
import SprigTrain
import SprigWriter

/// Errors of calibration, naming what is wrong.
public enum CalibrationError: Error, Equatable, CustomStringConvertible {
    case noSamples
    case invalidBlob(String)
    case sample(index: Int, String)

    public var description: String {
        switch self {
        case .noSamples: return "calibration needs at least one sample image"
        case .invalidBlob(let m): return "calibration blob is invalid: \(m)"
        case .sample(let i, let m): return "calibration image \(i): \(m)"
        }
    }
}

/// A blob loaded for running on the host: its bytes in aligned memory, its arena and
/// interpreter, freed together.
final class HostBlob {
    let model: Model
    let interpreter: Interpreter
    private let storage: UnsafeMutableRawBufferPointer
    private let arena: UnsafeMutableRawBufferPointer

    init(_ blob: [UInt8]) throws(CalibrationError) {
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(blob.count, 1), alignment: 16)
        storage.copyBytes(from: blob)
        do {
            model = try Model(bytes: UnsafeRawBufferPointer(rebasing: storage[0..<blob.count]))
        } catch {
            storage.deallocate()
            throw .invalidBlob(error.message)
        }
        arena = UnsafeMutableRawBufferPointer.allocate(byteCount: max(model.arenaBytes, 16), alignment: 16)
        do {
            interpreter = try Interpreter(model: model, arena: arena)
        } catch {
            storage.deallocate()
            arena.deallocate()
            throw .invalidBlob(error.message)
        }
    }

    deinit {
        storage.deallocate()
        arena.deallocate()
    }

    /// Runs sample `index`: `atInput` once its input is set, then `observe` with each
    /// op's index after the op ran (a later op may reuse a tensor's bytes).
    func run(_ image: [UInt8], index: Int, atInput: () -> Void = {}, observe: (Int) -> Void = { _ in }) throws(CalibrationError) {
        let failure: SprigError? = image.withUnsafeBytes { (p) -> SprigError? in
            do throws(SprigError) {
                try interpreter.setInput(pixels: p)
                return nil
            } catch {
                return error
            }
        }
        if let e = failure { throw .sample(index: index, e.message) }
        atInput()
        interpreter.invoke(observer: observe)
    }

    /// The outputs of the last run, dequantized.
    var outputs: [Float] {
        (0..<model.tensor(model.output(0) ?? 0).elementCount).map { interpreter.output($0) }
    }
}

/// The values every Float32 arena tensor of `blob` takes over `samples` (each tensor's
/// sorted when `sorted`), and the blob's outputs for each sample.
func observeFloat(blob: [UInt8], samples: [[UInt8]], sorted: Bool) throws(CalibrationError) -> (values: [Int: [Float]], outputs: [[Float]]) {
    guard !samples.isEmpty else { throw .noSamples }
    let host = try HostBlob(blob)
    let model = host.model
    var values: [Int: [Float]] = [:]
    func record(_ t: Int) {
        guard model.tensor(t).dtype == .f32 else { return }
        let raw = host.interpreter.bytes(of: t)
        values[t, default: []].append(contentsOf: raw.bindMemory(to: Float.self))
    }
    var outputs: [[Float]] = []
    for (i, image) in samples.enumerated() {
        try host.run(image, index: i, atInput: { if let input = model.input(0) { record(input.tensor) } },
                     observe: { o in record(model.op(o).output) })
        outputs.append(host.outputs)
    }
    if sorted { for t in values.keys { values[t]!.sort() } }
    return (values, outputs)
}

/// The range that keeps the central fraction `percentile` of the sorted values `sorted`
/// (1: [min, max]).
private func centralRange(_ sorted: [Float], percentile: Double) -> ActivationRange {
    let tail = percentile >= 1 ? 0 : Int(Double(sorted.count) * (1 - percentile) / 2)
    return ActivationRange(min: sorted[tail], max: sorted[sorted.count - 1 - tail])
}

/// The [min, max] of every arena tensor over `samples` (8-bit images, each
/// normalised as the blob's input says).
///
/// - Parameter percentile: when below 1, the range keeps this central
///   fraction of the values of each tensor (e.g. 0.999 clips the 0.05% tails
///   on each side); 1 is min/max.
public func calibrate(blob: [UInt8], samples: [[UInt8]], percentile: Double = 1) throws(CalibrationError) -> [Int: ActivationRange] {
    let (values, _) = try observeFloat(blob: blob, samples: samples, sorted: percentile < 1)
    var ranges: [Int: ActivationRange] = [:]
    for (t, v) in values where !v.isEmpty {
        if percentile < 1 {
            ranges[t] = centralRange(v, percentile: percentile)
        } else {
            var r = ActivationRange(min: v[0], max: v[0])
            for x in v { r.include(x) }
            ranges[t] = r
        }
    }
    return ranges
}

/// What ``fitRanges(_:blob:samples:fractions:passes:floatLayers:floatClassifier:)`` chose, and what it measured.
public struct RangeFit: Sendable {
    /// Each tensor's int8 range.
    public var ranges: [Int: ActivationRange]
    /// Each tensor's chosen central fraction (1: [min, max]).
    public var fractions: [Int: Double]
    /// The SQNR in dB of the int8 blob's outputs against the Float32 blob's over the
    /// samples: with every range [min, max], and with the ranges chosen.
    public var minMaxSQNR: Double
    public var fittedSQNR: Double
    /// int8 blobs built and run.
    public var evaluations: Int
}

/// Chooses each activation tensor's int8 range end to end: the central fraction of
/// its calibration values, among `fractions`, that gives the int8 blob's outputs the
/// highest SQNR against the Float32 blob's on `samples`. Coordinate descent from
/// [min, max] everywhere, over the tensors in the order the ops write them, `passes`
/// times. A range is judged by its effect on the outputs, not on its own tensor:
/// clipping a tensor's tails lowers its own rounding error but biases the next layer,
/// and which wins depends on the net (docs/method.md, "Activation ranges").
///
/// - Parameters:
///   - builder: the Float32 network that `blob` was built from.
///   - floatLayers, floatClassifier: the int8 blob's Float32 tail, as
///     ``quantizeNetwork(_:ranges:floatLayers:floatClassifier:)`` takes them: the ranges are
///     judged on the blob that will ship.
public func fitRanges(_ builder: BlobBuilder, blob: [UInt8], samples: [[UInt8]],
                      fractions: [Double] = [1, 0.99999, 0.9999, 0.999], passes: Int = 2,
                      floatLayers: Int = 0, floatClassifier: Bool = false) throws(CalibrationError) -> RangeFit {
    let (values, reference) = try observeFloat(blob: blob, samples: samples, sorted: true)
    var signal = 0.0
    for row in reference { for x in row { signal += Double(x) * Double(x) } }
    var evaluations = 0
    func sqnr(_ choice: [Int: Double]) throws(CalibrationError) -> Double {
        var ranges: [Int: ActivationRange] = [:]
        for (t, v) in values where !v.isEmpty { ranges[t] = centralRange(v, percentile: choice[t] ?? 1) }
        let bytes: [UInt8]
        do {
            bytes = try quantizeNetwork(builder, ranges: ranges, floatLayers: floatLayers,
                                        floatClassifier: floatClassifier).build()
        } catch {
            throw .invalidBlob("quantizing: \(error)")
        }
        let host = try HostBlob(bytes)
        var noise = 0.0
        for (i, image) in samples.enumerated() {
            try host.run(image, index: i)
            for (x, y) in zip(reference[i], host.outputs) { noise += (Double(x) - Double(y)) * (Double(x) - Double(y)) }
        }
        evaluations += 1
        return noise > 0 ? 10 * log10(max(signal, .leastNormalMagnitude) / noise) : .infinity
    }
    // Tensors in the order they are written: the input, then each op's output.
    // (The model reads the blob's bytes in place: the HostBlob that holds them lives
    // until the order is read.)
    let f32 = try HostBlob(blob)
    var order: [Int] = []
    withExtendedLifetime(f32) {
        let model = f32.model
        if let input = model.input(0) { order.append(input.tensor) }
        for o in 0..<model.opCount { order.append(model.op(o).output) }
    }
    order = order.filter { values[$0].map { !$0.isEmpty } ?? false }

    var choice: [Int: Double] = [:]
    let minMax = try sqnr(choice)
    var best = minMax
    for _ in 0..<max(passes, 1) {
        var changed = false
        for t in order {
            let current = choice[t] ?? 1
            let currentRange = centralRange(values[t]!, percentile: current)
            for f in fractions where f != current {
                // A fraction that keeps the same range is the same blob.
                let r = centralRange(values[t]!, percentile: f)
                if r.min == currentRange.min && r.max == currentRange.max { continue }
                var trial = choice
                trial[t] = f
                let s = try sqnr(trial)
                if s > best + 1e-9 {
                    best = s
                    choice = trial
                    changed = true
                }
            }
        }
        if !changed { break }
    }
    var ranges: [Int: ActivationRange] = [:]
    var chosen: [Int: Double] = [:]
    for (t, v) in values where !v.isEmpty {
        ranges[t] = centralRange(v, percentile: choice[t] ?? 1)
        chosen[t] = choice[t] ?? 1
    }
    return RangeFit(ranges: ranges, fractions: chosen, minMaxSQNR: minMax, fittedSQNR: best, evaluations: evaluations)
}
