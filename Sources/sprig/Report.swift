// `sprig demo`'s report: what the run measured, drawn, and what it takes to run it again.
//
//   report.html
//     Results          the demo's table (both nets), stage times
//     Training         the supernet's running loss and accuracy per step
//     DAP search       per layer: mean inclusion probability, 25–75% band, kept count;
//                      below, on its own axis: E[C]/C_full and the budget target
//     Adaptation       accuracy per episode (points, mean, 95% CI); accuracy against the
//                      head's training epochs; accuracy against blob bytes and latency
//     New classes      confusion matrix and per-class accuracy, with class names
//     Device           per-op latency of the pruned blob; its arena map
//     Reproduce        command line, release, commit, build, seeds, data, CPU, ISA, load

import Foundation
import SprigPrune
import SprigRuntime
import SprigTrain

// MARK: The machine

/// What /proc/cpuinfo and /proc/loadavg say about this machine (Linux; "unknown" elsewhere).
struct MachineInfo {
    var cpuModel = "unknown"
    /// "family 26, model 2" on x86-64; the CPU part on ARM.
    var cpuIdentity = ""
    /// The instruction-set extensions that matter to Sprig's kernels, as the CPU reports them.
    var isa: [String] = []
    var cores = ProcessInfo.processInfo.activeProcessorCount
    var architecture = "unknown"

    init() {
        var host = utsname()
        uname(&host)
        architecture = withUnsafeBytes(of: &host.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else {
                if !fields.isEmpty { break }  // the end of the first processor's block
                continue
            }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            if fields[key] == nil { fields[key] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
        }
        cpuModel = fields["model name"] ?? fields["Hardware"] ?? "unknown"
        if let family = fields["cpu family"], let model = fields["model"] {
            cpuIdentity = "family \(family), model \(model)"
        } else if let part = fields["CPU part"] {
            cpuIdentity = "CPU part \(part)"
        }
        let flags = Set((fields["flags"] ?? fields["Features"] ?? "").split(separator: " ").map(String.init))
        let interesting = ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni",
                           "avx512_bf16", "avx_vnni", "amx_int8", "neon", "asimd", "asimddp", "i8mm", "sve", "sve2", "bf16"]
        isa = interesting.filter(flags.contains)
    }
}

/// The 1-, 5- and 15-minute load averages, or nil off Linux.
func loadAverages() -> String? {
    guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return nil }
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}

/// `words` as one shell command line, each word quoted when it needs to be.
func shellLine(_ words: [String]) -> String {
    words.map { w in
        w.isEmpty || w.contains(where: { !($0.isLetter || $0.isNumber || "-_./=:,%+@".contains($0)) })
            ? "'" + w.replacingOccurrences(of: "'", with: "'\\''") + "'" : w
    }.joined(separator: " ")
}

// MARK: What the device runtime says about a blob

/// The median time of each op of `blob` run alone (after 20 whole invokes on `image`), over `runs`;
/// labelled "index opcode output-shape", indices as `sprig-edge info` numbers them.
func perOpLatency(_ blob: BlobFile, image: [UInt8], runs: Int = 200) throws -> [(name: String, seconds: Double)] {
    let m = blob.model
    let arena = try allocateArena(m.arenaBytes, path: blob.path, field: "arena_bytes")
    defer { free(arena.baseAddress) }
    let interpreter: Interpreter
    do {
        interpreter = try Interpreter(model: m, arena: arena)
        try image.withUnsafeBytes { try interpreter.setInput(pixels: $0) }
    } catch let e as SprigError {
        throw CommandError(description: "\(blob.path): \(e.message)")
    }
    for _ in 0..<20 { interpreter.invoke() }
    var out: [(String, Double)] = []
    var times = [Double](repeating: 0, count: runs)
    for o in 0..<m.opCount {
        for r in 0..<runs {
            let t0 = DispatchTime.now().uptimeNanoseconds
            interpreter.run(o)
            times[r] = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        }
        times.sort()
        let op = m.op(o)
        out.append(("\(o) \(op.opcode.name.description) \(shapeString(m.tensor(op.output)))", times[runs / 2]))
    }
    return out
}

/// Every arena tensor of `blob` with its byte range and its live columns: column 0 is the
/// input, column o + 1 is op o; a tensor lives from the column that writes it to the last
/// column that reads it (the output: to the end).
func arenaLifetimes(_ blob: BlobFile) -> [(name: String, offset: Int, bytes: Int, first: Int, last: Int)] {
    let m = blob.model
    var first = [Int](repeating: -1, count: m.tensorCount), last = [Int](repeating: -1, count: m.tensorCount)
    for o in 0..<m.opCount {
        let op = m.op(o)
        if op.output >= 0 && op.output < m.tensorCount && first[op.output] < 0 { first[op.output] = o + 1 }
        let inputs = [op.inputs.0, op.inputs.1, op.inputs.2, op.inputs.3, op.inputs.4, op.inputs.5].prefix(op.inputCount)
        for t in inputs where t >= 0 && t < m.tensorCount {
            if first[t] < 0 { first[t] = 0 }
            last[t] = max(last[t], o + 1)
        }
    }
    return (0..<m.tensorCount).compactMap { t in
        let info = m.tensor(t)
        guard info.storage == .arena, first[t] >= 0 else { return nil }
        return (blob.name(t), info.dataOffset, info.dataBytes, first[t], last[t] < 0 ? m.opCount : last[t])
    }
}

/// Each image's predicted class by `blob`, one image at a time.
func predictions(_ blob: BlobFile, on data: Dataset) throws -> [Int] {
    let arena = try allocateArena(blob.model.arenaBytes, path: blob.path, field: "arena_bytes")
    defer { free(arena.baseAddress) }
    do {
        let interpreter = try Interpreter(model: blob.model, arena: arena)
        var out: [Int] = []
        out.reserveCapacity(data.count)
        for i in 0..<data.count {
            try Array(data.image(i)).withUnsafeBytes { try interpreter.setInput(pixels: $0) }
            interpreter.invoke()
            out.append(interpreter.argmax())
        }
        return out
    } catch let e as SprigError {
        throw CommandError(description: "\(blob.path): \(e.message)")
    }
}

/// `counts[truth][predicted]` over `classes` labels; predictions outside 0..<classes are dropped.
func confusionMatrix(truth: [Int], predicted: [Int], classes: Int) -> [[Int]] {
    var counts = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
    for (t, p) in zip(truth, predicted) where t >= 0 && t < classes && p >= 0 && p < classes { counts[t][p] += 1 }
    return counts
}

// MARK: The report

/// Everything the report shows beyond the table's columns.
struct DemoReportData {
    var columns: [DemoColumn]
    var stages: [(String, Double)]
    var outcome: PruneOutcome
    var budgetTarget: Double?
    var budgetRamp: Double
    var data: String
    var sourceSpec: String
    var targetSpec: String
    var targetNames: [String]
    var sourceNames: [String]
    var budget: String
    var shots: Int
    var episodes: Int
    var seed: Int
    var epochs: Int
    var outDir: String
    /// (step, running loss, running accuracy, epoch) of the supernet's training.
    var training: [(step: Int, loss: Double, accuracy: Double, epoch: Int)] = []
    /// Per net: (head epochs, accuracies over the episodes).
    var epochCurves: [[(epochs: Int, accuracies: [Double])]] = []
    /// Confusion counts of the pruned net's tuned blob (episode 0, head) on the held-out images.
    var confusion: [[Int]] = []
    var perOp: [(name: String, seconds: Double)] = []
    var arena: [(name: String, offset: Int, bytes: Int, first: Int, last: Int)] = []
    var arenaBytes = 0
    var opCount = 0
    var commandLine = ""
    var loadStart: String?
    var loadEnd: String?
    var heldOutCount = 0
}

func demoReport(_ d: DemoReportData) -> String {
    let c = d.columns, targets = d.targetNames.count
    var figures: [(id: String, caption: String, svg: String)] = []
    // Training.
    if !d.training.isEmpty {
        let loss = ChartSeries(name: "running loss", points: d.training.map { (Double($0.step), $0.loss, nil) }, color: chartPalette[1], markers: false)
        let accuracy = ChartSeries(name: "running accuracy", points: d.training.map { (Double($0.step), $0.accuracy, nil) }, color: chartPalette[0], markers: false)
        let top = lineChartBody(title: "Supernet training (\(d.epochs) epochs, classes \(d.sourceSpec))", xLabel: "step (batch)",
                                yLabel: "training loss", series: [loss], width: 640, height: 260, logX: false, xPercent: false,
                                yPercent: false, yRange: (0, max(d.training.map(\.loss).max() ?? 1, 0.1)),
                                xRange: (0, Double(d.training.last?.step ?? 1)), references: [], legend: true, legendWidth: 170)
        let bottom = lineChartBody(title: "", xLabel: "step (batch)", yLabel: "training accuracy", series: [accuracy], width: 640,
                                   height: 240, logX: false, xPercent: false, yPercent: true, yRange: (0, 1),
                                   xRange: (0, Double(d.training.last?.step ?? 1)), references: [], legend: true, legendWidth: 170)
        figures.append(("training-curves", "Training curves of the supernet: the trainer's running mean of the loss and of the accuracy within each epoch, on the training images.",
                        stackedCharts([(top, 260), (bottom, 240)])))
    }
    // DAP search.
    if let t = d.outcome.trace {
        figures.append(("gate-trajectories", "DAP search: per layer, the mean inclusion probability of its units (band: 25th to 75th percentile) and the units kept; "
                        + "below, on its own axis, the expected cost of the relaxed net against the budget target"
                        + (d.budgetRamp > 0 ? String(format: " (the budget falls from the full cost to the target over the first %.0f%% of the steps).", d.budgetRamp * 100) : "."),
                        gateTrajectoryChart(title: "DAP search to \(d.budget): inclusion probabilities", steps: t.steps, probabilities: t.probabilities,
                                            groups: d.outcome.groups.map { ($0.name, $0.total, $0.kept) }, costs: t.costs, target: d.budgetTarget)))
    }
    figures.append(("units-kept", "Units kept per layer by DAP.",
                    barChart(title: "Units kept per layer (DAP \(d.budget))", rows: d.outcome.groups.map { ($0.name, Double($0.kept), Double($0.total)) })))
    // Adaptation.
    var groups: [(label: String, values: [Double], color: String)] = []
    for (i, column) in c.enumerated() {
        if let r = column.imprint { groups.append(("\(column.name), imprint", r.accuracies, chartPalette[i])) }
        if let r = column.head { groups.append(("\(column.name), head", r.accuracies, chartPalette[i])) }
    }
    figures.append(("episodes", "Adapted accuracy on the \(d.heldOutCount) held-out test images of the new classes, one point per seeded episode (\(d.shots) shots per class each), with the mean and its 95% confidence interval.",
                    stripChart(title: "\(targets)-way \(d.shots)-shot accuracy per episode", yLabel: "held-out accuracy", groups: groups)))
    if !d.epochCurves.isEmpty {
        var series: [ChartSeries] = []
        for (i, curve) in d.epochCurves.enumerated() where !curve.isEmpty {
            series.append(ChartSeries(name: c[i].name, points: curve.map { p in
                let (m, ci) = meanAndCI(p.accuracies)
                return (Double(p.epochs), m, ci)
            }, color: chartPalette[i]))
        }
        figures.append(("finetune-curves", "Fine-tuning curve: held-out accuracy after the device's head training for that many epochs (mean and 95% CI over the same \(d.episodes) episodes; 30 is the device default).",
                        lineChart(title: "Accuracy against head training epochs (\(d.shots) shots)", xLabel: "head epochs (log scale)",
                                  yLabel: "held-out accuracy", series: series, logX: true, yPercent: true,
                                  xRange: (Double(d.epochCurves.first?.first?.epochs ?? 1) / 1.3, Double(d.epochCurves.first?.last?.epochs ?? 1) * 1.3))))
    }
    func point(_ x: Double, _ col: DemoColumn) -> (x: Double, y: Double, error: Double?) {
        (x, col.head?.mean ?? .nan, col.head.map { meanAndCI($0.accuracies).ci })
    }
    let sizeSeries = c.enumerated().map { ChartSeries(name: $0.element.name, points: [point(Double($0.element.blobBytes) / 1024, $0.element)],
                                                      color: chartPalette[$0.offset], joined: false) }
    let latencySeries = c.enumerated().map { ChartSeries(name: $0.element.name, points: [point($0.element.latency * 1e6, $0.element)],
                                                         color: chartPalette[$0.offset], joined: false) }
    func padded(_ xs: [Double]) -> (Double, Double) { ((xs.min() ?? 1) / 1.6, (xs.max() ?? 1) * 1.6) }
    let sizeRange = padded(c.map { Double($0.blobBytes) / 1024 }), latencyRange = padded(c.map { $0.latency * 1e6 })
    figures.append(("accuracy-size", "Accuracy after adapting (head, mean ± 95% CI) against the int8 blob's size and against batch-1 latency on this host. The demo runs DAP and the full supernet only; `sprig transfer` adds the baselines (L1, slimming, random, uniform) at the same budgets.",
                    lineChart(title: "Accuracy against size", xLabel: "blob KiB (int8, log scale)", yLabel: "head accuracy", series: sizeSeries, logX: true, yPercent: true, xRange: sizeRange)
                    + lineChart(title: "Accuracy against latency", xLabel: "µs per image (log scale)", yLabel: "head accuracy", series: latencySeries, logX: true, yPercent: true, xRange: latencyRange)))
    // Device.
    if !d.perOp.isEmpty {
        figures.append(("per-op", "Time of each op of the pruned int8 blob run alone (median of 200 runs, one image, this host).",
                        valueBarChart(title: "Per-op latency, pruned int8 blob", rows: d.perOp.map { ($0.name, $0.seconds * 1e6) }, unit: "µs")))
    }
    if !d.arena.isEmpty {
        figures.append(("arena-map", "The inference arena of the pruned int8 blob (\(d.arenaBytes) bytes): each activation over the byte range the blob's plan gives it, from the op that writes it to the last op that reads it. Hover a box for its name.",
                        arenaMapChart(title: "Arena map, pruned int8 blob", arenaBytes: d.arenaBytes, opCount: d.opCount, tensors: d.arena)))
    }
    for f in figures { try? writeFileAtomically(Array(f.svg.utf8), to: d.outDir + "/" + f.id + ".svg") }

    let machine = MachineInfo()
    let date = ISO8601DateFormatter().string(from: Date())
    var s = """
    <!DOCTYPE html>
    <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Sprig demo report</title>
    <style>
    body { font-family: sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #222; }
    table { border-collapse: collapse; margin: 1em 0; }
    td, th { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
    td:first-child, th:first-child { text-align: left; }
    .scroll { overflow-x: auto; }
    figure { margin: 1.5em 0; } figcaption { color: #555; }
    figure svg { display: block; margin-bottom: 0.5em; }
    code { background: #f4f4f4; padding: 1px 4px; }
    dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
    dt { font-weight: bold; } dd { margin: 0; word-break: break-all; }
    </style></head><body>
    <h1>Sprig demo</h1>
    <p>A <code>cnn</code> supernet trained on classes \(xmlEscape(d.sourceSpec)) (\(xmlEscape(d.sourceNames.joined(separator: ", ")))), pruned by DAP to \(xmlEscape(d.budget)) of its
    parameters, compiled to int8, and adapted on the device runtime to classes \(xmlEscape(d.targetSpec)) (\(xmlEscape(d.targetNames.joined(separator: ", "))))
    from \(d.shots) images of each. Data: <code>\(xmlEscape(d.data))</code>. Written \(date).</p>
    <h2 id="results">Results</h2>
    <div class="scroll"><table><tr><th></th>
    """
    s += c.map { "<th>\(xmlEscape($0.name))</th>" }.joined() + "</tr>\n"
    for (label, cells) in demoRows(c, shots: d.shots, targets: targets) {
        s += "<tr><td>\(xmlEscape(label))</td>" + cells.map { "<td>\(xmlEscape($0))</td>" }.joined() + "</tr>\n"
    }
    s += "</table></div>\n<p>Accuracy ± 95% CI over \(d.episodes) seeded episodes, on all \(d.heldOutCount) test images of the new classes "
        + "(held out: the shots come from the training split). Latency: one image at a time through <code>SprigRuntime</code> on this host.</p>\n"
    s += "<h2>Stages</h2>\n<table><tr><th>stage</th><th>seconds</th></tr>\n"
    for (name, seconds) in d.stages { s += "<tr><td>\(name)</td><td>" + String(format: "%.1f", seconds) + "</td></tr>\n" }
    s += "</table>\n"
    // Confusion matrix.
    if !d.confusion.isEmpty {
        s += "<h2 id=\"confusion\">The new classes</h2>\n<p>The pruned net after <code>head</code> on episode 0's shots (the tuned blob "
            + "<code>tuned-q8.sprig</code>), on the held-out test images: rows are the true class, columns the predicted one.</p>\n"
        s += "<div class=\"scroll\"><table class=\"confusion\"><tr><th>true \\ predicted</th>"
            + d.targetNames.map { "<th>\(xmlEscape($0))</th>" }.joined() + "<th>images</th><th>accuracy</th></tr>\n"
        for (i, row) in d.confusion.enumerated() {
            let total = row.reduce(0, +)
            let top = max(total, 1)
            s += "<tr class=\"class-row\"><td>\(xmlEscape(d.targetNames[i]))</td>"
            for (j, n) in row.enumerated() {
                let shade = Double(n) / Double(top)
                let colour = i == j ? String(format: "rgba(0,114,178,%.2f)", shade) : String(format: "rgba(213,94,0,%.2f)", shade)
                s += "<td style=\"background:\(colour)\">\(n)</td>"
            }
            s += "<td>\(total)</td><td class=\"per-class\">" + String(format: "%.1f%%", total > 0 ? 100 * Double(row[i]) / Double(total) : 0) + "</td></tr>\n"
        }
        s += "</table></div>\n"
    }
    s += "<h2>Plots</h2>\n"
    for f in figures { s += "<figure id=\"\(f.id)\">\n\(f.svg)<figcaption>\(xmlEscape(f.caption))</figcaption></figure>\n" }
    // Reproducibility.
    let seeds = "--seed \(d.seed): supernet weights and batch order, DAP search and its source epoch; episode e draws its shots and "
        + "its training order from seed + e (e = 0…\(d.episodes - 1)); calibration images shuffled with seed 7"
    let items: [(String, String)] = [
        ("command", d.commandLine),
        ("release", "sprig \(sprigVersion)"),
        ("commit", BuildStamp.commit),
        ("build", "\(buildConfiguration), \(machine.architecture); kernels built for \(kernelInstructionSet) (Package.swift's SPRIG_ISA)"),
        ("blob format", "version \(BlobLayout.version)"),
        ("seeds", seeds),
        ("data", "\(d.data): source classes \(d.sourceSpec), target classes \(d.targetSpec) (docs/data.md)"),
        ("CPU", machine.cpuModel + (machine.cpuIdentity.isEmpty ? "" : " (\(machine.cpuIdentity))")),
        ("instruction set", machine.isa.isEmpty ? "unknown" : machine.isa.joined(separator: " ") + " (as /proc/cpuinfo reports the CPU; the build's own is on the build line)"),
        ("cores", "\(machine.cores); load average (1, 5, 15 min) \(d.loadStart ?? "unknown") at the start, \(d.loadEnd ?? "unknown") at the end"),
    ]
    s += "<h2 id=\"reproduce\">Reproduce</h2>\n<dl class=\"repro\">\n"
    for (k, v) in items { s += "<dt>\(xmlEscape(k))</dt><dd><code>\(xmlEscape(v))</code></dd>\n" }
    s += "</dl>\n"
    s += "<p>Files: <code>supernet.safetensors</code>, <code>pruned.safetensors</code>, <code>full-q8.sprig</code>, "
        + "<code>pruned-q8.sprig</code>, <code>tuned-q8.sprig</code>, <code>trace.json</code>, <code>summary.json</code>, "
        + "the device files <code>device-shots.idx</code>, <code>device-shots-labels.idx</code>, <code>device-test.idx</code>, "
        + "<code>device-test-labels.idx</code>, <code>device-classes.txt</code>, and every plot as SVG.</p>\n</body></html>\n"
    return s
}
