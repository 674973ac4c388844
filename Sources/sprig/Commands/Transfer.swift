// `sprig transfer`: the transfer experiment of docs/method.md.
//
//   1. a supernet trained on the source classes (or --supernet);
//   2. for every budget × method × search seed: prune, extract, one source epoch;
//   3. for every pruned net and the full supernet, on the target classes:
//        inherited  frozen backbone + the device's `head` method, k shots per class
//        reinit     the same architecture re-initialised and trained on the k shots alone
//      over the same seeded episodes for every net (paired), accuracy on all target test images;
//   4. per budget × arm × shots, DAP minus the best baseline and DAP minus slimming, paired
//      episode by episode, with a 95% CI;
//   5. results/transfer.{md,json}, accuracy-against-budget plots per shot count, and the
//      inclusion-probability trajectories of each DAP search.
//
// With --splits, steps 1–4 run once per class split (the semantic one, random re-partitions of
// the same classes drawn from --split-seed), each with its own supernet.

import Foundation
import SprigPipelines
import SprigPrune
import SprigTrain

let transferCommand = Command(
    name: "transfer",
    summary: "Run the transfer experiment: prune at several budgets with every method, adapt to new classes from a few shots.",
    usage: "sprig transfer [--quick] [--supernet CKPT] [--data SOURCE] [--source 0-4] [--target 5-9] [--splits semantic,random:2] [--split-seed 19] [--budgets 5%,10%,25%,50%] [--methods …] [--pseudo-target N] [--feature-floor F] [--scale-prior S] [--shots 1,5,10,20] [--episodes 10] [--seeds 3] [--first-seed 1] [--out-dir transfer-out] [--json]",
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
        OptionSpec(name: "splits", value: "LIST", help: "Class splits, each with its own supernet: semantic (--source → --target) and/or random:N (N random re-partitions of the same classes, as many source as target classes as there), comma-separated.", defaultValue: "semantic"),
        OptionSpec(name: "split-seed", value: "N", help: "Seed of the random splits.", defaultValue: "\(defaultSplitSeed)"),
        OptionSpec(name: "budgets", value: "LIST", help: "Budgets (any `sprig prune --budget` form), comma-separated.", defaultValue: "5%,10%,25%,50% (quick: 10%,25%)"),
        OptionSpec(name: "methods", value: "LIST", help: "Pruning methods.", defaultValue: "dap,l1,slim,random,uniform"),
        OptionSpec(name: "shots", value: "LIST", help: "Shots per class.", defaultValue: "1,5,10,20"),
        OptionSpec(name: "episodes", value: "N", help: "Seeded episodes per shot count (the same for every net).", defaultValue: "10"),
        OptionSpec(name: "seeds", value: "N", help: "Search/selection seeds per method and budget.", defaultValue: "3 (quick: 1)"),
        OptionSpec(name: "first-seed", value: "S", help: "The first search/selection seed (the seeds are S … S + seeds − 1), to add seeds to an earlier run's without repeating it.", defaultValue: "1"),
        OptionSpec(name: "reinit-shots", value: "LIST", help: "Shot counts of the re-initialised arm.", defaultValue: "the --shots (quick: 5)"),
        OptionSpec(name: "reinit-episodes", value: "N", help: "Episodes of the re-initialised arm.", defaultValue: "the --episodes (quick: 5)"),
        OptionSpec(name: "reinit-steps", value: "N", help: "Full-batch SGD steps when retraining on the shots.", defaultValue: "100"),
        OptionSpec(name: "steps", value: "N", help: "DAP search steps.", defaultValue: "\(DAPConfig().steps) (quick: 400)"),
        OptionSpec(name: "perturb-every", value: "N", help: "DAP: reset the weights to the supernet's plus noise every N steps (0: never).", defaultValue: "0"),
        OptionSpec(name: "budget-ramp", value: "F", help: "DAP: the fraction of the steps over which the budget falls from the full cost to its target (cubic; 0: at once).", defaultValue: "\(DAPConfig().budgetRamp)"),
        OptionSpec(name: "perturb-scale", value: "X", help: "DAP: the perturbation's noise, as a fraction of each tensor's RMS.", defaultValue: "\(DAPConfig().perturbScale)"),
        OptionSpec(name: "pseudo-target", value: "N", help: pseudoTargetHelp, defaultValue: "0"),
        OptionSpec(name: "pseudo-target-weight", value: "X", help: "DAP: weight of the pseudo-target's loss beside the source loss in the θ step.", defaultValue: "\(DAPConfig().pseudoTargetWeight)"),
        OptionSpec(name: "feature-floor", value: "F", help: featureFloorHelp, defaultValue: "\(DAPConfig().featureFloor)"),
        OptionSpec(name: "scale-prior", value: "S", help: scalePriorHelp, defaultValue: "\(DAPConfig().scalePrior)"),
        OptionSpec(name: "threads", value: "N", help: "Threads for GEMM and the layers; the re-init arm instead runs N trainings at once, one thread each.", defaultValue: "2"),
        OptionSpec(name: "out-dir", value: "DIR", help: "Where transfer.md, transfer.json, the plots and the supernet go (git-ignored by default; --out-dir results refreshes the committed copy).", defaultValue: "transfer-out"),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object (seconds, files, and the headline rows)."),
    ],
    details: """
    Every pruned net gets one epoch on the source classes after extraction. The inherited arm
    freezes it and trains the device's `head` (imprint, then Adam on the cached features, shots
    with their 1-pixel shifts); the reinit arm trains a fresh copy of the same architecture on the
    shots alone. Means carry a 95% CI over episodes × seeds. Every net sees the same episodes, so
    DAP is compared with the best baseline and with slimming episode by episode (paired
    differences, 95% CI). --splits semantic,random:2 repeats everything on two random partitions
    of the classes (reported with their classes), a supernet trained for each. See docs/method.md.

    Examples:
      sprig transfer --quick
      sprig transfer --quick --splits semantic,random:2
      sprig transfer --supernet supernet.safetensors --budgets 10%,25% --shots 5,20 --seeds 3

    """,
    run: runTransfer)

/// `--split-seed`'s default.
let defaultSplitSeed = 19

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
    let firstSeed = try a.int("first-seed", default: 1, range: 1...1_000_000)
    let reinitShots = try intList(a, "reinit-shots", default: quick ? "5" : shots.map(String.init).joined(separator: ","), range: 1...1000)
    let reinitEpisodes = try a.int("reinit-episodes", default: quick ? 5 : episodes, range: 0...10_000)
    let reinitSteps = try a.int("reinit-steps", default: 100, range: 1...100_000)
    let steps = try a.int("steps", default: quick ? 400 : DAPConfig().steps, range: 1...10_000_000)
    let perturbEvery = try a.int("perturb-every", default: 0, range: 0...Int.max)
    let budgetRamp = try a.double("budget-ramp", default: DAPConfig().budgetRamp, range: 0...1)
    var searchConfig = DAPConfig()
    searchConfig.perturbScale = Float(try a.double("perturb-scale", default: Double(searchConfig.perturbScale), range: 0...100))
    try parseTransferSearchOptions(a, into: &searchConfig)
    let outDir = a.string("out-dir", default: "transfer-out")
    let splitText = a.string("splits")
    let request: TransferSplitRequest
    do {
        request = try splitText.map { try TransferSplitRequest(parsing: $0) } ?? TransferSplitRequest()
    } catch {
        throw UsageError(description: "--splits '\(splitText ?? "")': \(error)")
    }
    let splitSeed = try a.int("split-seed", default: defaultSplitSeed, range: 0...Int.max)
    if a.string("supernet") != nil && request.random > 0 {
        throw UsageError(description: "--supernet is trained on one split's source classes; --splits '\(splitText ?? "")' trains a supernet per split, so leave --supernet out")
    }

    // Data and the splits.
    let dataName = a.string("data", default: "fashion-mnist")
    let data = try DataSource(argument: dataName).load()
    let sourceClasses = try ClassSelection.parse(a.string("source", default: "0-4"), present: data.train.labelsPresent)
    let targetClasses = try ClassSelection.parse(a.string("target", default: "5-9"), present: data.train.labelsPresent)
    guard Set(sourceClasses).isDisjoint(with: targetClasses) else {
        throw UsageError(description: "--source \(sourceClasses) and --target \(targetClasses) overlap; the target classes must be new")
    }
    let splits: [TransferSplit]
    do {
        splits = try drawTransferSplits(semantic: TransferSplit(name: "semantic", source: sourceClasses, target: targetClasses),
                                        request: request, seed: UInt64(splitSeed))
    } catch {
        throw UsageError(description: "--splits '\(splitText ?? "")': \(error)")
    }
    let parts = try splits.map { split in
        let p = (source: try data.train.filtered(classes: split.source), sourceTest: try data.test.filtered(classes: split.source),
                 targetTrain: try data.train.filtered(classes: split.target), targetTest: try data.test.filtered(classes: split.target))
        if let most = (shots + reinitShots).max() {  // enough shots per class?
            _ = try EpisodeSampler(dataset: p.targetTrain).sample(nWay: split.target.count, kShot: most, query: .perClass(0), seed: 1)
        }
        return p
    }
    try Interrupt.createOutputDirectory(outDir)

    var settings = TransferSettings()
    settings.budgets = Array(zip(budgetTexts, budgets)).map { (text: $0.0, budget: $0.1) }
    settings.methods = methods
    settings.shots = shots
    settings.episodes = episodes
    settings.seeds = seeds
    settings.firstSeed = firstSeed
    settings.reinitShots = reinitShots
    settings.reinitEpisodes = reinitEpisodes
    settings.reinitSteps = reinitSteps
    settings.dap = searchConfig
    settings.dap.steps = steps
    settings.dap.perturbEvery = perturbEvery
    settings.dap.budgetRamp = budgetRamp
    settings.threads = threads
    let runsPerNet = shots.count * episodes + reinitShots.count * reinitEpisodes

    var runs: [TransferSplitRun] = []
    for (split, part) in zip(splits, parts) {
        let label = splits.count == 1 ? "" : " \(split.name)"
        // The split's supernet (the semantic split's keeps its old file name).
        let supernetPath: String
        if let given = a.string("supernet") {
            supernetPath = given
        } else {
            supernetPath = outDir + (split.name == "semantic" ? "/supernet.safetensors" : "/supernet-\(split.name).safetensors")
            let architecture = try modelArchitecture(a, input: inputSpec(of: part.source, source: DataSource(argument: dataName)),
                                                     classes: split.source)
            var options = TrainOptions()
            options.epochs = try a.int("epochs", default: quick ? 3 : 5, range: 1...1000)
            options.augmentShift = architecture.isConvolutional ? 1 : 0
            options.normalization = architecture.normalization
            let network = try buildNetwork(architecture, seed: 1)
            _ = try trainWithProgress(network, on: part.source, options: options, title: "supernet" + label)
            try saveCheckpoint(network, architecture: architecture, to: supernetPath)
        }
        let supernetArchitecture = try loadCheckpoint(path: supernetPath).architecture
        guard supernetArchitecture.classes == split.source.count else {
            throw UsageError(description: "--source has \(split.source.count) classes but \(supernetPath) has \(supernetArchitecture.classes) outputs")
        }
        try requireShape(part.source, of: supernetArchitecture, model: supernetPath, data: dataName)

        let bar = ProgressBar("transfer" + label, total: (1 + budgets.count * methods.count * seeds) * runsPerNet, unit: "episode")
        let bars = StageBars()
        do {
            let result = try runTransferExperiment(
                supernetPath: supernetPath,
                data: TransferData(source: part.source, sourceTest: part.sourceTest, targetTrain: part.targetTrain,
                                   targetTest: part.targetTest, targetClasses: split.target),
                settings: settings, pruneProgress: bars.update) { done, _, status in
                bar.update(done, status: status)
            }
            runs.append(TransferSplitRun(split: split, supernet: supernetPath, architecture: supernetArchitecture, result: result))
        } catch let error as PipelineError {
            throw CommandError(description: (splits.count == 1 ? "" : "split \(split.name): ") + error.description)
        }
        // A long run keeps its finished splits: the report is rewritten after each one.
        if runs.count < splits.count { _ = try writeReport(runs) }
    }
    let (seconds, files) = try writeReport(runs)
    if a.flag("json") {
        var o = JSONObject()
        o.set("seconds", seconds)
        o.set("quick", quick)
        o.set("files", raw: "[" + files.map(jsonQuote).joined(separator: ",") + "]")
        o.set("splits", raw: "[" + runs.map { splitJSON($0.split) }.joined(separator: ",") + "]")
        for run in runs {
            let prefix = run.split.name == "semantic" ? "" : run.split.name + "_"
            for r in run.result.rows where r.arm == "inherited" && (r.shots == 5 || r.shots == 20) {
                o.set(prefix + "\(r.method)_\(keyText(r.budget))_\(r.shots)shot", meanAndCI(r.accuracies).mean)
            }
            for c in run.result.comparisons where c.arm == "inherited" && (c.shots == 5 || c.shots == 20) {
                o.set(prefix + "dap_minus_\(c.against == "slim" ? "slim" : "best")_\(keyText(c.budget))_\(c.shots)shot", c.difference)
            }
        }
        print(o.text)
    } else {
        for run in runs {
            if runs.count > 1 { print("\nsplit \(run.split.name): source \(run.split.source), target \(run.split.target)") }
            print(transferTable(context(runs, seconds: seconds), run, arm: "inherited"))
            print(pairedTable(run))
        }
        print("wrote \(files.joined(separator: ", ")) in \(duration(seconds))")
    }

    func context(_ runs: [TransferSplitRun], seconds: Double) -> TransferContext {
        TransferContext(data: dataName, splitsText: splitText, splitSeed: splitText == nil ? nil : splitSeed, runs: runs,
                        plannedSplits: splits.count, budgets: budgetTexts, methods: ["full"] + methods.map(\.rawValue),
                        shots: shots, reinitShots: reinitShots, episodes: episodes, reinitEpisodes: reinitEpisodes,
                        seeds: seeds, steps: steps, dap: settings.dap, quick: quick, seconds: seconds)
    }

    /// transfer.{md,json} and the plots of the finished splits; (seconds so far, files written).
    func writeReport(_ runs: [TransferSplitRun]) throws -> (Double, [String]) {
        let seconds = Date().timeIntervalSince(started)
        let context = context(runs, seconds: seconds)
        var files: [String] = []
        func write(_ name: String, _ text: String) throws {
            let path = outDir + "/" + name
            try writeFileAtomically(Array(text.utf8), to: path)
            files.append(path)
        }
        try write("transfer.json", transferJSON(context))
        var plots: [String] = []
        for run in runs {
            // File names: the semantic split's as before, the others' with their name.
            let prefix = run.split.name == "semantic" ? "transfer-" : "transfer-\(run.split.name)-"
            let title = runs.count == 1 ? "" : " (\(run.split.name) split)"
            for k in shots {
                let name = prefix + "accuracy-\(k)shot.svg"
                try write(name, accuracyPlot(context, run, shots: k, arm: "inherited"))
                plots.append(name)
            }
            if reinitEpisodes > 0 {
                for k in reinitShots {
                    let name = prefix + "accuracy-reinit-\(k)shot.svg"
                    try write(name, accuracyPlot(context, run, shots: k, arm: "reinit"))
                    plots.append(name)
                }
            }
            for t in run.result.searches {
                let name = prefix + "gates-dap-\(t.budget.replacingOccurrences(of: "%", with: "pct").replacingOccurrences(of: ":", with: "-"))-seed\(t.seed).svg"
                try write(name, gateTrajectoryChart(title: "DAP search at \(t.budget) (seed \(t.seed))\(title): inclusion probabilities",
                                                    steps: t.trace.steps, probabilities: t.trace.probabilities,
                                                    groups: t.groups.map { ($0.name, $0.total, $0.kept) }, costs: t.trace.costs,
                                                    target: (try? Budget(parsing: t.budget)).flatMap { $0.absolute == nil ? $0.fraction : nil }))
                plots.append(name)
            }
        }
        try write("transfer.md", transferMarkdown(context, plots: plots))
        return (seconds, files)
    }
}

/// "10%" → "10pct", "macs:25%" → "macs_25pct": a budget as part of a JSON key.
func keyText(_ budget: String) -> String {
    budget.replacingOccurrences(of: "%", with: "pct").replacingOccurrences(of: ":", with: "_")
}

/// One split's experiment: its classes, its supernet and what was measured.
struct TransferSplitRun {
    var split: TransferSplit
    var supernet: String
    var architecture: Architecture
    var result: TransferResult
}

struct TransferContext {
    var data: String
    /// Nil when --splits was not given (the semantic split alone).
    var splitsText: String?
    var splitSeed: Int?
    var runs: [TransferSplitRun]
    /// Splits asked for; more than `runs.count` while the run goes on.
    var plannedSplits: Int
    var budgets: [String]
    var methods: [String]
    var shots: [Int]
    var reinitShots: [Int]
    var episodes: Int
    var reinitEpisodes: Int
    var seeds: Int
    var steps: Int
    /// DAP's settings (the report names its transfer options, `dapOptionsText`).
    var dap: DAPConfig
    var quick: Bool
    var seconds: Double
}

/// The transfer options of a DAP search that are on, for the report: "feature floor 0.75,
/// perturbation every 100 steps (scale 0.1)", or "no transfer options".
func dapOptionsText(_ d: DAPConfig) -> String {
    var parts: [String] = []
    if d.featureFloor > 0 { parts.append("feature floor \(d.featureFloor)") }
    if d.perturbEvery > 0 { parts.append("perturbation every \(d.perturbEvery) steps (scale \(d.perturbScale))") }
    if d.scalePrior > 0 { parts.append("scale prior \(d.scalePrior)") }
    if d.pseudoTargetClasses > 0 {
        parts.append("pseudo-target of \(d.pseudoTargetClasses) classes (weight \(d.pseudoTargetWeight))")
    }
    return parts.isEmpty ? "no transfer options" : parts.joined(separator: ", ")
}

func percentText(_ values: [Double]) -> String {
    let (m, ci) = meanAndCI(values)
    return String(format: "%.1f ± %.1f", m * 100, ci * 100)
}

func splitJSON(_ s: TransferSplit) -> String {
    var j = JSONObject()
    j.set("name", s.name)
    j.set("source_classes", raw: "[" + s.source.map(String.init).joined(separator: ",") + "]")
    j.set("target_classes", raw: "[" + s.target.map(String.init).joined(separator: ",") + "]")
    return j.text
}

/// Budget as a number for plots: "10%" → 0.10; other forms → their position.
func budgetFraction(_ text: String, index: Int) -> Double {
    if text.hasSuffix("%"), let v = Double(text.dropLast()) { return v / 100 }
    if let colon = text.firstIndex(of: ":"), text.hasSuffix("%"), let v = Double(text[text.index(after: colon)...].dropLast()) { return v / 100 }
    return Double(index + 1)
}

/// Markdown table for one arm: a row per method, a column per budget, per shot count.
func transferTable(_ c: TransferContext, _ run: TransferSplitRun, arm: String) -> String {
    var s = ""
    let rows = run.result.rows
    let shotList = arm == "inherited" ? c.shots : c.reinitShots
    for k in shotList {
        s += "\n**\(arm == "inherited" ? "Inherited weights + head" : "Re-initialised, trained on the shots"), \(run.split.target.count)-way \(k)-shot** (accuracy %, mean ± 95% CI)\n\n"
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

/// Per budget, every method's costs beside its accuracy in both arms (costs averaged over the
/// search seeds), the full supernet first.
func budgetTable(_ c: TransferContext, _ run: TransferSplitRun, budget: String) -> String {
    let columns = c.shots.map { (arm: "inherited", shots: $0, title: "\($0)-shot") }
        + (c.reinitEpisodes > 0 ? c.reinitShots.map { (arm: "reinit", shots: $0, title: "reinit \($0)-shot") } : [])
    var s = "\n**At \(budget)**: costs (params, MACs, arena bytes\(c.seeds > 1 ? "; mean over seeds" : "")) and accuracy % (mean ± 95% CI), inherited and re-initialised\n\n"
    s += "| method | widths | params | MACs | arena bytes | " + columns.map(\.title).joined(separator: " | ") + " |\n"
    s += "|---|---|---:|---:|---:|" + String(repeating: "---:|", count: columns.count) + "\n"
    for m in c.methods {
        let b = m == "full" ? "100%" : budget
        let nets = run.result.nets.filter { $0.method == m && $0.budget == b }
        guard !nets.isEmpty else { continue }
        func average(_ f: (TransferNet) -> Int) -> Int { Int((Double(nets.map(f).reduce(0, +)) / Double(nets.count)).rounded()) }
        var line = "| \(m == "full" ? "full supernet" : m) | \(nets[0].widths.map(String.init).joined(separator: "-"))\(nets.count > 1 ? " …" : "") | "
            + "\(average { $0.costs.params }) | \(average { $0.costs.macs }) | \(average { $0.costs.arenaBytes }) |"
        for col in columns {
            let r = run.result.rows.first { $0.method == m && $0.budget == b && $0.arm == col.arm && $0.shots == col.shots }
            line += " " + (r.map { percentText($0.accuracies) } ?? "–") + " |"
        }
        s += line + "\n"
    }
    return s
}

/// DAP minus the best baseline and minus slimming, per budget × arm × shots, in points.
func pairedTable(_ run: TransferSplitRun) -> String {
    let comparisons = run.result.comparisons
    guard !comparisons.isEmpty else { return "" }
    func points(_ x: Double) -> String { String(format: "%.1f", x * 100) }
    func difference(_ c: TransferComparison) -> String {
        String(format: "%+.1f", c.difference * 100) + (c.ci.isFinite ? String(format: " ± %.1f", c.ci * 100) : " (n = 1)")
    }
    var s = "\n**Paired differences** (DAP minus a baseline, episode by episode over the same episodes and seeds; points, mean ± 95% CI, Student t)\n\n"
    s += "| budget | arm | shots | DAP | best baseline | DAP − best | DAP − slim |\n|---|---|---:|---:|---|---:|---:|\n"
    var seen = Set<String>()
    for c in comparisons {
        let key = "\(c.budget)|\(c.arm)|\(c.shots)"
        guard seen.insert(key).inserted else { continue }
        let best = comparisons.first { "\($0.budget)|\($0.arm)|\($0.shots)" == key && $0.against == "best_baseline" }
        let slim = comparisons.first { "\($0.budget)|\($0.arm)|\($0.shots)" == key && $0.against == "slim" }
        s += "| \(c.budget) | \(c.arm) | \(c.shots) | \(points(c.dapMean)) | "
            + (best.map { "\($0.baseline) \(points($0.baselineMean))" } ?? "–") + " | "
            + (best.map(difference) ?? "–") + " | " + (slim.map(difference) ?? "–") + " |\n"
    }
    return s
}

func transferMarkdown(_ c: TransferContext, plots: [String]) -> String {
    let date = ISO8601DateFormatter().string(from: Date())
    let several = c.runs.count > 1 || c.plannedSplits > 1
    var s = "# Transfer experiment\n\n"
    s += "Written by `sprig transfer\(c.quick ? " --quick" : "")\(c.splitsText.map { " --splits \($0) --split-seed \(c.splitSeed ?? 0)" } ?? "")` on \(date), in \(duration(c.seconds)) on this machine.\n\n"
    if c.runs.count < c.plannedSplits {
        s += "- **Partial**: \(c.runs.count) of \(c.plannedSplits) splits finished; this file is rewritten after each split.\n"
    }
    if several {
        s += "- Data: \(c.data); \(c.plannedSplits) class splits, each with its own supernet trained on its source classes"
            + (c.runs.contains { $0.split.name != "semantic" } ? " (the random ones drawn from --split-seed \(c.splitSeed ?? 0))" : "") + ":\n"
        for run in c.runs { s += "  - \(run.split.name): source classes \(run.split.source), target classes \(run.split.target)\n" }
    } else if let run = c.runs.first {
        s += "- Data: \(c.data); \(run.split.name == "semantic" ? "" : "split \(run.split.name), ")source classes \(run.split.source), target classes \(run.split.target).\n"
        s += "- Supernet: `\(run.supernet)` (\(run.architecture.family), widths \(run.architecture.widths)).\n"
    }
    s += "- Budgets: \(c.budgets.joined(separator: ", ")) (of the supernet's params unless stated); DAP \(c.steps) search steps (\(dapOptionsText(c.dap))); "
        + "\(c.seeds) search/selection seed\(c.seeds == 1 ? "" : "s") per method and budget; every pruned net gets one source epoch.\n"
    s += "- Inherited arm: \(c.shots.map(String.init).joined(separator: ", ")) shots, \(c.episodes) episodes each; the device's `head` method on the frozen net.\n"
    s += "- Re-initialised arm: \(c.reinitShots.map(String.init).joined(separator: ", ")) shots, \(c.reinitEpisodes) episodes; the architecture trained from scratch on the shots.\n"
    s += "- Accuracy over all target test images; mean ± 95% CI (Student t) over episodes × seeds. The same episodes for every net, "
        + "so DAP's differences from the best baseline (highest mean in the cell) and from slimming are paired: the mean and 95% CI of the per-episode differences.\n"
    for run in c.runs {
        if several {
            s += "\n## Split \(run.split.name): source \(run.split.source), target \(run.split.target)\n\n"
            s += "Supernet: `\(run.supernet)` (\(run.architecture.family), widths \(run.architecture.widths)).\n"
        }
        s += transferTable(c, run, arm: "inherited")
        if c.reinitEpisodes > 0 { s += transferTable(c, run, arm: "reinit") }
        s += pairedTable(run)
        for b in c.budgets { s += budgetTable(c, run, budget: b) }
        s += "\n**The nets** (costs by the cost model: params and MACs with BatchNorm folded; arena = int8 weights + peak activations)\n\n"
        s += "| method | budget | seed | widths | params | MACs | arena bytes | source accuracy | search s |\n|---|---|---:|---|---:|---:|---:|---:|---:|\n"
        for n in run.result.nets {
            s += "| \(n.method) | \(n.budget) | \(n.seed) | \(n.widths.map(String.init).joined(separator: "-")) | \(n.costs.params) | \(n.costs.macs) | \(n.costs.arenaBytes) | "
                + String(format: "%.2f%%", n.sourceAccuracy * 100) + String(format: " | %.1f |\n", n.searchSeconds)
        }
    }
    s += "\n## Plots\n\n" + plots.map { "![\($0)](\($0))\n" }.joined(separator: "\n")
    return s
}

/// transfer.json: run-wide settings; `splits` (name, classes, supernet); `rows`, `nets` and
/// `paired`, each entry naming its split. Accuracies and differences are fractions.
func transferJSON(_ c: TransferContext) -> String {
    var o = JSONObject()
    o.set("data", c.data)
    if let first = c.runs.first {  // the first split's, as before --splits
        o.set("source_classes", raw: "[" + first.split.source.map(String.init).joined(separator: ",") + "]")
        o.set("target_classes", raw: "[" + first.split.target.map(String.init).joined(separator: ",") + "]")
        o.set("supernet", first.supernet)
    }
    if let seed = c.splitSeed { o.set("split_seed", seed) }
    o.set("quick", c.quick)
    o.set("seconds", c.seconds)
    o.set("episodes", c.episodes)
    o.set("seeds", c.seeds)
    o.set("search_steps", c.steps)
    o.set("feature_floor", c.dap.featureFloor)
    o.set("perturb_every", c.dap.perturbEvery)
    o.set("scale_prior", c.dap.scalePrior)
    o.set("pseudo_target", c.dap.pseudoTargetClasses)
    o.set("splits", raw: "[" + c.runs.map { run -> String in
        var j = JSONObject()
        j.set("name", run.split.name)
        j.set("source_classes", raw: "[" + run.split.source.map(String.init).joined(separator: ",") + "]")
        j.set("target_classes", raw: "[" + run.split.target.map(String.init).joined(separator: ",") + "]")
        j.set("supernet", run.supernet)
        return j.text
    }.joined(separator: ",") + "]")
    o.set("rows", raw: "[" + c.runs.flatMap { run in run.result.rows.map { r -> String in
        let (m, ci) = meanAndCI(r.accuracies)
        var j = JSONObject()
        j.set("split", run.split.name)
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
    } }.joined(separator: ",") + "]")
    o.set("paired", raw: "[" + c.runs.flatMap { run in run.result.comparisons.map { p -> String in
        var j = JSONObject()
        j.set("split", run.split.name)
        j.set("budget", p.budget)
        j.set("arm", p.arm)
        j.set("shots", p.shots)
        j.set("against", p.against)
        j.set("baseline", p.baseline)
        j.set("dap_mean", p.dapMean)
        j.set("baseline_mean", p.baselineMean)
        j.set("difference_mean", p.difference)
        j.set("difference_ci95", p.ci)
        j.set("difference_low", p.difference - p.ci)
        j.set("difference_high", p.difference + p.ci)
        j.set("n", p.n)
        return j.text
    } }.joined(separator: ",") + "]")
    o.set("nets", raw: "[" + c.runs.flatMap { run in run.result.nets.map { n -> String in
        var j = JSONObject()
        j.set("split", run.split.name)
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
    } }.joined(separator: ",") + "]")
    return o.text + "\n"
}

/// Accuracy against budget, one line per method, the full supernet as a dashed level.
func accuracyPlot(_ c: TransferContext, _ run: TransferSplitRun, shots k: Int, arm: String) -> String {
    let rows = run.result.rows
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
    let split = c.runs.count > 1 ? " (\(run.split.name) split)" : ""
    return lineChart(title: "\(run.split.target.count)-way \(k)-shot accuracy against budget (\(arm))\(split)", xLabel: "budget (share of supernet params)",
                     yLabel: "test accuracy", series: series, logX: xs.allSatisfy { $0 > 0 && $0 <= 1 } && xs.count > 1,
                     xPercent: true, yPercent: true)
}
