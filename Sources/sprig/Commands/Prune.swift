// `sprig prune`: supernet checkpoint → a physically smaller checkpoint within a budget.

import Foundation
import SprigPrune
import SprigTrain

let pruneCommand = Command(
    name: "prune",
    summary: "Prune a supernet's architecture to a budget (DAP or a baseline) and save the smaller network.",
    usage: "sprig prune SUPERNET [--method dap|l1|slim|random|uniform] [--budget 10%|params:N|macs:N|arena:NKB] [--width-multiple N] [--pseudo-target N] [--pseudo-target-weight X] [--feature-floor F] [--scale-prior S] [--data SOURCE] [--classes SPEC] --out pruned.safetensors [--json]",
    positionals: 1...1,
    options: [
        OptionSpec(name: "method", value: "M", help: "dap, l1, slim, random or uniform.", defaultValue: "dap"),
        OptionSpec(name: "budget", value: "B", help: "10% (of params), params:N, macs:N, macs:25%, arena:64KB.", defaultValue: "10%"),
        OptionSpec(name: "width-multiple", value: "N", help: "Every method: after the selection within the budget, round each group's kept count UP to a multiple of N (at least N; a group whose size is not a multiple of N may keep all its units), keeping its highest-scored units. The cost may exceed the budget by under N units per group. 1 (the default): no rounding, the budget a hard cap; docs/method.md measures 4, 8 and 16.", defaultValue: "\(pruneWidthMultipleDefault)"),
        OptionSpec(name: "data", value: "SOURCE", help: dataSourceHelp, defaultValue: "the data the supernet records, else builtin"),
        OptionSpec(name: "classes", value: "SPEC", help: "Source classes, in the supernet's output order.", defaultValue: "the checkpoint's"),
        OptionSpec(name: "seed", value: "S", help: "Seed of the search (gates, data order), of random, and of the fine-tuning.", defaultValue: "1"),
        OptionSpec(name: "steps", value: "N", help: "DAP: alternating steps (one weight step on split A, one θ step on split B).", defaultValue: "\(DAPConfig().steps)"),
        OptionSpec(name: "mode", value: "M", help: "DAP: budget (λ·relu(C/C_full − b)²) or penalty (λ·C/C_full).", defaultValue: "budget"),
        OptionSpec(name: "lambda", value: "X", help: "DAP: weight of the complexity term.", defaultValue: "100"),
        OptionSpec(name: "t1", value: "A,B", help: "DAP: T1 (inclusion probability) from A to B, geometric.", defaultValue: "1,0.05"),
        OptionSpec(name: "t2", value: "A,B", help: "DAP: T2 (relaxed Bernoulli gates) from A to B, geometric.", defaultValue: "1,0.1"),
        OptionSpec(name: "logit-lr", value: "X", help: "DAP: Adam learning rate of the architecture logits θ.", defaultValue: "0.05"),
        OptionSpec(name: "weight-lr", value: "X", help: "DAP: SGD learning rate of the weights during the search.", defaultValue: "0.01"),
        OptionSpec(name: "perturb-every", value: "N", help: "DAP: reset the weights to the supernet's plus noise every N steps (0: never).", defaultValue: "0"),
        OptionSpec(name: "budget-ramp", value: "F", help: "DAP: the fraction of the steps over which the budget falls from the full cost to its target (cubic; 0: at once).", defaultValue: "\(DAPConfig().budgetRamp)"),
        OptionSpec(name: "perturb-scale", value: "X", help: "DAP: that noise, as a fraction of each tensor's RMS.", defaultValue: "0.1"),
        OptionSpec(name: "pseudo-target", value: "N", help: pseudoTargetHelp, defaultValue: "0"),
        OptionSpec(name: "pseudo-target-weight", value: "X", help: "DAP: weight of the pseudo-target's loss beside the source loss in the θ step.", defaultValue: "\(DAPConfig().pseudoTargetWeight)"),
        OptionSpec(name: "feature-floor", value: "F", help: featureFloorHelp, defaultValue: "\(DAPConfig().featureFloor)"),
        OptionSpec(name: "scale-prior", value: "S", help: scalePriorHelp, defaultValue: "\(DAPConfig().scalePrior)"),
        OptionSpec(name: "slim-epochs", value: "N", help: "slim: epochs of sparsity training.", defaultValue: "1"),
        OptionSpec(name: "slim-lambda", value: "X", help: "slim: L1 weight on the scales.", defaultValue: "1e-4"),
        OptionSpec(name: "finetune-epochs", value: "N", help: "Source epochs for the extracted network (every method gets the same).", defaultValue: "1"),
        OptionSpec(name: "qat-epochs", value: "N", help: "Then N epochs of quantization-aware training (the int8 blob's rounding in the loop; weights left on their int8 grid), for a net you compile to q8.", defaultValue: "0"),
        OptionSpec(name: "threads", value: "N", help: "Threads for GEMM and the layers.", defaultValue: "2"),
        OptionSpec(name: "trace", value: "PATH", help: "DAP: write the inclusion probabilities during the search as JSON."),
        OptionSpec(name: "out", value: "PATH", help: "Checkpoint to write (atomically).", defaultValue: "pruned.safetensors"),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object (params_before/after, macs_before/after, arena_bytes_after, kept, …)."),
    ],
    details: """
    Every method selects units (conv channels, dense neurons; a residual block's output channels
    and its shortcut's are one group) within the budget, slices them out of the weights, and
    trains the smaller network for --finetune-epochs on the source classes. See docs/method.md.

    Examples:
      sprig prune supernet.safetensors --budget 10% --out pruned.safetensors
      sprig prune supernet.safetensors --method l1 --budget macs:25% --out l1.safetensors
      sprig prune supernet.safetensors --budget arena:48KB --data fashion-mnist --json
      sprig prune supernet.safetensors --budget 10% --width-multiple 8 --out pruned8.safetensors

    """,
    run: runPrune)

/// "1,0.05" → (1, 0.05), both in (0, 100].
func temperaturePair(_ a: ParsedArguments, _ name: String, default value: (Double, Double)) throws -> (start: Double, end: Double) {
    guard let text = a.string(name) else { return value }
    let parts = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
    guard parts.count == 2, let s = parts[0], let e = parts[1], s > 0, e > 0, s <= 100, e <= 100 else {
        throw UsageError(description: "--\(name) '\(text)': expected START,END with both in (0, 100], e.g. 1,0.05")
    }
    return (s, e)
}

/// `sprig prune`'s default `--width-multiple`: 1, as in the library's `PruneSettings` (docs/method.md,
/// "Width granularity, measured": since the runtime runs any width at full speed, rounding to 8 gave
/// the cnn no speed and the mobilenet 1–5% for a third more params).
let pruneWidthMultipleDefault = 1

/// The pruning settings from the command line (shared by `sprig prune` and `sprig demo`).
func pruneSettings(_ a: ParsedArguments, budget: Budget) throws -> PruneSettings {
    // The library's defaults, defined once (SprigPrune's PruneSettings and DAPConfig).
    var settings = PruneSettings(budget: budget)
    let d = settings.dap
    settings.method = PruneMethod(rawValue: try a.choice("method", default: settings.method.rawValue,
                                                         among: PruneMethod.allCases.map(\.rawValue)))!
    settings.seed = UInt64(try a.int("seed", default: Int(settings.seed), range: 0...Int.max))
    settings.dap.steps = try a.int("steps", default: d.steps, range: 1...10_000_000)
    settings.dap.mode = DAPConfig.Mode(rawValue: try a.choice("mode", default: d.mode.rawValue, among: DAPConfig.Mode.allCases.map(\.rawValue)))!
    settings.dap.lambda = try a.double("lambda", default: d.lambda, range: 0...1e9)
    settings.dap.t1 = try temperaturePair(a, "t1", default: d.t1)
    settings.dap.t2 = try temperaturePair(a, "t2", default: d.t2)
    settings.dap.logitLearningRate = try a.double("logit-lr", default: d.logitLearningRate, range: 1e-9...100)
    settings.dap.weightLearningRate = Float(try a.double("weight-lr", default: Double(d.weightLearningRate), range: 0...100))
    settings.dap.perturbEvery = try a.int("perturb-every", default: d.perturbEvery, range: 0...Int.max)
    settings.dap.budgetRamp = try a.double("budget-ramp", default: d.budgetRamp, range: 0...1)
    settings.dap.perturbScale = Float(try a.double("perturb-scale", default: Double(d.perturbScale), range: 0...100))
    try parseTransferSearchOptions(a, into: &settings.dap)
    settings.slimEpochs = try a.int("slim-epochs", default: settings.slimEpochs, range: 1...1000)
    settings.slimLambda = Float(try a.double("slim-lambda", default: Double(settings.slimLambda), range: 0...1))
    settings.widthMultiple = try a.int("width-multiple", default: pruneWidthMultipleDefault, range: 1...4096)
    return settings
}

let pseudoTargetHelp = "DAP: hold out the last N source classes (0: off; else 2 ≤ N ≤ classes − 2) from the weight steps and the source loss, and train θ also on a cosine prototype head's loss on them (fitted on 5 samples per class, scored on 10 others, every step)."
let featureFloorHelp = "DAP: add λ·relu(F − n/N)² to the θ objective, n the expected kept units of the feature layer (the one the classifier reads) and N its size (0: off)."
let scalePriorHelp = "DAP: start θ at its initial logit plus S × each unit's standardised log |BatchNorm γ| (0: off; no effect without BatchNorm)."

/// `--pseudo-target`, `--pseudo-target-weight` and `--feature-floor` (shared by `sprig prune`, `sprig demo` and `sprig transfer`).
func parseTransferSearchOptions(_ a: ParsedArguments, into d: inout DAPConfig) throws {
    let held = try a.int("pseudo-target", default: d.pseudoTargetClasses, range: 0...255)
    guard held != 1 else {
        throw UsageError(description: "--pseudo-target: '1' holds out one class; a prototype head needs 0 (off) or at least 2")
    }
    d.pseudoTargetClasses = held
    d.pseudoTargetWeight = try a.double("pseudo-target-weight", default: d.pseudoTargetWeight, range: 0...1e6)
    d.featureFloor = try a.double("feature-floor", default: d.featureFloor, range: 0...1)
    d.scalePrior = try a.double("scale-prior", default: d.scalePrior, range: 0...100)
}

func parseBudget(_ text: String) throws -> Budget {
    do { return try Budget(parsing: text) } catch { throw UsageError(description: "--budget: \(error)") }
}

/// Progress bars for a pruning job: one per stage, replaced when the stage changes.
final class StageBars {
    private var bar: ProgressBar?
    private var stage = ""

    func update(_ name: String, _ p: PruneProgress) {
        if name != stage || bar == nil {
            stage = name
            bar = ProgressBar(name, total: p.total, unit: "step", countFromFirstReport: true)
        }
        var status = String(format: "loss %.4f", p.loss)
        if let c = p.cost { status += String(format: " C/C_full %.3f", c) }
        if let t1 = p.t1, let t2 = p.t2 { status += String(format: " T1 %.3f T2 %.3f", t1, t2) }
        bar?.update(p.step, status: status)
    }
}

func runPrune(_ a: ParsedArguments) throws {
    let path = a.positional[0]
    let budget = try parseBudget(a.string("budget", default: "10%"))
    let settings = try pruneSettings(a, budget: budget)
    let finetuneEpochs = try a.int("finetune-epochs", default: 1, range: 0...1000)
    let qatEpochs = try a.int("qat-epochs", default: 0, range: 0...1000)
    GEMM.defaultThreads = try a.int("threads", default: 2, range: 1...64)
    let out = a.string("out", default: "pruned.safetensors")
    let (network, architecture) = try loadCheckpoint(path: path)
    let needsData = settings.method == .dap || settings.method == .slim || finetuneEpochs > 0 || qatEpochs > 0
    let input = architecture.input
    var source = try Dataset(images: [], labels: [], rows: input.height, cols: input.width, channels: input.channels)
    var test: Dataset?
    let record = try DataRecord.read(checkpoint: path)
    if needsData {
        let (dataSource, splits) = try loadDataForModel(a, recorded: record, input: input, command: "prune", model: path,
                                                        quiet: a.flag("json"))
        try requireShape(splits.train, of: architecture, model: path, data: dataSource.description)
        let classes = try a.string("classes").map { try ClassSelection.parse($0, present: splits.train.labelsPresent) }
            ?? architecture.sourceClasses
        guard classes.count == architecture.classes else {
            throw UsageError(description: "--classes: \(classes.count) classes but \(path) has \(architecture.classes) outputs")
        }
        source = try splits.train.filtered(classes: classes)
        test = try splits.test.filtered(classes: classes)
    }
    let bars = StageBars()
    let outcome = try pruneNetwork(network, architecture: architecture, source: source, settings: settings,
                                   finetuneEpochs: finetuneEpochs, quantizationAwareEpochs: qatEpochs, progress: bars.update)
    let accuracy = try test.map { try evaluate(outcome.network, on: $0, normalization: architecture.normalization).accuracy }
    var pruning = JSONObject()
    pruning.set("method", settings.method.rawValue)
    pruning.set("budget", a.string("budget", default: "10%"))
    pruning.set("supernet", path)
    pruning.set("seed", Int(settings.seed))
    pruning.set("width_multiple", settings.widthMultiple)
    if settings.method == .dap && settings.dap.pseudoTargetClasses > 0 {
        pruning.set("pseudo_target", settings.dap.pseudoTargetClasses)
        pruning.set("pseudo_target_weight", settings.dap.pseudoTargetWeight)
    }
    if settings.method == .dap && settings.dap.featureFloor > 0 { pruning.set("feature_floor", settings.dap.featureFloor) }
    if settings.method == .dap && settings.dap.scalePrior > 0 { pruning.set("scale_prior", settings.dap.scalePrior) }
    if qatEpochs > 0 { pruning.set("qat_epochs", qatEpochs) }
    pruning.set("kept", raw: "[" + outcome.groups.map { "\($0.kept)" }.joined(separator: ",") + "]")
    var metadata = ["pruning": pruning.text]
    if let record { metadata[DataRecord.metadataKey] = record.json }  // the pruned net was trained on the same data
    try saveCheckpoint(outcome.network, architecture: outcome.architecture, to: out, metadata: metadata)
    if let tracePath = a.string("trace"), let trace = outcome.trace {
        try writeFileAtomically(Array(traceJSON(trace, groups: outcome.groups).utf8), to: tracePath)
    }
    if a.flag("json") {
        var o = JSONObject()
        o.set("method", settings.method.rawValue)
        o.set("budget_kind", budget.kind.rawValue)
        o.set("budget_target", outcome.target)
        o.set("budget_achieved", outcome.achieved)
        o.set("width_multiple", settings.widthMultiple)
        if settings.method == .dap && settings.dap.pseudoTargetClasses > 0 {
            o.set("pseudo_target", settings.dap.pseudoTargetClasses)
            o.set("pseudo_target_weight", settings.dap.pseudoTargetWeight)
        }
        if settings.method == .dap && settings.dap.featureFloor > 0 { o.set("feature_floor", settings.dap.featureFloor) }
        if settings.method == .dap && settings.dap.scalePrior > 0 { o.set("scale_prior", settings.dap.scalePrior) }
        o.set("params_before", outcome.before.params)
        o.set("params_after", outcome.after.params)
        o.set("macs_before", outcome.before.macs)
        o.set("macs_after", outcome.after.macs)
        o.set("arena_bytes_before", outcome.before.arenaBytes)
        o.set("arena_bytes_after", outcome.after.arenaBytes)
        o.set("kept", raw: "{" + outcome.groups.map { "\(jsonQuote($0.name)):\($0.kept)" }.joined(separator: ",") + "}")
        o.set("total", raw: "{" + outcome.groups.map { "\(jsonQuote($0.name)):\($0.total)" }.joined(separator: ",") + "}")
        o.set("widths", raw: "[" + outcome.architecture.widths.map(String.init).joined(separator: ",") + "]")
        if let accuracy { o.set("source_accuracy", accuracy) }
        o.set("search_seconds", outcome.searchSeconds)
        o.set("finetune_seconds", outcome.finetuneSeconds)
        o.set("checkpoint", out)
        print(o.text)
        return
    }
    print(pruneTable(outcome))
    var line = "\(settings.method.rawValue) to \(budget): \(budget.kind.rawValue) \(Int(outcome.achieved)) of a target \(Int(outcome.target))"
        + String(format: " (%.1f%% of the supernet)", 100 * outcome.achieved / max(1, fullCost(outcome, budget.kind)))
    if let accuracy { line += String(format: "; source test accuracy %.2f%%", accuracy * 100) }
    print(line + "; search \(duration(outcome.searchSeconds)), fine-tune \(duration(outcome.finetuneSeconds)); wrote \(out)")
}

func fullCost(_ o: PruneOutcome, _ kind: CostKind) -> Double {
    switch kind {
    case .params: return Double(o.before.params)
    case .macs: return Double(o.before.macs)
    case .arena: return Double(o.before.arenaBytes)
    }
}

/// The per-group kept table, then params, MACs and estimated arena bytes before and after.
func pruneTable(_ o: PruneOutcome) -> String {
    var s = left("group", 16) + right("kept", 8) + right("of", 6) + right("share", 8) + "\n"
    for g in o.groups {
        s += left(g.name, 16) + right("\(g.kept)", 8) + right("\(g.total)", 6)
            + right(String(format: "%.0f%%", 100 * Double(g.kept) / Double(max(g.total, 1))), 8) + "\n"
    }
    s += "\n" + left("", 22) + right("before", 12) + right("after", 12) + right("ratio", 8) + "\n"
    let rows: [(String, Int, Int)] = [("params", o.before.params, o.after.params), ("MACs", o.before.macs, o.after.macs),
                                      ("arena bytes (est.)", o.before.arenaBytes, o.after.arenaBytes)]
    for (name, b, a) in rows {
        s += left(name, 22) + right("\(b)", 12) + right("\(a)", 12) + right(String(format: "%.3f", Double(a) / Double(max(b, 1))), 8) + "\n"
    }
    return s
}

/// The search trace as JSON: steps, cost fractions, losses, groups, and p per unit per sample.
func traceJSON(_ t: SearchTrace, groups: [(name: String, total: Int, kept: Int)]) -> String {
    func list(_ v: [Double]) -> String { "[" + v.map { String(format: "%.5g", $0) }.joined(separator: ",") + "]" }
    var o = JSONObject()
    o.set("steps", raw: "[" + t.steps.map(String.init).joined(separator: ",") + "]")
    o.set("cost", raw: list(t.costs))
    o.set("loss", raw: list(t.losses))
    o.set("groups", raw: "[" + groups.map { "{\"name\":\(jsonQuote($0.name)),\"size\":\($0.total)}" }.joined(separator: ",") + "]")
    o.set("probabilities", raw: "[" + t.probabilities.map(list).joined(separator: ",") + "]")
    return o.text + "\n"
}
