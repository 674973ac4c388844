// `sprig finetune`: simulates on-device fine-tuning on the host, with the
// runtime's own FineTuner, over seeded few-shot episodes.

import Foundation
import SprigRuntime
import SprigTrain

let finetuneCommand = Command(
    name: "finetune",
    summary: "Simulate on-device few-shot fine-tuning over seeded episodes; report accuracy, time and arena bytes.",
    usage: "sprig finetune MODEL.sprig [--data SOURCE] [--classes 5-9] [--shots K] [--method M] [--seed S] [--episodes E] [--out TUNED.sprig] [--json]",
    positionals: 1...1,
    options: [
        OptionSpec(name: "data", value: "SOURCE", help: "builtin, fashion-mnist or a directory of IDX files.", defaultValue: "builtin"),
        OptionSpec(name: "classes", value: "SPEC", help: "The new classes (their shots come from the train split, the test from the test split).", defaultValue: "5-9"),
        OptionSpec(name: "shots", value: "K", help: "Shots per class.", defaultValue: "5"),
        OptionSpec(name: "method", value: "M", help: "imprint, head, bias or last.", defaultValue: "head"),
        OptionSpec(name: "seed", value: "S", help: "Episode e uses seed S+e for its shots and its training.", defaultValue: "0"),
        OptionSpec(name: "episodes", value: "E", help: "Episodes to average.", defaultValue: "10"),
        OptionSpec(name: "epochs", value: "N", help: "Training epochs (head).", defaultValue: "\(FineTuneOptions().epochs)"),
        OptionSpec(name: "lr", value: "X", help: "Learning rate (head).", defaultValue: "\(FineTuneOptions().learningRate)"),
        OptionSpec(name: "optimizer", value: "O", help: "adam or sgd (head).", defaultValue: "adam"),
        OptionSpec(name: "batch", value: "B", help: "Samples per step, 0 = all (head).", defaultValue: "\(FineTuneOptions().batchSize)"),
        OptionSpec(name: "anchor", value: "L", help: "Pull toward the imprinted weights (head).", defaultValue: "\(FineTuneOptions().anchor)"),
        OptionSpec(name: "scale", value: "S", help: "Length of the imprinted rows (cosine scale).", defaultValue: "\(FineTuneOptions().scale)"),
        OptionSpec(name: "augment", value: "A", help: "Shift copies per shot: 0 none, 1 (±1 px), 2 (±1, ±2 px).", defaultValue: "head: 1, else 0"),
        OptionSpec(name: "out", value: "PATH", help: "Write the tuned blob of the first episode here (atomically)."),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object."),
    ],
    details: """
        Loads the blob, draws E episodes of K shots per class from the train split of --classes
        (SprigTrain's EpisodeSampler, seed S+e), fine-tunes with the runtime's FineTuner inside one
        arena of the blob's fine-tuning plan, and measures the accuracy on every test image of those
        classes. The backbone is frozen, so test features are computed once. A blob without a
        fine-tuning plan gets one sized for these classes and shots (the tuned blob then carries it).
        --json keys: accuracy (mean fraction), accuracy_ci95 (half-width, Student t), accuracies,
        seconds (mean wall time per adaptation), seconds_first, arena_bytes (the plan), arena_used,
        blob_bytes (tuned), classes, shots, episodes, method.
        """,
    run: runFinetune)

func runFinetune(_ a: ParsedArguments) throws {
    let path = a.positional[0]
    let methodName = try a.choice("method", default: "head", among: ["imprint", "head", "bias", "last"])
    let method: FineTuneMethod = ["imprint": .imprint, "head": .head, "bias": .bias, "last": .last][methodName] ?? .head
    var options = FineTuneOptions(method: method)
    options.epochs = try a.int("epochs", default: options.epochs, range: 1...10_000)
    options.learningRate = Float(try a.double("lr", default: Double(options.learningRate), range: 1e-9...10))
    options.optimizer = try a.choice("optimizer", default: "adam", among: ["adam", "sgd"]) == "sgd" ? .sgd : .adam
    options.batchSize = try a.int("batch", default: options.batchSize, range: 0...1_000_000)
    options.anchor = Float(try a.double("anchor", default: Double(options.anchor), range: 0...1_000_000))
    options.scale = Float(try a.double("scale", default: Double(options.scale), range: 1e-6...1000))
    options.augmentation = try a.int("augment", default: options.augmentation, range: 0...2)
    let shots = try a.int("shots", default: 5, range: 1...10_000)
    let episodes = try a.int("episodes", default: 10, range: 1...100_000)
    let seed = UInt64(try a.int("seed", default: 0, range: 0...Int.max))
    let json = a.flag("json")

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
    var plan = FineTunePlan(model: model)
    var planNote = ""
    if plan == nil {
        do {
            plan = try FineTunePlan.required(model: model, maxClasses: classes.count, maxShots: shots, method: method,
                                             augmentation: options.augmentation)
        } catch {
            throw CommandError(description: "\(path): \(error.message)")
        }
        planNote = "no fine-tuning plan in the blob: sized one for \(classes.count) classes × \(shots) shots"
    }
    guard let plan else { throw CommandError(description: "\(path): no fine-tuning plan") }
    let arena = try allocateArena(plan.arenaBytes, path: path, field: "finetune_arena_bytes")
    defer { free(arena.baseAddress) }
    var tuner: FineTuner
    do {
        tuner = try FineTuner(model: model, arena: UnsafeMutableRawBufferPointer(rebasing: arena[0..<plan.arenaBytes]), plan: plan)
    } catch {
        throw CommandError(description: "\(path): \(error.message)")
    }
    guard test.pixelsPerImage == tuner.inputElements, train.pixelsPerImage == tuner.inputElements else {
        throw CommandError(description: "data \(source): images have \(test.pixelsPerImage) pixels, \(path) takes \(tuner.inputElements)")
    }
    if !planNote.isEmpty && !json { printError("sprig finetune: \(planNote)") }

    // Test features, once (the backbone is frozen).
    let d = tuner.featureCount
    var testFeatures = [Float](repeating: 0, count: test.count * d)
    try testFeatures.withUnsafeMutableBufferPointer { all in
        for i in 0..<test.count {
            let image = Array(test.image(i))
            try image.withUnsafeBytes { p in
                try tuner.features(pixels: p, into: UnsafeMutableBufferPointer(rebasing: all[(i * d)..<((i + 1) * d)]))
            }
        }
    }

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

    let mean = accuracies.reduce(0, +) / Double(episodes)
    let ci = confidenceHalfWidth95(accuracies)
    let meanSeconds = seconds.reduce(0, +) / Double(episodes)
    if json {
        var o = JSONObject()
        o.set("accuracy", mean)
        o.set("accuracy_ci95", ci)
        o.set("accuracies", raw: "[" + accuracies.map { String($0) }.joined(separator: ",") + "]")
        o.set("seconds", meanSeconds)
        o.set("seconds_first", seconds.first ?? 0)
        o.set("arena_bytes", plan.arenaBytes)
        o.set("arena_used", used)
        o.set("blob_bytes", tunedBytes)
        o.set("classes", classes.count)
        o.set("shots", shots)
        o.set("episodes", episodes)
        o.set("method", methodName)
        print(o.text)
    } else {
        print(String(format: "%@ %d-way %d-shot over %d episodes: accuracy %.2f%% ± %.2f (95%% CI) on %d test images",
                     methodName, classes.count, shots, episodes, 100 * mean, 100 * ci, test.count))
        print(String(format: "time per adaptation: %.2f ms mean, %.2f ms first", meanSeconds * 1e3, (seconds.first ?? 0) * 1e3))
        print("arena: \(bytesText(plan.arenaBytes)) planned, \(bytesText(used)) used")
        if let out = a.string("out") { print("wrote \(out) (\(bytesText(tunedBytes)), episode 0)") }
    }
}

/// Half-width of the 95% confidence interval of the mean (Student t, n − 1 degrees of freedom).
func confidenceHalfWidth95(_ values: [Double]) -> Double {
    let n = values.count
    guard n >= 2 else { return 0 }
    let mean = values.reduce(0, +) / Double(n)
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)
    // t(0.975, df) for df = 1…30, then the normal value.
    let t: [Double] = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
                       2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
                       2.052, 2.048, 2.045, 2.042]
    let critical = n - 1 <= t.count ? t[n - 2] : 1.960
    return critical * (variance / Double(n)).squareRoot()
}
