// Calibration: run a Float32 blob on sample inputs and record the range of
// every activation tensor, through the interpreter's per-op observer.

import SprigRuntime
import SprigTrain

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

/// The [min, max] of every arena tensor over `samples` (8-bit images, each
/// normalised as the blob's input says).
///
/// - Parameter percentile: when below 1, the range keeps this central
///   fraction of the values of each tensor (e.g. 0.999 clips the 0.05% tails
///   on each side); 1 is min/max.
public func calibrate(blob: [UInt8], samples: [[UInt8]], percentile: Double = 1) throws(CalibrationError) -> [Int: ActivationRange] {
    guard !samples.isEmpty else { throw .noSamples }
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(blob.count, 1), alignment: 16)
    defer { copy.deallocate() }
    copy.copyBytes(from: blob)
    let model: Model
    do {
        model = try Model(bytes: UnsafeRawBufferPointer(rebasing: copy[0..<blob.count]))
    } catch {
        throw .invalidBlob(error.message)
    }
    let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: max(model.arenaBytes, 16), alignment: 16)
    defer { arena.deallocate() }
    let interpreter: Interpreter
    do {
        interpreter = try Interpreter(model: model, arena: arena)
    } catch {
        throw .invalidBlob(error.message)
    }
    var values: [Int: [Float]] = [:]
    func record(_ t: Int) {
        let info = model.tensor(t)
        guard info.dtype == .f32 else { return }
        let raw = interpreter.bytes(of: t)
        let p = UnsafeBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: Float.self), count: raw.count / 4)
        values[t, default: []].append(contentsOf: p)
    }
    for (i, image) in samples.enumerated() {
        let failure: SprigError? = image.withUnsafeBytes { (p) -> SprigError? in
            do throws(SprigError) {
                try interpreter.setInput(pixels: p)
                return nil
            } catch {
                return error
            }
        }
        if let e = failure { throw .sample(index: i, e.message) }
        if let input = model.input(0) { record(input.tensor) }
        interpreter.invoke { o in record(model.op(o).output) }
    }
    var ranges: [Int: ActivationRange] = [:]
    for (t, v) in values where !v.isEmpty {
        if percentile >= 1 {
            var r = ActivationRange(min: v[0], max: v[0])
            for x in v { r.include(x) }
            ranges[t] = r
        } else {
            let sorted = v.sorted()
            let tail = Int(Double(sorted.count) * (1 - percentile) / 2)
            ranges[t] = ActivationRange(min: sorted[tail], max: sorted[sorted.count - 1 - tail])
        }
    }
    return ranges
}
