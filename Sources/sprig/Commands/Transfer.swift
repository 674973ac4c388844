// `sprig transfer`: the transfer experiment of docs/method.md.
//
//   1. a supernet trained on the source classes (or --supernet);
//   2. for every budget × method × search seed: prune, extract, one source epoch;
//   3. for every pruned net and the full supernet, on the target classes:
//        inherited  frozen backbone + the device's `head` method, k shots per class
//        reinit     the same architecture re-initialised and trained on the k shots alone
//      over the same seeded episodes for every net (paired), accuracy on all target test images;
//   4. results/transfer.{md,json}, accuracy-against-budget plots per shot count, and the
//      inclusion-probability trajectories of each DAP search.

import Foundation
import SprigPipelines
import SprigPrune
import SprigTrain

let transferCommand = Command(
    name: "transfer",
    summary: "Run the transfer experiment: prune at several budgets with every method, adapt to new classes from a few shots.",
    usage: "sprig transfer [--quick] [--supernet CKPT] [--data SOURCE] [--source 0-4] [--target 5-9] [--budgets 5%,10%,25%,50%] [--methods …] [--shots 1,5,10,20] [--episodes 10] [--seeds 3] [--out-dir transfer-out] [--json]",
    positionals: 0...0,
    options: [
        OptionSpec(name: "quick", value: nil, help: "Budgets 10%,25%, one search seed, re-init arm at 5 shots over 5 episodes, a 3-epoch supernet, 400 search steps."),
        OptionSpec(name: "supernet", value: "CKPT", help: "A trained supernet (else one is trained and saved in the output folder)."),
        OptionSpec(name: "model", value: "NAME", help: "Preset of the supernet to train: " + Architecture.presets.joined(separator: ", ") + ".", defaultValue: "cnn"),
        OptionSpec(name: "model-spec", value: "FILE", help: "Or your own network description (JSON) for the supernet."),
        OptionSpec(name: "width", value: "X", help: "Width multiplier of the preset's default widths.", defaultValue: "1.0"),
        OptionSpec(name: "epochs", value: "N", help: "Epochs of the supernet's training.", defaultValue: "5 (quick: 3)"),
        OptionSpec(name: "data", value: "SOURCE", help: dataSourceHelp, defaultValue: "fashion-mnist"),
        OptionSpec(name: "source", value: "SPEC", help: "Source classes (the supernet's).", defaultValue: "0-4"),
        OptionSpec(name: "target", value: "SPEC", help: "Target classes, learnt from the shots.", defaultValue: "5-9"),
        OptionSpec(name: "budgets", value: "LIST", help: "Budgets (any `sprig prune --budget` form), comma-separated.", defaultValue: "5%,10%,25%,50% (quick: 10%,25%)"),
        OptionSpec(name: "methods", value: "LIST", help: "Pruning methods.", defaultValue: "dap,l1,slim,random,uniform"),
        OptionSpec(name: "shots", value: "LIST", help: "Shots per class.", defaultValue: "1,5,10,20"),
        OptionSpec(name: "episodes", value: "N", help: "Seeded episodes per shot count (the same for every net).", defaultValue: "10"),
        OptionSpec(name: "seeds", value: "N", help: "Search/selection seeds per method and budget.", defaultValue: "3 (quick: 1)"),
        OptionSpec(name: "reinit-shots", value: "LIST", help: "Shot counts of the re-initialised arm.", defaultValue: "the --shots (quick: 5)"),
        OptionSpec(name: "reinit-episodes", value: "N", help: "Episodes of the re-initialised arm.", defaultValue: "the --episodes (quick: 5)"),
        OptionSpec(name: "reinit-steps", value: "N", help: "Full-batch SGD steps when retraining on the shots.", defaultValue: "100"),
        OptionSpec(name: "steps", value: "N", help: "DAP search steps.", defaultValue: "\(DAPConfig().steps) (quick: 400)"),
        OptionSpec(name: "perturb-every", value: "N", help: "DAP: reset the weights to the supernet's plus noise every N steps (0: never).", defaultValue: "0"),
        OptionSpec(name: "budget-ramp", value: "F", help: "DAP: the fraction of the steps over which the budget falls from the full cost to its target (cubic; 0: at once).", defaultValue: "\(DAPConfig().budgetRamp)"),
        OptionSpec(name: "threads", value: "N", help: "Threads for GEMM and the layers; the re-init arm instead runs N trainings at once, one thread each.", defaultValue: "2"),
        OptionSpec(name: "out-dir", value: "DIR", help: "Where transfer.md, transfer.json, the plots and the supernet go (git-ignored by default; --out-dir results refreshes the committed copy).", defaultValue: "transfer-out"),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object (seconds, files, and the headline rows)."),
    ],
    details: """
    Every pruned net gets one epoch on the source classes after extraction. The inherited arm
    freezes it and trains the device's `head` (imprint, then Adam on the cached features, shots
    with their 1-pixel shifts); the reinit arm trains a fresh copy of the same architecture on the
    shots alone. Means carry a 95% CI over episodes × seeds. See docs/method.md.

    Examples:
      sprig transfer --quick
      sprig transfer --supernet supernet.safetensors --budgets 10%,25% --shots 5,20 --seeds 3

    """,
    run: runTransfer)

func listArgument(_ a: ParsedArguments, _ name: String, default value: String) -> [String] {
    a.string(name, default: value).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

func intList(_ a: ParsedArguments, _ name: String, default value: String, range: ClosedRange<Int>) throws -> [Int] {
    let items = listArgument(a, name, default: value)
    let values = items.compactMap { Int($0) }
    guard !items.isEmpty, values.count == items.count, values.allSatisfy(range.contains) else {
        throw UsageError(description: "--\(name) '\(a.string(name, default: value))': expected integers in \(range.lowerBound)...\(range.upperBound), comma-separated")
    }
    return values
}

func runTransfer(_ a: ParsedArguments) throws {
    let started = Date()
    let quick = a.flag("quick")
    let threads = try a.int("threads", default: 2, range: 1...64)
    GEMM.defaultThreads = threads
    let budgetTexts = listArgument(a, "budgets", default: quick ? "10%,25%" : "5%,10%,25%,50%")
    let budgets = try budgetTexts.map(parseBudget)
    let methodNames = listArgument(a, "methods", default: "dap,l1,slim,random,uniform")
    let methods = try methodNames.map { name -> PruneMethod in
        guard let m = PruneMethod(rawValue: name) else {
            throw UsageError(description: "--methods: unknown method '\(name)'; known: \(PruneMethod.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return m
    }
    let shots = try intList(a, "shots", default: "1,5,10,20", range: 1...1000)
    let episodes = try a.int("episodes", default: 10, range: 1...10_000)
    let seeds = try a.int("seeds", default: quick ? 1 : 3, range: 1...100)
    let reinitShots = try intList(a, "reinit-shots", default: quick ? "5" : shots.map(String.init).joined(separator: ","), range: 1...1000)
    let reinitEpisodes = try a.int("reinit-episodes", default: quick ? 5 : episodes, range: 0...10_000)
    let reinitSteps = try a.int("reinit-steps", default: 100, range: 1...100_000)
    let steps = try a.int("steps", default: quick ? 400 : DAPConfig().steps, range: 1...10_000_000)
    let perturbEvery = try a.int("perturb-every", default: 0, range: 0...Int.max)
    let budgetRamp = try a.double("budget-ramp", default: DAPConfig().budgetRamp, range: 0...1)
    let outDir = a.string("out-dir", default: "transfer-out")

    // Data.
    let dataName = a.string("data", default: "fashion-mnist")
    let splits = try DataSource(argument: dataName).load()
    let sourceClasses = try ClassSelection.parse(a.string("source", default: "0-4"), present: splits.train.labelsPresent)
    let targetClasses = try ClassSelection.parse(a.string("target", default: "5-9"), present: splits.train.labelsPresent)
    guard Set(sourceClasses).isDisjoint(with: targetClasses) else {
        throw UsageError(description: "--source \(sourceClasses) and --target \(targetClasses) overlap; the target classes must be new")
    }
    let source = try splits.train.filtered(classes: sourceClasses), sourceTest = try splits.test.filtered(classes: sourceClasses)
    let targetTrain = try splits.train.filtered(classes: targetClasses), targetTest = try splits.test.filtered(classes: targetClasses)
    if let most = (shots + reinitShots).max() {  // enough shots per class?
        _ = try EpisodeSampler(dataset: targetTrain).sample(nWay: targetClasses.count, kShot: most, query: .perClass(0), seed: 1)
    }
    try Interrupt.createOutputDirectory(outDir)

    // The supernet.
    let supernetPath: String
    if let given = a.string("supernet") {
        supernetPath = given
    } else {
        supernetPath = outDir + "/supernet.safetensors"
        let architecture = try modelArchitecture(a, input: inputSpec(of: source, source: DataSource(argument: dataName)),
                                                 classes: sourceClasses)
        var options = TrainOptions()
        options.epochs = try a.int("epochs", default: quick ? 3 : 5, range: 1...1000)
        options.augmentShift = architecture.isConvolutional ? 1 : 0
        options.normalization = architecture.normalization
        let network = try buildNetwork(architecture, seed: 1)
        _ = try trainWithProgress(network, on: source, options: options, title: "supernet")
        try saveCheckpoint(network, architecture: architecture, to: supernetPath)
    }
    let supernetArchitecture = try loadCheckpoint(path: supernetPath).architecture
    guard supernetArchitecture.classes == sourceClasses.count else {
        throw UsageError(description: "--source has \(sourceClasses.count) classes but \(supernetPath) has \(supernetArchitecture.classes) outputs")
    }
    try requireShape(source, of: supernetArchitecture, model: supernetPath, data: dataName)

    var settings = TransferSettings()
    settings.budgets = Array(zip(budgetTexts, budgets)).map { (text: $0.0, budget: $0.1) }
    settings.methods = methods
    settings.shots = shots
    settings.episodes = episodes
    settings.seeds = seeds
    settings.reinitShots = reinitShots
    settings.reinitEpisodes = reinitEpisodes
    settings.reinitSteps = reinitSteps
    settings.dap.steps = steps
    settings.dap.perturbEvery = perturbEvery
    settings.dap.budgetRamp = budgetRamp
    settings.threads = threads
    let runsPerNet = shots.count * episodes + reinitShots.count * reinitEpisodes
    let bar = ProgressBar("transfer", total: (1 + budgets.count * methods.count * seeds) * runsPerNet, unit: "episode")
    let bars = StageBars()
    let result: TransferResult
    do {
        result = try runTransferExperiment(
            supernetPath: supernetPath,
            data: TransferData(source: source, sourceTest: sourceTest, targetTrain: targetTrain, targetTest: targetTest,
                               targetClasses: targetClasses),
            settings: settings, pruneProgress: bars.update) { done, _, status in
            bar.update(done, status: status)
        }
    } catch let error as PipelineError {
        throw CommandError(description: error.description)
    }
    let (ordered, nets) = (result.rows, result.nets)
    let traces = result.searches.map { (budget: $0.budget, seed: $0.seed, trace: $0.trace, groups: $0.groups) }
    let seconds = Date().timeIntervalSince(started)

    // Outputs.
    let context = TransferContext(data: dataName, source: sourceClasses, target: targetClasses, supernet: supernetPath,
                                  architecture: supernetArchitecture, budgets: budgetTexts, methods: ["full"] + methods.map(\.rawValue),
                                  shots: shots, reinitShots: reinitShots, episodes: episodes, reinitEpisodes: reinitEpisodes,
                                  seeds: seeds, steps: steps, quick: quick, seconds: seconds)
    var files: [String] = []
    func write(_ name: String, _ text: String) throws {
        let path = outDir + "/" + name
        try writeFileAtomically(Array(text.utf8), to: path)
        files.append(path)
    }
    try write("transfer.json", transferJSON(context, rows: ordered, nets: nets))
    var plots: [String] = []
    for k in shots {
        let name = "transfer-accuracy-\(k)shot.svg"
        try write(name, accuracyPlot(context, rows: ordered, shots: k, arm: "inherited"))
        plots.append(name)
    }
    if reinitEpisodes > 0 {
        for k in reinitShots {
            let name = "transfer-accuracy-reinit-\(k)shot.svg"
            try write(name, accuracyPlot(context, rows: ordered, shots: k, arm: "reinit"))
            plots.append(name)
        }
    }
    for t in traces {
        let name = "transfer-gates-dap-\(t.budget.replacingOccurrences(of: "%", with: "pct").replacingOccurrences(of: ":", with: "-"))-seed\(t.seed).svg"
        try write(name, gateTrajectoryChart(title: "DAP search at \(t.budget) (seed \(t.seed)): inclusion probabilities",
                                            steps: t.trace.steps, probabilities: t.trace.probabilities,
                                            groups: t.groups.map { ($0.name, $0.total, $0.kept) }, costs: t.trace.costs,
                                            target: (try? Budget(parsing: t.budget)).flatMap { $0.absolute == nil ? $0.fraction : nil }))
        plots.append(name)
    }
    try write("transfer.md", transferMarkdown(context, rows: ordered, nets: nets, plots: plots))
    if a.flag("json") {
        var o = JSONObject()
        o.set("seconds", seconds)
        o.set("quick", quick)
        o.set("files", raw: "[" + files.map(jsonQuote).joined(separator: ",") + "]")
        for r in ordered where r.arm == "inherited" && (r.shots == 5 || r.shots == 20) {
            o.set("\(r.method)_\(r.budget.replacingOccurrences(of: "%", with: "pct").replacingOccurrences(of: ":", with: "_"))_\(r.shots)shot", meanAndCI(r.accuracies).mean)
        }
        print(o.text)
    } else {
        print(transferTable(context, rows: ordered, arm: "inherited"))
        print("wrote \(files.joined(separator: ", ")) in \(duration(seconds))")
    }
}

struct TransferContext {
    var data: String
    var source: [Int]
    var target: [Int]
    var supernet: String
    var architecture: Architecture
    var budgets: [String]
    var methods: [String]
    var shots: [Int]
    var reinitShots: [Int]
    var episodes: Int
    var reinitEpisodes: Int
    var seeds: Int
    var steps: Int
    var quick: Bool
    var seconds: Double
}

func percentText(_ values: [Double]) -> String {
    let (m, ci) = meanAndCI(values)
    return String(format: "%.1f ± %.1f", m * 100, ci * 100)
}

/// Budget as a number for plots: "10%" → 0.10; other forms → their position.
func budgetFraction(_ text: String, index: Int) -> Double {
    if text.hasSuffix("%"), let v = Double(text.dropLast()) { return v / 100 }
    if let colon = text.firstIndex(of: ":"), text.hasSuffix("%"), let v = Double(text[text.index(after: colon)...].dropLast()) { return v / 100 }
    return Double(index + 1)
}

/// Markdown table for one arm: a row per method, a column per budget, per shot count.
func transferTable(_ c: TransferContext, rows: [TransferRow], arm: String) -> String {
    var s = ""
    let shotList = arm == "inherited" ? c.shots : c.reinitShots
    for k in shotList {
        s += "\n**\(arm == "inherited" ? "Inherited weights + head" : "Re-initialised, trained on the shots"), \(c.target.count)-way \(k)-shot** (accuracy %, mean ± 95% CI)\n\n"
        s += "| method | " + c.budgets.joined(separator: " | ") + " | full supernet |\n"
        s += "|---|" + String(repeating: "---:|", count: c.budgets.count + 1) + "\n"
        let full = rows.first { $0.method == "full" && $0.arm == arm && $0.shots == k }
        for m in c.methods where m != "full" {
            var line = "| \(m) |"
            for b in c.budgets {
                let r = rows.first { $0.method == m && $0.budget == b && $0.arm == arm && $0.shots == k }
                line += " " + (r.map { percentText($0.accuracies) } ?? "–") + " |"
            }
            s += line + " " + (full.map { percentText($0.accuracies) } ?? "–") + " |\n"
        }
    }
    return s
}

func transferMarkdown(_ c: TransferContext, rows: [TransferRow], nets: [TransferNet], plots: [String]) -> String {
    let date = ISO8601DateFormatter().string(from: Date())
    var s = "# Transfer experiment\n\n"
    s += "Written by `sprig transfer\(c.quick ? " --quick" : "")` on \(date), in \(duration(c.seconds)) on this machine.\n\n"
    s += "- Data: \(c.data); source classes \(c.source), target classes \(c.target).\n"
    s += "- Supernet: `\(c.supernet)` (\(c.architecture.family), widths \(c.architecture.widths)).\n"
    s += "- Budgets: \(c.budgets.joined(separator: ", ")) (of the supernet's params unless stated); DAP \(c.steps) search steps; "
        + "\(c.seeds) search/selection seed\(c.seeds == 1 ? "" : "s") per method and budget; every pruned net gets one source epoch.\n"
    s += "- Inherited arm: \(c.shots.map(String.init).joined(separator: ", ")) shots, \(c.episodes) episodes each; the device's `head` method on the frozen net.\n"
    s += "- Re-initialised arm: \(c.reinitShots.map(String.init).joined(separator: ", ")) shots, \(c.reinitEpisodes) episodes; the architecture trained from scratch on the shots.\n"
    s += "- Accuracy over all \(c.target.count)-way target test images; mean ± 95% CI (Student t) over episodes × seeds. The same episodes for every net.\n"
    s += transferTable(c, rows: rows, arm: "inherited")
    if c.reinitEpisodes > 0 { s += transferTable(c, rows: rows, arm: "reinit") }
    s += "\n**The nets** (costs by the cost model: params and MACs with BatchNorm folded; arena = int8 weights + peak activations)\n\n"
    s += "| method | budget | seed | widths | params | MACs | arena bytes | source accuracy | search s |\n|---|---|---:|---|---:|---:|---:|---:|---:|\n"
    for n in nets {
        s += "| \(n.method) | \(n.budget) | \(n.seed) | \(n.widths.map(String.init).joined(separator: "-")) | \(n.costs.params) | \(n.costs.macs) | \(n.costs.arenaBytes) | "
            + String(format: "%.2f%%", n.sourceAccuracy * 100) + String(format: " | %.1f |\n", n.searchSeconds)
    }
    s += "\n## Plots\n\n" + plots.map { "![\($0)](\($0))\n" }.joined(separator: "\n")
    return s
}

func transferJSON(_ c: TransferContext, rows: [TransferRow], nets: [TransferNet]) -> String {
    var o = JSONObject()
    o.set("data", c.data)
    o.set("source_classes", raw: "[" + c.source.map(String.init).joined(separator: ",") + "]")
    o.set("target_classes", raw: "[" + c.target.map(String.init).joined(separator: ",") + "]")
    o.set("supernet", c.supernet)
    o.set("quick", c.quick)
    o.set("seconds", c.seconds)
    o.set("episodes", c.episodes)
    o.set("seeds", c.seeds)
    o.set("search_steps", c.steps)
    o.set("rows", raw: "[" + rows.map { r -> String in
        let (m, ci) = meanAndCI(r.accuracies)
        var j = JSONObject()
        j.set("method", r.method)
        j.set("budget", r.budget)
        j.set("arm", r.arm)
        j.set("shots", r.shots)
        j.set("accuracy_mean", m)
        j.set("accuracy_ci95", ci)
        j.set("n", r.accuracies.count)
        // Per seed, then per episode; every net sees the same episodes, so these pair up across
        // methods and budgets.
        j.set("accuracies", raw: "[" + r.accuracies.map { jsonNumber($0) }.joined(separator: ",") + "]")
        return j.text
    }.joined(separator: ",") + "]")
    o.set("nets", raw: "[" + nets.map { n -> String in
        var j = JSONObject()
        j.set("method", n.method)
        j.set("budget", n.budget)
        j.set("seed", n.seed)
        j.set("widths", raw: "[" + n.widths.map(String.init).joined(separator: ",") + "]")
        j.set("params", n.costs.params)
        j.set("macs", n.costs.macs)
        j.set("arena_bytes", n.costs.arenaBytes)
        j.set("source_accuracy", n.sourceAccuracy)
        j.set("search_seconds", n.searchSeconds)
        return j.text
    }.joined(separator: ",") + "]")
    return o.text + "\n"
}

/// Accuracy against budget, one line per method, the full supernet as a dashed level.
func accuracyPlot(_ c: TransferContext, rows: [TransferRow], shots k: Int, arm: String) -> String {
    var series: [ChartSeries] = []
    let xs = c.budgets.enumerated().map { budgetFraction($0.element, index: $0.offset) }
    for (i, m) in c.methods.enumerated() where m != "full" {
        let points = c.budgets.enumerated().compactMap { (j, b) -> (x: Double, y: Double, error: Double?)? in
            guard let r = rows.first(where: { $0.method == m && $0.budget == b && $0.arm == arm && $0.shots == k }) else { return nil }
            let (mean, ci) = meanAndCI(r.accuracies)
            return (xs[j], mean, ci)
        }
        series.append(ChartSeries(name: m, points: points, color: chartPalette[i % chartPalette.count]))
    }
    if let full = rows.first(where: { $0.method == "full" && $0.arm == arm && $0.shots == k }), let lo = xs.min(), let hi = xs.max() {
        let mean = meanAndCI(full.accuracies).mean
        series.append(ChartSeries(name: "full supernet", points: [(lo, mean, nil), (hi, mean, nil)], color: "#000000", dashed: true, markers: false))
    }
    return lineChart(title: "\(c.target.count)-way \(k)-shot accuracy against budget (\(arm))", xLabel: "budget (share of supernet params)",
                     yLabel: "test accuracy", series: series, logX: xs.allSatisfy { $0 > 0 && $0 <= 1 } && xs.count > 1,
                     xPercent: true, yPercent: true)
}
