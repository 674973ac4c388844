// `sprig demo`: the whole pipeline in one command.
//
//   1. train     the cnn supernet on the source classes
//   2. prune     DAP to the budget (10% of params), extract, one source epoch
//   3. compile   both nets to int8 blobs with a fine-tuning plan
//   4. adapt     on the device runtime: `head` (and `imprint`) from 5 shots of each new class
//   5. evaluate  source accuracy and batch-1 latency through the runtime, the adapted accuracy
//
// Everything lands in --out-dir (default demo-out): checkpoints, blobs, the search trace, the
// plots, report.html (Report.swift), summary.json (the --json object), and the device files:
// episode 0's shots and the held-out test images of the new classes as IDX, for sprig-edge.

import Foundation
import SprigCompile
import SprigPipelines
import SprigPrune
import SprigRuntime
import SprigTrain

let demoCommand = Command(
    name: "demo",
    summary: "The whole pipeline: train a supernet, DAP-prune it to 10%, compile to int8, adapt on-device from 5 shots, report.",
    usage: "sprig demo [--data builtin|fashion-mnist|digits|DIR] [--budget 10%] [--shots 5] [--episodes 10] [--out-dir demo-out] [--json]",
    positionals: 0...0,
    options: [
        OptionSpec(name: "data", value: "SOURCE", help: "builtin (a committed Fashion-MNIST subset), fashion-mnist (the full set), digits (8×8), a directory of IDX files or an image folder.", defaultValue: "builtin"),
        OptionSpec(name: "source", value: "SPEC", help: "Classes the supernet learns.", defaultValue: "the first half of the classes (0-4 of 10)"),
        OptionSpec(name: "target", value: "SPEC", help: "New classes the device learns from the shots.", defaultValue: "the other classes (5-9 of 10)"),
        OptionSpec(name: "epochs", value: "N", help: "Supernet training epochs.", defaultValue: "5"),
        OptionSpec(name: "budget", value: "B", help: "Pruning budget (any `sprig prune --budget` form).", defaultValue: "10%"),
        OptionSpec(name: "steps", value: "N", help: "DAP search steps.", defaultValue: "\(DAPConfig().steps)"),
        OptionSpec(name: "shots", value: "K", help: "Shots per new class.", defaultValue: "5"),
        OptionSpec(name: "episodes", value: "N", help: "Seeded episodes to average the adapted accuracy over.", defaultValue: "10"),
        OptionSpec(name: "seed", value: "S", help: "Seed of the weights, the search and the episodes.", defaultValue: "1"),
        OptionSpec(name: "threads", value: "N", help: "Threads for GEMM and the layers.", defaultValue: "2"),
        OptionSpec(name: "out-dir", value: "DIR", help: "Where the checkpoints, blobs, plots and report.html go.", defaultValue: "demo-out"),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object with the table's figures and each stage's seconds."),
    ] + imageFolderOptionSpecs,
    details: """
    About 1½ minutes on the built-in data and 3 with --data fashion-mnist on a 2-core machine.
    Open demo-out/report.html for the table and the plots; tools/report-check renders it.
    With N classes (labels 0..N-1, an image folder's classes in sorted folder-name order), the supernet
    learns the first ⌊N/2⌋ and the device the rest, unless --source and --target say otherwise; N must be
    at least 4. The supernet is the cnn preset at the data's own image size (docs/data.md).

    """,
    run: runDemo)

/// The figures of one net in the demo's table.
struct DemoColumn {
    var name: String
    var widths: [Int]
    var params = 0
    var macs = 0
    var blobBytes = 0
    var arenaBytes = 0
    var finetuneArenaBytes = 0
    var latency = 0.0
    var sourceAccuracy = 0.0
    var before = 0.0
    var imprint: FewShotReport?
    var head: FewShotReport?
}

func runDemo(_ a: ParsedArguments) throws {
    let json = a.flag("json")
    GEMM.defaultThreads = try a.int("threads", default: 2, range: 1...64)
    let outDir = a.string("out-dir", default: "demo-out")
    let dataName = a.string("data", default: "builtin")
    let epochs = try a.int("epochs", default: 5, range: 1...1000)
    let budgetText = a.string("budget", default: "10%")
    let budget = try parseBudget(budgetText)
    let shots = try a.int("shots", default: 5, range: 1...1000)
    let episodes = try a.int("episodes", default: 10, range: 1...10_000)
    let seed = try a.int("seed", default: 1, range: 0...Int.max)
    let steps = try a.int("steps", default: DAPConfig().steps, range: 1...10_000_000)
    let commandLine = shellLine(CommandLine.arguments)
    let loadStart = loadAverages()
    try Interrupt.createOutputDirectory(outDir)
    func say(_ s: String) { if !json { printError("sprig demo: " + s) } }
    var stages: [(String, Double)] = []
    func stage<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let start = Date()
        let value = try body()
        stages.append((name, Date().timeIntervalSince(start)))
        say("\(name) took \(duration(stages.last!.1))")
        return value
    }

    let (dataSource, splits, record) = try loadDataSource(a)
    if !json { reportSplit(splits, source: dataSource, command: "demo") }
    let (defaultSource, defaultTarget) = try demoClassSplit(labels: splits.train.labelsPresent, given: (a.string("source"), a.string("target")),
                                                             data: dataName)
    let sourceSpec = a.string("source") ?? defaultSource, targetSpec = a.string("target") ?? defaultTarget
    let sourceClasses = try ClassSelection.parse(sourceSpec, present: splits.train.labelsPresent)
    let targetClasses = try ClassSelection.parse(targetSpec, present: splits.train.labelsPresent)
    guard Set(sourceClasses).isDisjoint(with: targetClasses) else {
        throw UsageError(description: "--source \(sourceClasses) and --target \(targetClasses) overlap; the target classes must be new")
    }
    let targetNames = splits.names(of: targetClasses)
    let source = try splits.train.filtered(classes: sourceClasses)
    let sourceTest = try splits.test.filtered(classes: sourceClasses)
    let targetTest = try splits.test.filtered(classes: targetClasses)
    _ = try EpisodeSampler(dataset: try splits.train.filtered(classes: targetClasses))
        .sample(nWay: targetClasses.count, kShot: shots, query: .perClass(0), seed: 1)  // enough images for the shots?

    // 1. Train.
    let supernetPath = outDir + "/supernet.safetensors"
    var architecture = try Architecture(family: "cnn", classes: sourceClasses.count, sourceClasses: sourceClasses,
                                        input: inputSpec(of: source, source: dataSource))
    if let names = splits.classNames { architecture.classNames = sourceClasses.map { names[$0] } }
    let dataMetadata = [DataRecord.metadataKey: record.json]
    say("1/5 training the cnn supernet (\(architecture.widths.map(String.init).joined(separator: "-"))) on classes \(sourceSpec), \(source.count) images, \(epochs) epochs")
    var training: [(step: Int, loss: Double, accuracy: Double, epoch: Int)] = []
    try stage("train") {
        var options = TrainOptions()
        options.epochs = epochs
        options.augmentShift = 1
        options.normalization = architecture.normalization
        options.seed = UInt64(seed)
        let network = try buildNetwork(architecture, seed: UInt64(seed))
        let bar = json ? nil : ProgressBar("train", total: ((source.count + options.batchSize - 1) / options.batchSize) * epochs, unit: "step")
        _ = try SprigTrain.train(network, on: source, options: options) { p in
            training.append((p.step, Double(p.loss), Double(p.accuracy), p.epoch))
            bar?.update(p.step, status: String(format: "epoch %d/%d loss %.4f acc %.3f %.0f img/s", p.epoch, epochs, p.loss,
                                               p.accuracy, p.imagesPerSecond))
        }
        try saveCheckpoint(network, architecture: architecture, to: supernetPath, metadata: dataMetadata)
    }

    // 2. Prune.
    say("2/5 DAP-pruning to \(budgetText) (\(steps) search steps, then one source epoch)")
    let prunedPath = outDir + "/pruned.safetensors"
    var budgetRamp = 0.0
    let outcome = try stage("prune") { () throws -> PruneOutcome in
        let (network, _) = try loadCheckpoint(path: supernetPath)
        var settings = PruneSettings(budget: budget)
        budgetRamp = settings.dap.budgetRamp
        settings.seed = UInt64(seed)
        settings.dap.steps = steps
        let bars = StageBars()
        let outcome = try pruneNetwork(network, architecture: architecture, source: source, settings: settings, progress: bars.update)
        var pruning = JSONObject()
        pruning.set("method", "dap")
        pruning.set("budget", budgetText)
        pruning.set("supernet", supernetPath)
        try saveCheckpoint(outcome.network, architecture: outcome.architecture, to: prunedPath,
                           metadata: dataMetadata.merging(["pruning": pruning.text]) { $1 })
        if let trace = outcome.trace {
            try writeFileAtomically(Array(traceJSON(trace, groups: outcome.groups).utf8), to: outDir + "/trace.json")
        }
        return outcome
    }
    if !json { print(pruneTable(outcome)) }

    // 3. Compile.
    say("3/5 compiling both nets to int8 (1,000 calibration images)")
    var columns = [DemoColumn(name: "full supernet", widths: architecture.widths),
                   DemoColumn(name: "DAP \(budgetText)", widths: outcome.architecture.widths)]
    let blobs = [outDir + "/full-q8.sprig", outDir + "/pruned-q8.sprig"]
    try stage("compile") {
        for (i, checkpoint) in [supernetPath, prunedPath].enumerated() {
            let (network, architecture) = try loadCheckpoint(path: checkpoint)
            var options = CompileOptions()
            options.calibrationCount = 1000
            options.maxShots = max(shots, options.maxShots)
            let calibration = try splits.train.filtered(classes: architecture.sourceClasses).shuffled(seed: 7)
            try writeFileAtomically(try compileNetwork(network, architecture: architecture, calibration: calibration,
                                                       options: options, source: checkpoint, data: record.json), to: blobs[i])
            let file = try BlobFile(blobs[i])
            let macs = Int(clamping: file.model.work.macs)
            columns[i].params = file.model.parameterCount
            columns[i].macs = macs
            columns[i].blobBytes = file.model.bytes.count
            columns[i].arenaBytes = file.model.arenaBytes
            columns[i].finetuneArenaBytes = file.model.finetuneArenaBytes
        }
    }

    // 4. Adapt on the device runtime.
    say("4/5 adapting on the device runtime: \(targetClasses.count)-way \(shots)-shot, \(episodes) episodes, imprint and head")
    try stage("adapt") {
        let targetTrain = try splits.train.filtered(classes: targetClasses)
        for i in columns.indices {
            for method in [FineTuneMethod.imprint, .head] {
                var settings = FewShotSettings(method: method)
                settings.shots = shots
                settings.episodes = episodes
                settings.seed = UInt64(seed)
                settings.classNames = targetNames
                let keep = i == 1 && method == .head
                let bar = json ? nil : ProgressBar("finetune \(methodName(method)) \(shots)-shot", total: episodes, unit: "ep")
                let report = try fewShotEpisodes(blob: try readFileBytes(atPath: blobs[i]), path: blobs[i], train: targetTrain,
                                                 test: targetTest, classes: targetClasses, settings: settings,
                                                 keepTunedBlob: keep) { done, mean in
                    bar?.update(done, status: String(format: "acc %.1f%%", 100 * mean))
                }
                if keep, let tuned = report.tunedBlob { try writeFileAtomically(tuned, to: outDir + "/tuned-q8.sprig") }
                if method == .head { columns[i].head = report } else { columns[i].imprint = report }
            }
        }
    }

    // 5. Evaluate through the runtime: source accuracy and latency; the target classes before adapting.
    say("5/5 evaluating through the runtime")
    try stage("evaluate") {
        for i in columns.indices {
            let file = try BlobFile(blobs[i])
            let (correct, latencies) = try measureBlob(file, on: sourceTest, progress: json ? nil : ProgressBar("evaluate \(i + 1)/2", total: sourceTest.count, unit: "img"))
            columns[i].sourceAccuracy = Double(correct) / Double(max(sourceTest.count, 1))
            columns[i].latency = latencies.sorted()[latencies.count / 2]
            // Before adapting, the blob's outputs are the source classes: output k read as target class k.
            let (hits, _) = try measureBlob(file, on: targetTest, progress: nil)
            columns[i].before = Double(hits) / Double(max(targetTest.count, 1))
        }
    }
    let total = stages.reduce(0) { $0 + $1.1 }
    let table = demoTable(columns, shots: shots, episodes: episodes, targets: targetClasses.count)

    // What the report adds: fine-tuning curves, the confusion matrix, per-op latency, the arena
    // map; and the device files (not timed as a stage, so that the stage times stay the pipeline's).
    say("report: fine-tuning curves, confusion matrix, per-op latency, arena map, device files")
    let targetTrain = try splits.train.filtered(classes: targetClasses)
    var curves: [[(epochs: Int, accuracies: [Double])]] = []
    for i in columns.indices {
        var curve: [(epochs: Int, accuracies: [Double])] = []
        for e in [1, 3, 10, 30, 100] {
            var settings = FewShotSettings(method: .head)
            settings.shots = shots
            settings.episodes = episodes
            settings.seed = UInt64(seed)
            settings.options.epochs = e
            let r = try fewShotEpisodes(blob: try readFileBytes(atPath: blobs[i]), path: blobs[i], train: targetTrain, test: targetTest,
                                        classes: targetClasses, settings: settings, keepTunedBlob: false) { _, _ in }
            curve.append((e, r.accuracies))
        }
        curves.append(curve)
    }
    let tuned = try BlobFile(outDir + "/tuned-q8.sprig")
    let truth = (0..<targetTest.count).map { Int(targetTest.labels[$0]) }
    let confusion = confusionMatrix(truth: truth, predicted: try predictions(tuned, on: targetTest), classes: targetClasses.count)
    let pruned = try BlobFile(blobs[1])
    let perOp = try perOpLatency(pruned, image: Array(sourceTest.image(0)))
    // The device files: episode 0's shots (labels 0..<n, the order of --target) and the held-out images,
    // written by the function behind `sprig data --device-files`.
    try writeDeviceFiles(train: splits.train, test: splits.test, classes: targetClasses, names: targetNames, shots: shots,
                         seed: UInt64(seed), directory: outDir, fileNames: .demo)
    let fullCost: Double = [.params: Double(outcome.before.params), .macs: Double(outcome.before.macs),
                            .arena: Double(outcome.before.arenaBytes)][budget.kind] ?? 0
    let target = budget.absolute.map { fullCost > 0 ? $0 / fullCost : 0 } ?? budget.fraction
    var data = DemoReportData(columns: columns, stages: stages, outcome: outcome, budgetTarget: target, budgetRamp: budgetRamp,
                              data: dataName, sourceSpec: sourceSpec, targetSpec: targetSpec, targetNames: targetNames,
                              sourceNames: splits.names(of: sourceClasses),
                              budget: budgetText, shots: shots, episodes: episodes, seed: seed, epochs: epochs, outDir: outDir)
    data.training = training
    data.epochCurves = curves
    data.confusion = confusion
    data.perOp = perOp
    data.arena = arenaLifetimes(pruned)
    data.arenaBytes = pruned.model.arenaBytes
    data.opCount = pruned.model.opCount
    data.commandLine = commandLine
    data.loadStart = loadStart
    data.loadEnd = loadAverages()
    data.heldOutCount = targetTest.count
    try writeFileAtomically(Array(demoReport(data).utf8), to: outDir + "/report.html")
    do {
        var o = JSONObject()
        o.set("data", dataName)
        o.set("seconds", total)
        for (name, seconds) in stages { o.set("\(name)_seconds", seconds) }
        for (key, c) in zip(["full", "pruned"], columns) {
            o.set("\(key)_params", c.params)
            o.set("\(key)_macs", c.macs)
            o.set("\(key)_blob_bytes", c.blobBytes)
            o.set("\(key)_arena_bytes", c.arenaBytes)
            o.set("\(key)_finetune_arena_bytes", c.finetuneArenaBytes)
            o.set("\(key)_latency_seconds", c.latency)
            o.set("\(key)_source_accuracy", c.sourceAccuracy)
            o.set("\(key)_accuracy_before", c.before)
            o.set("\(key)_accuracy_imprint", c.imprint?.mean ?? .nan)
            o.set("\(key)_accuracy_head", c.head?.mean ?? .nan)
            o.set("\(key)_accuracy_head_ci95", c.head.map { meanAndCI($0.accuracies).ci } ?? .nan)
            o.set("\(key)_adapt_seconds", c.head?.meanSeconds ?? .nan)
        }
        o.set("report", outDir + "/report.html")
        o.set("held_out_images", targetTest.count)
        o.set("pruned_accuracy_head_episode0", columns[1].head?.accuracies.first ?? .nan)
        o.set("target_classes", raw: "[" + targetNames.map(jsonQuote).joined(separator: ",") + "]")
        o.set("load_average_start", loadStart ?? "unknown")
        o.set("cpu", MachineInfo().cpuModel)
        o.set("commit", BuildStamp.commit)
        try writeFileAtomically(Array((o.text + "\n").utf8), to: outDir + "/summary.json")
        if json { print(o.text) }
    }
    if !json {
        print(table)
        print("stages: " + stages.map { "\($0.0) \(duration($0.1))" }.joined(separator: ", ") + "; total \(duration(total))")
        print("wrote \(outDir)/report.html (open it in a browser), the checkpoints, the blobs and the tuned blob \(outDir)/tuned-q8.sprig")
    }
}

/// The demo's source and target classes when `--source`/`--target` are not given: the first
/// ⌊N/2⌋ labels present and the rest (0-4 and 5-9 for 10 classes). With one of the two
/// given, the other is every remaining label.
///
/// - Throws: `UsageError` when fewer than 4 classes are present and the split is not given.
func demoClassSplit(labels: [Int], given: (source: String?, target: String?), data: String) throws -> (source: String, target: String) {
    func spec(_ c: [Int]) -> String { c.map(String.init).joined(separator: ",") }
    switch given {
    case let (s?, t?): return (s, t)
    case let (s?, nil):
        let taken = Set(try ClassSelection.parse(s, present: labels))
        return (s, spec(labels.filter { !taken.contains($0) }))
    case let (nil, t?):
        let taken = Set(try ClassSelection.parse(t, present: labels))
        return (spec(labels.filter { !taken.contains($0) }), t)
    case (nil, nil):
        guard labels.count >= 4 else {
            throw UsageError(description: "\(data) has \(labels.count) classes; the demo needs at least 4 (2 source, 2 new), "
                + "or give --source and --target")
        }
        let half = labels.count / 2
        let source = Array(labels[..<half]), target = Array(labels[half...])
        func range(_ c: [Int]) -> String { c.last! - c.first! == c.count - 1 ? "\(c.first!)-\(c.last!)" : spec(c) }
        return (range(source), range(target))
    }
}

/// The demo's figures: a row per figure, a value per net.
func demoRows(_ c: [DemoColumn], shots: Int, targets: Int) -> [(String, [String])] {
    func pct(_ v: Double) -> String { String(format: "%.1f%%", v * 100) }
    func withCI(_ r: FewShotReport?) -> String {
        guard let r else { return "–" }
        return String(format: "%.1f%% ± %.1f", r.mean * 100, meanAndCI(r.accuracies).ci * 100)
    }
    let rows: [(String, [String])] = [
        ("widths", c.map { $0.widths.map(String.init).joined(separator: "-") }),
        ("params", c.map { "\($0.params)" }),
        ("MACs", c.map { "\($0.macs)" }),
        ("blob bytes (q8)", c.map { "\($0.blobBytes)" }),
        ("arena bytes, inference", c.map { "\($0.arenaBytes)" }),
        ("arena bytes, fine-tuning", c.map { "\($0.finetuneArenaBytes)" }),
        ("latency, batch 1 (median)", c.map { String(format: "%.1f µs", $0.latency * 1e6) }),
        ("source accuracy (q8)", c.map { pct($0.sourceAccuracy) }),
        ("\(targets)-way \(shots)-shot, before adapting", c.map { pct($0.before) }),
        ("\(targets)-way \(shots)-shot, imprint", c.map { withCI($0.imprint) }),
        ("\(targets)-way \(shots)-shot, head (adapted)", c.map { withCI($0.head) }),
        ("adaptation time (head, mean)", c.map { $0.head.map { String(format: "%.1f ms", $0.meanSeconds * 1e3) } ?? "–" }),
    ]
    return rows
}

/// The demo's closing table as text.
func demoTable(_ c: [DemoColumn], shots: Int, episodes: Int, targets: Int) -> String {
    let rows = demoRows(c, shots: shots, targets: targets)
    let first = max(34, rows.map(\.0.count).max()! + 2)
    var s = left("", first) + c.map { right($0.name, 20) }.joined() + "\n"
    for (name, values) in rows { s += left(name, first) + values.map { right($0, 20) }.joined() + "\n" }
    s += "(accuracy ± 95% CI over \(episodes) seeded episodes, on every test image of the new classes)\n"
    return s
}
