// `sprig compile`: checkpoint → .sprig blob, in f32 or int8.

import Foundation
import SprigCompile
import SprigRuntime
import SprigWriter
import SprigTrain

let compileCommand = Command(
    name: "compile",
    summary: "Compile a checkpoint into a .sprig blob (BN folded, activations fused; f32 or int8 with calibration).",
    usage: "sprig compile CKPT [--precision f32|q8] [--calib-data SOURCE] [--calib-classes SPEC] [--percentile F | --fit-ranges] [--bias-correction] [--float-classifier] [--max-classes 10] [--max-shots 20] [--finetune-methods head[,bias][,last:L][,reinit]] [--finetune-optimizer adam|sgd] --out MODEL.sprig [--json]",
    positionals: 1...1,
    options: [
        OptionSpec(name: "precision", value: "P", help: "f32 or q8.", defaultValue: "q8"),
        OptionSpec(name: "calib-data", value: "SOURCE", help: "Calibration images for q8: " + dataSourceHelp, defaultValue: "the data the checkpoint records, else builtin"),
        OptionSpec(name: "calib-classes", value: "SPEC", help: "Classes of the calibration images.", defaultValue: "the checkpoint's"),
        OptionSpec(name: "calib-count", value: "N", help: "Calibration images (from the training split).", defaultValue: "256"),
        OptionSpec(name: "percentile", value: "X", help: "Keep this central fraction of each activation's values (1 = min/max).", defaultValue: "1"),
        OptionSpec(name: "fit-ranges", value: nil, help: "Choose each activation's int8 range (its central fraction of 1, 0.99999, 0.9999 or 0.999) by the SQNR of the q8 outputs against the f32 ones on the calibration images, instead of --percentile."),
        OptionSpec(name: "bias-correction", value: nil, help: "Take off each int8 layer's bias the mean shift its rounding causes, per output channel, measured on the calibration images layer after layer (the f32 network is unchanged)."),
        OptionSpec(name: "float-classifier", value: nil, help: "q8: keep the classifier in Float32 behind a Dequantize of its int8 features (a mixed blob), so that the logits are not rounded to int8 steps, where near classes tie."),
        OptionSpec(name: "max-classes", value: "N", help: "Fine-tuning plan: classes the device may learn.", defaultValue: "10"),
        OptionSpec(name: "max-shots", value: "N", help: "Fine-tuning plan: shots per class.", defaultValue: "20"),
        OptionSpec(name: "finetune-methods", value: "LIST", help: "Fine-tuning plan: the methods it covers, comma-separated: head (always planned; covers imprint), bias, last:L (the last L layers), reinit (every layer, re-initialised and trained from the shots). bias and reinit need --precision f32; with q8, last:L keeps the last L layers and the classifier in Float32 (a mixed blob) so the device can train them.", defaultValue: "head"),
        OptionSpec(name: "finetune-optimizer", value: "O", help: "Fine-tuning plan: the optimizer the device trains with, adam or sgd. sgd keeps one moment per trained value instead of two, so the plan is smaller (for last:L by a quarter of the trained layers' bytes), and the device then uses SGD.", defaultValue: "adam"),
        OptionSpec(name: "out", value: "PATH", help: "The blob to write (atomically).", defaultValue: "model.sprig"),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object (blob_bytes, arena_bytes, finetune_arena_bytes, finetune_methods, finetune_optimizer, params, macs)."),
    ],
    run: runCompile)

func runCompile(_ a: ParsedArguments) throws {
    let (out, precision, file, macs) = try compileCheckpoint(a)
    let methods = try fineTuneMethods(a.string("finetune-methods", default: "head")).text
    let m = file.model
    if a.flag("json") {
        var o = JSONObject()
        o.set("file", out)
        o.set("precision", precision)
        o.set("blob_bytes", m.bytes.count)
        o.set("arena_bytes", m.arenaBytes)
        o.set("finetune_arena_bytes", m.finetuneArenaBytes)
        o.set("finetune_methods", methods)
        o.set("finetune_optimizer", try a.choice("finetune-optimizer", default: "adam", among: ["adam", "sgd"]))
        o.set("params", m.parameterCount)
        o.set("macs", macs)
        print(o.text)
    } else {
        print("\(out): \(precision), \(bytesText(m.bytes.count)), arena \(bytesText(m.arenaBytes)) for inference, "
            + "\(bytesText(m.finetuneArenaBytes)) for fine-tuning (\(m.finetuneMaxClasses) classes × \(m.finetuneMaxShots) shots; \(methods)), "
            + "\(m.parameterCount) params, \(macs) MACs")
    }
}

/// `sprig compile`'s options as the library's ``CompileOptions``.
func compileOptions(_ a: ParsedArguments) throws -> CompileOptions {
    var o = CompileOptions()
    o.precision = Precision(rawValue: try a.choice("precision", default: "q8", among: Precision.allCases.map(\.rawValue)))!
    o.maxClasses = try a.int("max-classes", default: o.maxClasses, range: 1...65535)
    o.maxShots = try a.int("max-shots", default: o.maxShots, range: 1...65535)
    let finetune = try fineTuneMethods(a.string("finetune-methods", default: "head"))
    if o.precision == .q8 && finetune.methods.contains(.reinit) {
        throw UsageError(description: "--finetune-methods: reinit re-initialises and trains every backbone layer in Float32, "
            + "so it needs --precision f32; a q8 blob can plan head and last:L")
    }
    if o.precision == .q8 && finetune.methods.contains(.bias) {
        throw UsageError(description: "--finetune-methods: bias trains every backbone bias in Float32, so it needs --precision f32; "
            + "a q8 blob can plan head and last:L")
    }
    o.fineTuneMethods = finetune.methods
    o.fineTuneLayers = finetune.layers
    o.fineTuneOptimizer = try a.choice("finetune-optimizer", default: "adam", among: ["adam", "sgd"]) == "sgd" ? .sgd : .adam
    o.calibrationCount = try a.int("calib-count", default: o.calibrationCount, range: 1...100_000)
    o.percentile = try a.double("percentile", default: o.percentile, range: 0.5...1)
    o.fitRanges = a.flag("fit-ranges")
    if o.fitRanges && a.string("percentile") != nil {
        throw UsageError(description: "--fit-ranges chooses each range's fraction itself; give it or --percentile, not both")
    }
    if o.fitRanges && !a.flag("json") {
        o.onRangeFit = { fit in
            let clipped = fit.fractions.values.filter { $0 < 1 }.count
            FileHandle.standardError.write(Data(String(format: "compile: ranges fitted: q8 outputs' SQNR %.1f dB with [min, max], %.1f dB with %d of %d ranges clipped (%d int8 blobs tried)\n",
                fit.minMaxSQNR, fit.fittedSQNR, clipped, fit.fractions.count, fit.evaluations).utf8))
        }
    }
    o.biasCorrection = a.flag("bias-correction")
    if o.biasCorrection && o.precision != .q8 {
        throw UsageError(description: "--bias-correction corrects the int8 layers' biases, so it needs --precision q8")
    }
    if o.biasCorrection && !a.flag("json") {
        o.onBiasCorrection = { c in
            FileHandle.standardError.write(Data(String(format: "compile: biases corrected in %d int8 layers (at most %.2f output steps): q8 outputs' SQNR %.1f dB before, %.1f dB after\n",
                c.layers, c.largestSteps, c.sqnrBefore, c.sqnrAfter).utf8))
        }
    }
    o.floatClassifier = a.flag("float-classifier")
    if o.floatClassifier && o.precision != .q8 {
        throw UsageError(description: "--float-classifier keeps the classifier of an int8 blob in Float32, so it needs --precision q8")
    }
    return o
}

/// The calibration images for a q8 compile of `architecture`: `--calib-data` (its
/// training split), of `--calib-classes` or the checkpoint's classes, shuffled.
func calibrationImages(_ a: ParsedArguments, architecture: Architecture, checkpoint: String, record: DataRecord?) throws -> Dataset {
    let source: DataSource
    let train: Dataset
    do {
        let loaded = try loadDataForModel(a, option: "calib-data", recorded: record, input: architecture.input, command: "compile",
                                          model: checkpoint, quiet: a.flag("json"))
        (source, train) = (loaded.source, loaded.splits.train)
    } catch let error as UsageError {
        throw error
    } catch {
        throw CommandError(description: "q8 needs calibration images: \(plainDescription(error))")
    }
    try requireShape(train, of: architecture, model: checkpoint, data: "--calib-data \(source)")
    let classes = try a.string("calib-classes").map { try ClassSelection.parse($0, present: train.labelsPresent) }
        ?? architecture.sourceClasses
    let data = try train.filtered(classes: classes).shuffled(seed: 7)
    guard data.count > 0 else { throw CommandError(description: "no calibration images of classes \(classes) in \(source)") }
    return data
}

/// Compiles the checkpoint named in `a` (`sprig compile`'s options) and writes the blob.
func compileCheckpoint(_ a: ParsedArguments) throws -> (out: String, precision: String, file: BlobFile, macs: Int) {
    let path = a.positional[0]
    let options = try compileOptions(a)
    let out = a.string("out", default: "model.sprig")
    let (network, architecture) = try loadCheckpoint(path: path)
    let record = try DataRecord.read(checkpoint: path)
    let calibration = options.precision == .q8
        ? try calibrationImages(a, architecture: architecture, checkpoint: path, record: record) : nil
    let blob: [UInt8]
    do {
        blob = try compileNetwork(network, architecture: architecture, calibration: calibration, options: options, source: path,
                                  data: record?.json)
    } catch let error as CompileError {
        throw CommandError(description: "\(path): \(error)")
    }
    try writeFileAtomically(blob, to: out)
    let file = try BlobFile(out)
    // "mixed" for a q8 blob with a Float32 tail (--finetune-methods last:L), as its metadata says.
    let precision = file.metadata("precision")
    return (out, precision.isEmpty ? options.precision.rawValue : precision, file, Int(clamping: file.model.work.macs))
}

/// The methods of `--finetune-methods` ("head", "bias", "last:L", "reinit", comma-separated) and the layers `last` may train.
/// `head` is always included: it is the device's default method, and its plan covers `imprint`.
///
/// Example: "head,last:2" → methods [head, last], layers 2, text "head,last:2"; "bias" → [head, bias], layers 1.
/// - Throws: ``UsageError`` for an unknown method, a `last` without a layer count, or a count outside 1 … 255.
func fineTuneMethods(_ text: String) throws -> (methods: [FineTuneMethod], layers: Int, text: String) {
    var methods: [FineTuneMethod] = [.head]
    var layers = 1
    for item in text.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }) {
        let method: FineTuneMethod
        switch item {
        case "head": method = .head
        case "bias": method = .bias
        case "reinit": method = .reinit
        case _ where item.hasPrefix("last:"):
            guard let l = Int(item.dropFirst(5)), (1...255).contains(l) else {
                throw UsageError(description: "--finetune-methods: '\(item)': last:L needs a layer count L in 1...255")
            }
            method = .last
            layers = l
        default:
            throw UsageError(description: "--finetune-methods: '\(item)' is not head, bias, last:L or reinit (e.g. head,last:2)")
        }
        if !methods.contains(method) { methods.append(method) }
    }
    let names = methods.map { $0 == .last ? "last:\(layers)" : "\($0.name)" }
    return (methods, layers, names.joined(separator: ","))
}
