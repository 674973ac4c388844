// The compile pipeline as library code: a trained network and its description →
// a .sprig blob, in Float32 or int8. `sprig compile` and `sprig demo` call it; they
// only load the checkpoint and the calibration images.
//
//   lower (BN folded, activations fused) → prove the f32 graph (shapes, finite values)
//   → [q8: calibrate on images of the model's input shape, quantize] → plan fine-tuning → bytes

import SprigRuntime
import SprigTrain
import SprigWriter

/// The number format of a compiled blob.
public enum Precision: String, CaseIterable, Sendable {
    case f32, q8
}

/// How to compile; the defaults are `sprig compile`'s.
public struct CompileOptions: Sendable {
    public var precision: Precision = .q8
    /// Calibration images used (the first ones of the set given), for q8.
    public var calibrationCount = calibrationImageCount
    /// The central fraction of each activation's values that its int8 range keeps (1: min/max).
    public var percentile = 1.0
    /// Choose each activation's int8 range end to end, by the SQNR of the int8 outputs on
    /// the calibration images (``fitRanges(_:blob:samples:fractions:passes:floatLayers:floatClassifier:)``); `percentile`
    /// is then unused.
    public var fitRanges = false
    /// Told what the range fit chose and measured.
    public var onRangeFit: (@Sendable (RangeFit) -> Void)?
    /// Correct each int8 layer's bias for the mean shift its rounding causes on the
    /// calibration images (``correctBiases(_:blob:samples:ranges:floatLayers:floatClassifier:)``).
    public var biasCorrection = false
    /// Told what the bias correction changed and measured.
    public var onBiasCorrection: (@Sendable (BiasCorrection) -> Void)?
    /// Keep the classifier in Float32 in a q8 blob (a mixed blob), so that the logits are
    /// not rounded to int8 steps (``quantizeNetwork(_:ranges:floatLayers:floatClassifier:)``).
    public var floatClassifier = false
    /// The fine-tuning plan: classes and shots per class the device may learn from.
    public var maxClasses = 10
    public var maxShots = 20
    /// The methods the plan covers (head is always planned).
    public var fineTuneMethods: [FineTuneMethod] = [.head]
    /// Layers `last` trains. A q8 blob that plans `last` keeps these layers, the
    /// classifier and everything after the first of them in Float32.
    public var fineTuneLayers = 1
    /// The optimizer the plan is sized for. SGD keeps one moment per trained
    /// value, Adam two: for `last` the plan is a quarter of the trained
    /// parameters' bytes smaller, and a device then trains with SGD.
    public var fineTuneOptimizer: HeadOptimizer = .adam

    public init() {}
}

/// A compile failure, in one sentence that names what is at fault.
public struct CompileError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The blob's name: the preset and widths ("cnn-19-28-26-52"), or "custom-…".
public func blobName(_ a: Architecture) -> String {
    "\(a.family)-\(a.widths.map(String.init).joined(separator: "-"))"
}

/// The blob's class labels: the description's `class_names`, one per output, else the
/// dataset class numbers. The blob stores them joined by commas (docs/blob-format.md), so
/// a name may be neither empty nor hold a comma.
/// - Throws: ``CompileError`` naming the name at fault, or the counts when they differ.
public func blobLabels(_ architecture: Architecture) throws -> [String] {
    guard let names = architecture.classNames else { return architecture.sourceClasses.map(String.init) }
    guard names.count == architecture.classes else {
        throw CompileError("__metadata__['architecture'] head.class_names: \(names.count) names for \(architecture.classes) "
            + "classes; give one name per output")
    }
    for (i, name) in names.enumerated() where name.isEmpty || name.contains(",") {
        throw CompileError("__metadata__['architecture'] head.class_names[\(i)]: '\(name)' "
            + (name.isEmpty ? "is empty" : "holds a comma, which separates the names in the blob") + "; rename the class")
    }
    return names
}

/// Compiles `network` (described by `architecture`) into blob bytes.
///
/// - Parameters:
///   - calibration: images for q8, of the model's input shape; unused for f32.
///   - source: where the network came from, kept in the blob's metadata.
///   - data: the checkpoint's data record (`DataRecord.json`), kept as the blob's metadata "data".
/// - Throws: ``CompileError`` naming the stage and the problem: a calibration set of
///   another shape than the model's input, a graph whose values may not stay finite,
///   a fine-tuning plan that does not fit.
public func compileNetwork(_ network: Sequential, architecture: Architecture, calibration: Dataset?,
                           options: CompileOptions = CompileOptions(), source: String? = nil, data: String? = nil) throws -> [UInt8] {
    if options.precision == .q8 && options.fineTuneMethods.contains(.bias) {
        throw CompileError("fine-tuning method bias trains every backbone bias in Float32, so it needs f32; "
            + "a q8 blob can plan head and last:L (its last L layers then stay Float32)")
    }
    let labels = try blobLabels(architecture)
    var builder = try lowerNetwork(try loweringSteps(network), input: architecture.input, name: blobName(architecture),
                                   labels: labels)
    if let source { builder.setMetadata("source", source) }
    if let data { builder.setMetadata(DataRecord.metadataKey, data) }
    // Prove the Float32 graph before calibrating on it: shapes, and values that stay finite.
    let f32: [UInt8]
    do {
        f32 = try builder.build()
    } catch {
        throw CompileError(error.message)
    }
    if options.precision == .q8 {
        guard let calibration, calibration.count > 0 else { throw CompileError("q8 needs calibration images; none were given") }
        let input = architecture.input
        guard calibration.shape == input.shape else {
            throw CompileError("the calibration images are \(shapeText(calibration.shape)), but the model takes "
                + "\(shapeText(input.shape)); calibrate on the data the model was trained on")
        }
        let count = min(max(options.calibrationCount, 1), calibration.count)
        let ranges: [Int: ActivationRange]
        let samples = (0..<count).map { Array(calibration.image($0)) }
        // `last` on a q8 blob trains its last layers in Float32: they stay Float32 (a mixed blob).
        let floatLayers = options.fineTuneMethods.contains(.last) ? options.fineTuneLayers : 0
        do {
            if options.fitRanges {
                let fit = try fitRanges(builder, blob: f32, samples: samples, floatLayers: floatLayers,
                                        floatClassifier: options.floatClassifier)
                ranges = fit.ranges
                options.onRangeFit?(fit)
            } else {
                ranges = try calibrate(blob: f32, samples: samples, percentile: options.percentile)
            }
        } catch {
            throw CompileError(error.description)
        }
        if options.biasCorrection {
            do {
                let correction = try correctBiases(builder, blob: f32, samples: samples, ranges: ranges,
                                                   floatLayers: floatLayers, floatClassifier: options.floatClassifier)
                builder = correction.builder
                options.onBiasCorrection?(correction)
            } catch {
                throw CompileError("bias correction: \(error.description)")
            }
        }
        do {
            builder = try quantizeNetwork(builder, ranges: ranges, floatLayers: floatLayers,
                                          floatClassifier: options.floatClassifier)
        } catch {
            throw CompileError("quantizing: \(error)")
        }
    }
    do {
        try builder.planFineTuning(maxClasses: options.maxClasses, maxShots: options.maxShots,
                                   methods: options.fineTuneMethods, layers: options.fineTuneLayers,
                                   optimizer: options.fineTuneOptimizer)
    } catch {
        throw CompileError("fine-tuning plan: \(error.message)")
    }
    do {
        return try builder.build()
    } catch {
        throw CompileError(error.message)
    }
}
