// `sprig train` and `sprig eval`.

import Foundation
import SprigTrain

let trainCommand = Command(
    name: "train",
    summary: "Train a preset or a described network on some classes of a data set and save a safetensors checkpoint.",
    usage: "sprig train [--model mlp|cnn|resnet|mobilenet | --model-spec FILE.json] [--data SOURCE] [--classes 0-4] [--epochs 5] [--out supernet.safetensors] [options]",
    positionals: 0...0,
    options: [
        OptionSpec(name: "model", value: "NAME", help: "A preset: " + Architecture.presets.joined(separator: ", ") + ".", defaultValue: "cnn"),
        OptionSpec(name: "model-spec", value: "FILE", help: "Your own network description (JSON; docs/checkpoint-format.md). Its input, if given, must be the data's shape."),
        OptionSpec(name: "data", value: "SOURCE", help: dataSourceHelp, defaultValue: "builtin"),
        OptionSpec(name: "classes", value: "SPEC", help: "Classes to train on (relabelled 0..n-1).", defaultValue: "0-4"),
        OptionSpec(name: "epochs", value: "N", help: "Passes over the training split.", defaultValue: "5"),
        OptionSpec(name: "batch", value: "N", help: "Mini-batch size.", defaultValue: "64"),
        OptionSpec(name: "lr", value: "X", help: "Peak learning rate (SGD, momentum 0.9, cosine with warm-up).", defaultValue: "0.05"),
        OptionSpec(name: "augment", value: "N", help: "Random shift of up to N pixels (0 = none).", defaultValue: "1 for a convolutional network, else 0"),
        OptionSpec(name: "width", value: "X", help: "Width multiplier of a preset's default widths.", defaultValue: "1.0"),
        OptionSpec(name: "seed", value: "S", help: "Seed of the weights, the shuffles and the augmentation.", defaultValue: "1"),
        OptionSpec(name: "threads", value: "N", help: "Threads for GEMM and the layers (1 gives byte-identical checkpoints).", defaultValue: "2"),
        OptionSpec(name: "out", value: "PATH", help: "Checkpoint to write (atomically).", defaultValue: "supernet.safetensors"),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object (accuracy, images_per_second, seconds, …)."),
    ] + imageFolderOptionSpecs,
    details: "The checkpoint records the data source, its split, the class names and the per-channel mean and std of the\ntraining images (docs/data.md); compile, run and eval use that record when --data is not given.",
    run: runTrain)

let evalCommand = Command(
    name: "eval",
    summary: "Accuracy of a checkpoint on the test split of its classes.",
    usage: "sprig eval CKPT [--data SOURCE] [--classes SPEC] [--json]",
    positionals: 1...1,
    options: [
        OptionSpec(name: "data", value: "SOURCE", help: dataSourceHelp, defaultValue: "the data the checkpoint records, else builtin"),
        OptionSpec(name: "classes", value: "SPEC", help: "Classes, in the checkpoint's output order.", defaultValue: "the checkpoint's"),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object (accuracy, loss, images_per_second, seconds)."),
    ],
    run: runEval)

func runTrain(_ a: ParsedArguments) throws {
    let epochs = try a.int("epochs", default: 5, range: 1...1000)
    let threads = try a.int("threads", default: 2, range: 1...64)
    var options = TrainOptions()
    options.epochs = epochs
    options.batchSize = try a.int("batch", default: 64, range: 1...65536)
    options.learningRate = Float(try a.double("lr", default: 0.05, range: 1e-9...1e9))
    options.seed = UInt64(try a.int("seed", default: 1, range: 0...Int.max))
    let out = a.string("out", default: "supernet.safetensors")
    GEMM.defaultThreads = threads

    let (source, splits, record) = try loadDataSource(a)
    if !a.flag("json") { reportSplit(splits, source: source) }
    let classes = try ClassSelection.parse(a.string("classes", default: "0-4"), present: splits.train.labelsPresent)
    let train = try splits.train.filtered(classes: classes)
    let test = try splits.test.filtered(classes: classes)
    var architecture = try modelArchitecture(a, input: inputSpec(of: train, source: source), classes: classes)
    if let names = splits.classNames { architecture.classNames = classes.map { $0 < names.count ? names[$0] : "\($0)" } }
    options.normalization = architecture.normalization
    options.augmentShift = try a.int("augment", default: architecture.isConvolutional ? 1 : 0, range: 0...4)
    let family = architecture.family
    let network = try buildNetwork(architecture, seed: options.seed)
    let params = parameterCount(network)
    if !a.flag("json") {
        printError("sprig train: \(family) \(architecture.widths) on \(shapeText(train.shape)) images, \(params) parameters, "
            + "\(train.count) training images of classes \(classes), \(epochs) epochs")
    }
    let result = try trainWithProgress(network, on: train, options: options)
    let evaluation = try evaluate(network, on: test, normalization: architecture.normalization)
    try saveCheckpoint(network, architecture: architecture, to: out, metadata: [DataRecord.metadataKey: record.json])
    if a.flag("json") {
        var o = JSONObject()
        o.set("model", family)
        o.set("params", params)
        o.set("epochs", epochs)
        o.set("accuracy", evaluation.accuracy)
        o.set("test_loss", evaluation.loss)
        o.set("train_loss", Double(result.trainLoss))
        o.set("images_per_second", result.imagesPerSecond)
        o.set("seconds", result.seconds)
        o.set("seconds_per_epoch", result.seconds / Double(epochs))
        o.set("checkpoint", out)
        print(o.text)
    } else {
        print(String(format: "%@: test accuracy %.2f%% on classes %@ (%d images); %.0f images/s, %@ per epoch; wrote %@",
                     family, evaluation.accuracy * 100, classes.map(String.init).joined(separator: ","), test.count,
                     result.imagesPerSecond, duration(result.seconds / Double(epochs)), out))
    }
}

/// The input description of a training set: its shape, and the per-channel mean and std
/// of its pixels. Fashion-MNIST (built in or the full set) keeps its published statistics,
/// so that its checkpoints are normalised alike whatever classes they train on.
func inputSpec(of train: Dataset, source: DataSource) -> InputSpec {
    if source == .builtin || source == .fashionMNIST, train.shape == InputSpec.fashionMNIST.shape { return .fashionMNIST }
    let n = Normalization.computed(from: train)
    return InputSpec(height: train.rows, width: train.cols, channels: train.channels, mean: n.mean, std: n.std)
}

/// Says on standard error how Sprig split an image folder, when it did.
func reportSplit(_ splits: DataSplits, source: DataSource, command: String = "train") {
    guard let split = splits.split else { return }
    printError("sprig \(command): \(source) has no train/ and test/: stratified split, test fraction \(split.testFraction), "
        + "seed \(split.seed): \(splits.train.count) training and \(splits.test.count) test images")
}

/// Throws, naming both shapes, when `data`'s images are not the model's input.
func requireShape(_ data: Dataset, of architecture: Architecture, model: String, data source: String) throws {
    guard data.shape == architecture.input.shape else {
        throw CommandError(description: "\(model) takes \(shapeText(architecture.input.shape)) images, but \(source) has "
            + "\(shapeText(data.shape)) images")
    }
}

/// `SprigTrain.train` with a progress bar on standard error (epoch, loss, accuracy, images/s).
func trainWithProgress(_ network: Sequential, on data: Dataset, options: TrainOptions, title: String = "train") throws -> TrainResult {
    let bar = ProgressBar(title, total: ((data.count + options.batchSize - 1) / options.batchSize) * options.epochs, unit: "step")
    return try SprigTrain.train(network, on: data, options: options) { p in
        bar.update(p.step, status: String(format: "epoch %d/%d loss %.4f acc %.3f %.0f img/s", p.epoch, options.epochs, p.loss,
                                          p.accuracy, p.imagesPerSecond))
    }
}

func runEval(_ a: ParsedArguments) throws {
    let path = a.positional[0]
    let (network, architecture) = try loadCheckpoint(path: path)
    let (source, splits) = try loadDataForModel(a, recorded: try DataRecord.read(checkpoint: path), input: architecture.input,
                                                command: "eval", model: path, quiet: a.flag("json"))
    let test = splits.test
    let classes = try a.string("classes").map { try ClassSelection.parse($0, present: test.labelsPresent) } ?? architecture.sourceClasses
    guard classes.count == architecture.classes else {
        throw UsageError(description: "--classes: \(classes.count) classes but \(path) has \(architecture.classes) outputs")
    }
    let data = try test.filtered(classes: classes)
    try requireShape(data, of: architecture, model: path, data: source.description)
    let start = Date()
    let result = try evaluate(network, on: data, normalization: architecture.normalization)
    let seconds = Date().timeIntervalSince(start)
    if a.flag("json") {
        var o = JSONObject()
        o.set("accuracy", result.accuracy)
        o.set("loss", result.loss)
        o.set("count", data.count)
        o.set("images_per_second", result.imagesPerSecond)
        o.set("seconds", seconds)
        print(o.text)
    } else {
        print(String(format: "%@: accuracy %.2f%% (loss %.4f) on %d test images of classes %@; %.0f images/s",
                     path, result.accuracy * 100, result.loss, data.count, classes.map(String.init).joined(separator: ","),
                     result.imagesPerSecond))
    }
}
