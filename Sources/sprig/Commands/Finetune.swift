// `sprig finetune`: simulates on-device fine-tuning on the host, with the
// runtime's own FineTuner, over seeded few-shot episodes.

import Foundation
import SprigPrune
import SprigRuntime
import SprigTrain

let finetuneCommand = Command(
    name: "finetune",
    summary: "Simulate on-device few-shot fine-tuning over seeded episodes; report accuracy, time and arena bytes.",
    usage: "sprig finetune MODEL.sprig [--data SOURCE] [--classes 5-9] [--shots K] [--method M] [--layers L] [--seed S] [--episodes E] [--replan] [--out TUNED.sprig] [--json]",
    positionals: 1...1,
    options: [
        OptionSpec(name: "data", value: "SOURCE", help: "builtin, fashion-mnist or a directory of IDX files.", defaultValue: "builtin"),
        OptionSpec(name: "classes", value: "SPEC", help: "The new classes (their shots come from the train split, the test from the test split).", defaultValue: "5-9"),
        OptionSpec(name: "shots", value: "K", help: "Shots per class.", defaultValue: "5"),
        OptionSpec(name: "method", value: "M", help: "imprint (class means), head (imprint, then train the classifier on cached features), bias (imprint, then train every backbone bias and the classifier, TinyTL) or last (imprint, then train the last L layers and the classifier). bias and last need a Float32 blob.", defaultValue: "head"),
        OptionSpec(name: "layers", value: "L", help: "Backbone layers (Dense/Conv2D/DepthwiseConv2D, counted back from the classifier) that last trains; at most the plan's.", defaultValue: "1"),
        OptionSpec(name: "seed", value: "S", help: "Episode e uses seed S+e for its shots and its training.", defaultValue: "0"),
        OptionSpec(name: "episodes", value: "E", help: "Episodes to average.", defaultValue: "10"),
        OptionSpec(name: "epochs", value: "N", help: "Training epochs (head, bias, last).", defaultValue: "\(FineTuneOptions().epochs)"),
        OptionSpec(name: "lr", value: "X", help: "Learning rate of the classifier (head, bias, last).", defaultValue: "\(FineTuneOptions().learningRate)"),
        OptionSpec(name: "backbone-lr", value: "X", help: "Learning rate of the backbone's parameters (bias, last).", defaultValue: "\(FineTuneOptions().backboneLearningRate)"),
        OptionSpec(name: "optimizer", value: "O", help: "adam or sgd (head, bias, last).", defaultValue: "adam"),
        OptionSpec(name: "batch", value: "B", help: "Samples per step, 0 = all (head, bias, last).", defaultValue: "\(FineTuneOptions().batchSize)"),
        OptionSpec(name: "anchor", value: "L", help: "Pull toward the imprinted weights (head, bias, last).", defaultValue: "\(FineTuneOptions().anchor)"),
        OptionSpec(name: "scale", value: "S", help: "Length of the imprinted rows (cosine scale).", defaultValue: "\(FineTuneOptions().scale)"),
        OptionSpec(name: "augment", value: "A", help: "Shift copies per shot: 0 none, 1 (±1 px), 2 (±1, ±2 px).", defaultValue: "head: 1, else 0; at most the plan's level"),
        OptionSpec(name: "replan", value: nil, help: "Ignore the blob's fine-tuning plan and size one for this request (host simulation only; a device always uses the blob's)."),
        OptionSpec(name: "out", value: "PATH", help: "Write the tuned blob of the first episode here (atomically)."),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object."),
    ],
    details: """
        Loads the blob, draws E episodes of K shots per class from the train split of --classes
        (SprigTrain's EpisodeSampler, seed S+e), fine-tunes with the runtime's FineTuner inside one
        arena of the blob's fine-tuning plan, and measures the accuracy on every test image of those
        classes. For imprint and head the backbone is frozen, so test features are computed once; bias
        and last change it, so they are recomputed after every episode. A blob without a fine-tuning
        plan (or any blob, with --replan) gets one sized for these classes, shots, method and layers
        (the tuned blob then carries it). A request beyond the plan (classes, shots, augmentation,
        layers) is refused with the runtime's error.
        --json keys: accuracy (mean fraction), accuracy_ci95 (half-width, Student t), accuracies,
        seconds (mean wall time per adaptation), seconds_first, arena_bytes (the plan), arena_used,
        blob_bytes (tuned), classes, shots, episodes, method, layers (last), augmentation, loss_initial and
        loss_final (the last episode's; NaN for imprint).
        """,
    run: runFinetune)

/// What a run of few-shot episodes on the device runtime measured.
struct FewShotReport {
    var methodName: String
    var method: FineTuneMethod
    var options: FineTuneOptions
    var classes: Int
    var shots: Int
    var testCount: Int
    var accuracies: [Double]
    /// Wall time of each adaptation.
    var seconds: [Double]
    var planBytes: Int
    var arenaUsed: Int
    var tunedBytes: Int
    var lossInitial: Float
    var lossFinal: Float

    var mean: Double { accuracies.reduce(0, +) / Double(max(accuracies.count, 1)) }
    var meanSeconds: Double { seconds.reduce(0, +) / Double(max(seconds.count, 1)) }
}

func runFinetune(_ a: ParsedArguments) throws {
    let r = try fewShotEpisodes(a, progress: !a.flag("json"))
    let ci = meanAndCI(r.accuracies).ci
    if a.flag("json") {
        var o = JSONObject()
        o.set("accuracy", r.mean)
        o.set("accuracy_ci95", ci)
        o.set("accuracies", raw: "[" + r.accuracies.map { String($0) }.joined(separator: ",") + "]")
        o.set("seconds", r.meanSeconds)
        o.set("seconds_first", r.seconds.first ?? 0)
        o.set("arena_bytes", r.planBytes)
        o.set("arena_used", r.arenaUsed)
        o.set("blob_bytes", r.tunedBytes)
        o.set("classes", r.classes)
        o.set("shots", r.shots)
        o.set("episodes", r.accuracies.count)
        o.set("method", r.methodName)
        if r.method == .last { o.set("layers", r.options.layers) }
        o.set("augmentation", r.options.augmentation)
        o.set("loss_initial", Double(r.lossInitial))
        o.set("loss_final", Double(r.lossFinal))
        print(o.text)
    } else {
        print(String(format: "%@ %d-way %d-shot over %d episodes: accuracy %.2f%% ± %.2f (95%% CI) on %d test images",
                     r.methodName, r.classes, r.shots, r.accuracies.count, 100 * r.mean, 100 * ci, r.testCount))
        print(String(format: "time per adaptation: %.2f ms mean, %.2f ms first", r.meanSeconds * 1e3, (r.seconds.first ?? 0) * 1e3))
        print("arena: \(bytesText(r.planBytes)) planned, \(bytesText(r.arenaUsed)) used")
        if let out = a.string("out") { print("wrote \(out) (\(bytesText(r.tunedBytes)), episode 0)") }
    }
}

/// Runs `sprig finetune`'s episodes (its options in `a`) and measures them.
func fewShotEpisodes(_ a: ParsedArguments, progress showProgress: Bool) throws -> FewShotReport {
    let path = a.positional[0]
    let methodName = try a.choice("method", default: "head", among: ["imprint", "head", "bias", "last"])
    let method: FineTuneMethod = ["imprint": .imprint, "head": .head, "bias": .bias, "last": .last][methodName] ?? .head
    var options = FineTuneOptions(method: method)
    options.epochs = try a.int("epochs", default: options.epochs, range: 1...10_000)
    options.learningRate = Float(try a.double("lr", default: Double(options.learningRate), range: 1e-9...10))
    options.backboneLearningRate = Float(try a.double("backbone-lr", default: Double(options.backboneLearningRate),
                                                      range: 1e-9...10))
    options.layers = try a.int("layers", default: options.layers, range: 1...255)
    options.optimizer = try a.choice("optimizer", default: "adam", among: ["adam", "sgd"]) == "sgd" ? .sgd : .adam
    options.batchSize = try a.int("batch", default: options.batchSize, range: 0...1_000_000)
    options.anchor = Float(try a.double("anchor", default: Double(options.anchor), range: 0...1_000_000))
    options.scale = Float(try a.double("scale", default: Double(options.scale), range: 1e-6...1000))
    let augment: Int? = a.string("augment") == nil ? nil : try a.int("augment", default: 0, range: 0...2)
    let shots = try a.int("shots", default: 5, range: 1...10_000)
    let episodes = try a.int("episodes", default: 10, range: 1...100_000)
    let seed = UInt64(try a.int("seed", default: 0, range: 0...Int.max))
    let json = !showProgress

    // The blob, in a 16-byte aligned buffer that outlives the model.
    let bytes = try readFileBytes(atPath: path)
    let blob = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 16), alignment: 16)
    defer { blob.deallocate() }
    blob.copyBytes(from: bytes)
    let model: Model
    do {
        model = try Model(bytes: UnsafeRawBufferPointer(rebasing: blob[0..<bytes.count]))
    } catch {
        throw CommandError(description: "\(path): \(error.message)")
    }

    // Data: shots from the train split, evaluation on the test split.
    let source = DataSource(argument: a.string("data", default: "builtin"))
    let splits = try source.load()
    let classes = try ClassSelection.parse(a.string("classes", default: "5-9"), present: splits.train.labelsPresent)
    let train = try splits.train.filtered(classes: classes)
    let test = try splits.test.filtered(classes: classes)
    let sampler = EpisodeSampler(dataset: train)

    // The plan: the blob's, or one sized for this request.
    var plan = a.flag("replan") ? nil : FineTunePlan(model: model)
    var planNote = ""
    if plan == nil {
        do {
            plan = try FineTunePlan.required(model: model, maxClasses: classes.count, maxShots: shots, method: method,
                                             augmentation: augment, layers: options.layers)
        } catch {
            throw CommandError(description: "\(path): \(error.message)")
        }
        planNote = (a.flag("replan") ? "--replan" : "no fine-tuning plan in the blob")
            + ": sized one for \(classes.count) classes × \(shots) shots, \(methodName)"
            + (method == .last ? " \(options.layers)" : "")
    }
    guard let plan else { throw CommandError(description: "\(path): no fine-tuning plan") }
    options.augmentation = augment ?? plan.defaultAugmentation(for: method)
    let arena = try allocateArena(plan.arenaBytes, path: path, field: "finetune_arena_bytes")
    defer { free(arena.baseAddress) }
    var tuner: FineTuner
    do {
        tuner = try FineTuner(model: model, arena: UnsafeMutableRawBufferPointer(rebasing: arena[0..<plan.arenaBytes]), plan: plan)
    } catch {
        throw CommandError(description: "\(path): \(error.message)")
    }
    guard test.valuesPerImage == tuner.inputElements, train.valuesPerImage == tuner.inputElements else {
        throw CommandError(description: "data \(source): images have \(test.valuesPerImage) values, \(path) takes \(tuner.inputElements)")
    }
    if !planNote.isEmpty && !json { printError("sprig finetune: \(planNote)") }

    // Test features: once for a frozen backbone, after every episode for bias and last.
    let d = tuner.featureCount
    var testFeatures = [Float](repeating: 0, count: test.count * d)
    func computeTestFeatures() throws {
        try testFeatures.withUnsafeMutableBufferPointer { all in
            for i in 0..<test.count {
                let image = Array(test.image(i))
                try image.withUnsafeBytes { p in
                    try tuner.features(pixels: p, into: UnsafeMutableBufferPointer(rebasing: all[(i * d)..<((i + 1) * d)]))
                }
            }
        }
    }
    if !method.trainsBackbone { try computeTestFeatures() }

    // Class names for the tuned blob: the original labels of these classes, if the blob has them.
    var names = classes.map { "class\($0)" }
    if let labels = model.metadata(key: "labels") {
        let all = String(decoding: labels, as: UTF8.self).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        if classes.allSatisfy({ $0 < all.count }) { names = classes.map { all[$0] } }
    }

    var accuracies: [Double] = []
    var seconds: [Double] = []
    var tunedBytes = 0
    var used = 0
    let progress = json ? nil : ProgressBar("finetune \(methodName) \(shots)-shot", total: episodes, unit: "ep")
    for e in 0..<episodes {
        let episode: Episode
        do {
            episode = try sampler.sample(nWay: classes.count, kShot: shots, query: .perClass(0), seed: seed &+ UInt64(e))
        } catch DataError.notEnoughSamples(let c, let available, _) where c < classes.count {
            // The sampler counts in episode labels (0 ..< n); name the class as the user gave it.
            throw CommandError(description: "--shots \(shots): class \(classes[c]) has only \(available) training images in data \(source)")
        }
        var pixels: [UInt8] = []
        pixels.reserveCapacity(episode.supportIndices.count * tuner.inputElements)
        for i in episode.supportIndices { pixels += train.image(i) }
        let labels = episode.supportLabels.map { UInt8($0) }
        options.seed = seed &+ UInt64(e)
        let start = DispatchTime.now().uptimeNanoseconds
        do {
            try pixels.withUnsafeBytes { p in
                try labels.withUnsafeBytes { l in
                    try tuner.fineTune(shots: p, labels: l, classCount: classes.count, options: options)
                }
            }
        } catch SprigError.fineTune(.tooManyShots(let k, let requested, let planned)) where k < classes.count {
            // The tuner counts in episode labels (0 ..< n); name the class as the user gave it.
            throw CommandError(description: "\(path): finetune_max_shots: is \(planned), --shots \(requested) asks more for class \(classes[k])")
        } catch let error as SprigError {
            throw CommandError(description: "\(path): \(error.message)")
        }
        seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
        used = tuner.layout?.total ?? 0
        if method.trainsBackbone { try computeTestFeatures() }
        // Accuracy on every test image of the classes.
        var correct = 0
        try testFeatures.withUnsafeBufferPointer { all in
            for i in 0..<test.count {
                let k = try tuner.classify(features: UnsafeBufferPointer(rebasing: all[(i * d)..<((i + 1) * d)]))
                if k == Int(test.labels[i]) { correct += 1 }
            }
        }
        accuracies.append(Double(correct) / Double(max(test.count, 1)))
        if e == 0, let out = a.string("out") {
            var nameBytes = Array(names.joined(separator: ",").utf8)
            let blobBytes: [UInt8] = try nameBytes.withUnsafeMutableBytes { n in
                do {
                    let size = try tuner.tunedBlobBytes(classNames: UnsafeRawBufferPointer(n))
                    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
                    defer { buffer.deallocate() }
                    let written = try tuner.writeTunedBlob(into: buffer, classNames: UnsafeRawBufferPointer(n))
                    return Array(buffer[0..<written])
                } catch {
                    throw CommandError(description: "\(out): \((error as? SprigError)?.message ?? "\(error)")")
                }
            }
            try writeFileAtomically(blobBytes, to: out)
            tunedBytes = blobBytes.count
        }
        progress?.update(e + 1, status: String(format: "acc %.1f%%", 100 * accuracies.reduce(0, +) / Double(accuracies.count)))
    }

    return FewShotReport(methodName: methodName, method: method, options: options, classes: classes.count, shots: shots,
                         testCount: test.count, accuracies: accuracies, seconds: seconds, planBytes: plan.arenaBytes,
                         arenaUsed: used, tunedBytes: tunedBytes, lossInitial: tuner.loss.initial, lossFinal: tuner.loss.final)
}
