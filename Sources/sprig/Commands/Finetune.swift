// `sprig finetune`: simulates on-device fine-tuning on the host, with the
// runtime's own FineTuner, over seeded few-shot episodes.

import Foundation
import SprigPipelines
import SprigPrune
import SprigRuntime
import SprigTrain

let finetuneCommand = Command(
    name: "finetune",
    summary: "Simulate on-device few-shot fine-tuning over seeded episodes; report accuracy, time and arena bytes.",
    usage: "sprig finetune MODEL.sprig [--data SOURCE] [--classes 5-9] [--shots K] [--method M] [--layers L] [--seed S] [--episodes E] [--replan] [--out TUNED.sprig] [--json]",
    positionals: 1...1,
    options: [
        OptionSpec(name: "data", value: "SOURCE", help: dataSourceHelp, defaultValue: "the data the blob records, else builtin"),
        OptionSpec(name: "classes", value: "SPEC", help: "The new classes (their shots come from the train split, the test from the test split).", defaultValue: "5-9"),
        OptionSpec(name: "shots", value: "K", help: "Shots per class.", defaultValue: "5"),
        OptionSpec(name: "method", value: "M", help: "imprint (class means), head (imprint, then train the classifier on cached features), bias (imprint, then train every backbone bias and the classifier, TinyTL) last (imprint, then train the last L layers and the classifier) or reinit (re-initialise every backbone layer He-uniform from the seed, imprint on the random features, then train every layer and the classifier from the shots). bias and reinit need a Float32 blob (reinit one compiled with --finetune-methods …,reinit); last one whose last L layers are Float32 (f32, or q8 compiled with --finetune-methods head,last:L).", defaultValue: "head"),
        OptionSpec(name: "layers", value: "L", help: "Backbone layers (Dense/Conv2D/DepthwiseConv2D, counted back from the classifier) that last trains; at most the plan's.", defaultValue: "1"),
        OptionSpec(name: "seed", value: "S", help: "Episode e uses seed S+e for its shots and its training (and reinit's initial weights).", defaultValue: "0"),
        OptionSpec(name: "episodes", value: "E", help: "Episodes to average.", defaultValue: "10"),
        OptionSpec(name: "epochs", value: "N", help: "Training epochs (head, bias, last, reinit).", defaultValue: "\(FineTuneOptions().epochs)"),
        OptionSpec(name: "lr", value: "X", help: "Learning rate of the classifier (head, bias, last, reinit).", defaultValue: "\(FineTuneOptions().learningRate)"),
        OptionSpec(name: "backbone-lr", value: "X", help: "Learning rate of the backbone's parameters (bias, last, reinit).", defaultValue: "\(FineTuneMethod.bias.defaultBackboneLearningRate) for bias, \(FineTuneMethod.last.defaultBackboneLearningRate) for last (\(FineTuneMethod.last.defaultBackboneLearningRate(optimizer: .sgd)) with sgd), \(FineTuneMethod.reinit.defaultBackboneLearningRate) for reinit"),
        OptionSpec(name: "optimizer", value: "O", help: "adam or sgd (head, bias, last, reinit).", defaultValue: "adam if the plan holds it, else sgd (a blob compiled with --finetune-optimizer sgd), as on the device"),
        OptionSpec(name: "batch", value: "B", help: "Samples per step, 0 = all (head, bias, last, reinit).", defaultValue: "\(FineTuneOptions().batchSize)"),
        OptionSpec(name: "anchor", value: "L", help: "Pull toward the imprinted weights (head, bias, last, reinit).", defaultValue: "\(FineTuneOptions().anchor)"),
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
        classes. For imprint and head the backbone is frozen, so test features are computed once; bias,
        last and reinit change it, so they are recomputed after every episode. A blob without a fine-tuning
        plan (or any blob, with --replan) gets one sized for these classes, shots, method and layers
        (the tuned blob then carries it). A request beyond the plan (classes, shots, augmentation,
        layers) is refused with the runtime's error.
        --json keys: accuracy (mean fraction), accuracy_ci95 (half-width, Student t), accuracies,
        seconds (mean wall time per adaptation), seconds_first, arena_bytes (the plan), arena_used,
        blob_bytes (tuned), classes, shots, episodes, method, layers (last), optimizer, backbone_lr, augmentation, loss_initial and
        loss_final (the last episode's; NaN for imprint).
        """,
    run: runFinetune)

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
        o.set("blob_bytes", r.tunedBlob?.count ?? 0)
        o.set("classes", r.classes)
        o.set("shots", r.shots)
        o.set("episodes", r.accuracies.count)
        o.set("method", methodName(r.method))
        if r.method == .last { o.set("layers", r.options.layers) }
        o.set("optimizer", r.options.optimizer == .sgd ? "sgd" : "adam")
        o.set("backbone_lr", Double(r.options.backboneLearningRate))
        o.set("augmentation", r.options.augmentation)
        o.set("loss_initial", Double(r.lossInitial))
        o.set("loss_final", Double(r.lossFinal))
        print(o.text)
    } else {
        print(String(format: "%@ %d-way %d-shot over %d episodes: accuracy %.2f%% ± %.2f (95%% CI) on %d test images",
                     methodName(r.method), r.classes, r.shots, r.accuracies.count, 100 * r.mean, 100 * ci, r.testCount))
        print(String(format: "time per adaptation: %.2f ms mean, %.2f ms first", r.meanSeconds * 1e3, (r.seconds.first ?? 0) * 1e3))
        print("arena: \(bytesText(r.planBytes)) planned, \(bytesText(r.arenaUsed)) used")
        if let out = a.string("out") { print("wrote \(out) (\(bytesText(r.tunedBlob?.count ?? 0)), episode 0)") }
    }
}

/// `sprig finetune`'s options as the library's ``FewShotSettings``.
func fewShotSettings(_ a: ParsedArguments) throws -> FewShotSettings {
    let name = try a.choice("method", default: "head", among: ["imprint", "head", "bias", "last", "reinit"])
    let method: FineTuneMethod = ["imprint": .imprint, "head": .head, "bias": .bias, "last": .last,
                                  "reinit": .reinit][name] ?? .head
    var s = FewShotSettings(method: method)
    s.options.epochs = try a.int("epochs", default: s.options.epochs, range: 1...10_000)
    s.options.learningRate = Float(try a.double("lr", default: Double(s.options.learningRate), range: 1e-9...10))
    if a.string("backbone-lr") != nil {
        s.backboneLearningRate = Float(try a.double("backbone-lr", default: 0, range: 1e-9...10))
    }
    s.options.layers = try a.int("layers", default: s.options.layers, range: 1...255)
    if a.string("optimizer") != nil {
        s.optimizer = try a.choice("optimizer", default: "adam", among: ["adam", "sgd"]) == "sgd" ? .sgd : .adam
    }
    s.options.batchSize = try a.int("batch", default: s.options.batchSize, range: 0...1_000_000)
    s.options.anchor = Float(try a.double("anchor", default: Double(s.options.anchor), range: 0...1_000_000))
    s.options.scale = Float(try a.double("scale", default: Double(s.options.scale), range: 1e-6...1000))
    s.augmentation = a.string("augment") == nil ? nil : try a.int("augment", default: 0, range: 0...2)
    s.shots = try a.int("shots", default: s.shots, range: 1...10_000)
    s.episodes = try a.int("episodes", default: s.episodes, range: 1...100_000)
    s.seed = UInt64(try a.int("seed", default: 0, range: 0...Int.max))
    s.replan = a.flag("replan")
    return s
}

/// Runs `sprig finetune`'s episodes (its options in `a`) through the library, with a progress bar
/// unless `showProgress` is false, and writes `--out`.
func fewShotEpisodes(_ a: ParsedArguments, progress showProgress: Bool) throws -> FewShotReport {
    let path = a.positional[0]
    var settings = try fewShotSettings(a)
    let bytes = try readFileBytes(atPath: path)
    let (source, splits) = try loadDataForModel(a, recorded: try BlobFile(path).dataRecord, input: nil, command: "finetune",
                                                model: path, quiet: !showProgress)
    let classes = try ClassSelection.parse(a.string("classes", default: "5-9"), present: splits.train.labelsPresent)
    let train = try splits.train.filtered(classes: classes)
    let test = try splits.test.filtered(classes: classes)
    if let names = splits.classNames { settings.classNames = classes.map { $0 < names.count ? names[$0] : "\($0)" } }
    let out = a.string("out")
    let bar = showProgress ? ProgressBar("finetune \(methodName(settings.options.method)) \(settings.shots)-shot",
                                         total: settings.episodes, unit: "ep") : nil
    let report: FewShotReport
    do {
        report = try SprigPipelines.fewShotEpisodes(blob: bytes, path: path, train: train, test: test, classes: classes,
                                                    settings: settings, keepTunedBlob: out != nil) { done, mean in
            bar?.update(done, status: String(format: "acc %.1f%%", 100 * mean))
        }
    } catch FewShotError.notEnoughImages(let c, let available, let shots) {
        throw CommandError(description: "--shots \(shots): class \(c) has only \(available) training images in data \(source)")
    } catch FewShotError.tooManyShots(let path, let c, let planned, let requested) {
        throw CommandError(description: "\(path): finetune_max_shots: is \(planned), --shots \(requested) asks more for class \(c)")
    } catch let error as FewShotError {
        throw CommandError(description: error.description)
    } catch let error as PipelineError {
        throw CommandError(description: "\(error) (data \(source))")
    }
    if let note = report.planNote, showProgress { printError("sprig finetune: \(note)") }
    if let out, let blob = report.tunedBlob { try writeFileAtomically(blob, to: out) }
    return report
}
