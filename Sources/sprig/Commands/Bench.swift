// `sprig bench`: GEMM GFLOP/s and training throughput on this machine.

import Foundation
import SprigCompile
import SprigRuntime
import SprigTrain

let benchCommand = Command(
    name: "bench",
    summary: "Measure GEMM GFLOP/s (1 and 2 threads) and training images/s of mlp and cnn.",
    usage: "sprig bench [--quick] [--shapes LIST] [--gemm-threads LIST] [--models LIST] [--threads N] [--load] [--json]",
    positionals: 0...0,
    options: [
        OptionSpec(name: "quick", value: nil, help: "Fewer iterations (a rough figure in a few seconds)."),
        OptionSpec(name: "shapes", value: "LIST", help: "GEMM shapes, comma-separated MxNxK (C[M][N] = A[M][K]·B[K][N], row-major, no transposes), or none.", defaultValue: "256x256x256,512x512x512,1024x1024x1024,12544x64x288"),
        OptionSpec(name: "gemm-threads", value: "LIST", help: "Thread counts to time each GEMM shape at, comma-separated.", defaultValue: "1,2"),
        OptionSpec(name: "iterations", value: "N", help: "Timed GEMM calls per shape and thread count, after 50 ms of warm-up calls (default: 20, 5 above 2·10⁸ multiply-adds, 2 with --quick)."),
        OptionSpec(name: "models", value: "LIST", help: "Networks to time training of, comma-separated PRESET or PRESET@WIDTH (presets: " + Architecture.presets.joined(separator: ", ") + "; mlp@0.5 is \(InputSpec.fashionMNIST.shape.reduce(1, *))-256-128-N), or none.", defaultValue: "mlp,cnn"),
        OptionSpec(name: "threads", value: "N", help: "Threads for training (GEMM and the layers).", defaultValue: "2"),
        OptionSpec(name: "steps", value: "N", help: "Timed training steps per model, after one warm-up step (default: 300 for mlp, 30 for the others, 5 with --quick)."),
        OptionSpec(name: "batch", value: "N", help: "Training batch size.", defaultValue: "64"),
        OptionSpec(name: "classes", value: "N", help: "Outputs of the trained networks' heads.", defaultValue: "5"),
        OptionSpec(name: "load", value: nil, help: "Instead: time the runtime's load (Model(bytes:)) of the worst blobs the format's caps allow, next to a plain blob of the same size (docs/reliability.md)."),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object."),
    ],
    details: "Build with -c release: debug builds are 10-100x slower. Training throughput is forward + backward + "
        + "optimizer step on random data of the presets' default input (\(shapeText(InputSpec.fashionMNIST.shape))), with `sprig train`'s optimizer (SGD, learning rate 0.05, momentum 0.9, "
        + "weight decay 5e-4) and batch; no data loading or augmentation. The JSON's `training` entries carry each "
        + "network's description (`architecture`, the checkpoint form) and the per-step median; tools/bench-train "
        + "runs the same networks and GEMM shapes in PyTorch and OpenBLAS side by side.",
    run: runBench)

/// One GEMM shape of `sprig bench`: `C[m][n] = A[m][k]·B[k][n]`.
private struct BenchShape {
    var name: String
    var m: Int, n: Int, k: Int
}

/// `--shapes`: "MxNxK,…" or "none". The default list names the conv shape as before.
private func benchShapes(_ a: ParsedArguments) throws -> [BenchShape] {
    guard let text = a.string("shapes") else {
        return [BenchShape(name: "256x256x256", m: 256, n: 256, k: 256), BenchShape(name: "512x512x512", m: 512, n: 512, k: 512),
                BenchShape(name: "1024x1024x1024", m: 1024, n: 1024, k: 1024),
                BenchShape(name: "conv 12544x64x288", m: 12544, n: 64, k: 288)]
    }
    if text == "none" { return [] }
    return try text.split(separator: ",").map { item in
        let parts = item.split(separator: "x").map { Int($0) }
        guard parts.count == 3, let m = parts[0], let n = parts[1], let k = parts[2],
              (1...65536).contains(m), (1...65536).contains(n), (1...65536).contains(k), m * n + m * k + k * n <= 1 << 28 else {
            throw UsageError(description: "--shapes: '\(item)' is not MxNxK with each size in 1...65536 (and at most 2^28 values in all)")
        }
        return BenchShape(name: "\(m)x\(n)x\(k)", m: m, n: n, k: k)
    }
}

/// A comma-separated list of positive integers (`--gemm-threads`).
private func positiveList(_ a: ParsedArguments, _ name: String, default value: String, max: Int) throws -> [Int] {
    let text = a.string(name, default: value)
    return try text.split(separator: ",").map { item in
        guard let n = Int(item), (1...max).contains(n) else {
            throw UsageError(description: "--\(name): '\(item)' is not a whole number in 1...\(max)")
        }
        return n
    }
}

/// `--models`: "PRESET" or "PRESET@WIDTH", comma-separated, or "none".
private func benchModels(_ a: ParsedArguments) throws -> [(name: String, preset: String, width: Double)] {
    let text = a.string("models", default: "mlp,cnn")
    if text == "none" { return [] }
    return try text.split(separator: ",").map { item in
        let parts = item.split(separator: "@", maxSplits: 1).map(String.init)
        guard Architecture.presets.contains(parts[0]) else {
            throw UsageError(description: "--models: '\(parts[0])' is not a preset (" + Architecture.presets.joined(separator: ", ") + ")")
        }
        var width = 1.0
        if parts.count == 2 {
            guard let w = Double(parts[1]), w >= 0.01, w <= 16 else {
                throw UsageError(description: "--models: width '\(parts[1])' of \(parts[0]) is not a number in 0.01...16")
            }
            width = w
        }
        return (String(item), parts[0], width)
    }
}

private func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func runBench(_ a: ParsedArguments) throws {
    if a.flag("load") { return try runLoadBench(json: a.flag("json"), runs: a.flag("quick") ? 1 : 5) }
    let quick = a.flag("quick")
    let shapes = try benchShapes(a)
    let gemmThreads = try positiveList(a, "gemm-threads", default: "1,2", max: 64)
    let models = try benchModels(a)
    let trainThreads = try a.int("threads", default: 2, range: 1...64)
    let batch = try a.int("batch", default: TrainOptions().batchSize, range: 1...4096)
    let classes = try a.int("classes", default: 5, range: 2...Architecture.maxUnits)
    let json = a.flag("json")
    var gemm: [String] = []
    var rows: [String] = []
    for shape in shapes {
        let (m, n, k) = (shape.m, shape.n, shape.k)
        let iterations = try a.int("iterations", default: quick ? 2 : (m * n * k > 200_000_000 ? 5 : 20), range: 1...100_000)
        let flops = 2.0 * Double(m) * Double(n) * Double(k)
        var o = JSONObject()
        o.set("shape", shape.name)
        var runs: [String] = []
        var row = "  " + left(shape.name, 20)
        for threads in gemmThreads {
            if !json { printError("sprig bench: GEMM \(shape.name), \(threads) thread(s), \(iterations) calls") }
            let times = gemmBenchmarkSeconds(m: m, n: n, k: k, threads: threads, iterations: iterations)
            let best = flops / times.min()! * 1e-9
            o.set(threads == 1 ? "gflops_1_thread" : "gflops_\(threads)_threads", best)
            var r = JSONObject()
            r.set("threads", threads)
            r.set("iterations", iterations)
            r.set("seconds_median", median(times))
            r.set("seconds_min", times.min()!)
            r.set("gflops_median", flops / median(times) * 1e-9)
            r.set("gflops_best", best)
            runs.append(r.text)
            row += String(format: "%7.1f GFLOP/s (%d thread%@)  ", best, threads, threads == 1 ? "" : "s")
        }
        o.set("m", m)
        o.set("n", n)
        o.set("k", k)
        o.set("runs", raw: "[" + runs.joined(separator: ",") + "]")
        gemm.append(o.text)
        rows.append(row)
    }
    var legacy: [String] = []
    var training: [String] = []
    let options = TrainOptions()
    let savedThreads = GEMM.defaultThreads
    GEMM.defaultThreads = trainThreads
    defer { GEMM.defaultThreads = savedThreads }
    for model in models {
        let arch = try Architecture(family: model.preset, classes: classes, width: model.width, sourceClasses: Array(0..<classes))
        let network = try buildNetwork(arch, seed: 1)
        var rng = SprigRNG(seed: 2)
        let shape = [batch] + arch.input.shape
        let x = Tensor(shape: shape, storage: (0..<shape.reduce(1, *)).map { _ in rng.normal() })
        let labels = (0..<batch).map { _ in rng.int(below: classes) }
        let optimizer = SGD(learningRate: options.learningRate, momentum: options.momentum, weightDecay: options.weightDecay)
        var store = ParameterList(network.parameters)
        let loss = SoftmaxCrossEntropy()
        let steps = try a.int("steps", default: quick ? 5 : (model.preset == "mlp" ? 300 : 30), range: 1...1_000_000)
        if !json { printError("sprig bench: training \(model.name), \(steps) steps") }
        func step() {
            network.zeroGrad()
            _ = loss.forward(network.forward(x, training: true), labels: labels)
            _ = network.backward(loss.backward())
            optimizer.step(&store)
        }
        step()
        var times: [Double] = []
        let start = Date()
        for _ in 0..<steps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            step()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
        }
        let seconds = Date().timeIntervalSince(start)
        let perSecond = Double(steps * batch) / seconds
        // The keys of the default models' figures, as before `training` existed (first of each only).
        let legacyKey = "\(model.preset)_images_per_second"
        if model.name == model.preset && !legacy.contains(where: { $0.hasPrefix("\"\(legacyKey)\"") }) {
            legacy.append("\"\(legacyKey)\":\(jsonNumber(perSecond))")
        }
        var o = JSONObject()
        o.set("model", model.name)
        o.set("preset", model.preset)
        o.set("width", model.width)
        o.set("classes", classes)
        o.set("batch", batch)
        o.set("threads", trainThreads)
        o.set("steps", steps)
        o.set("seconds", seconds)
        o.set("step_seconds_median", median(times))
        o.set("step_seconds_min", times.min()!)
        o.set("images_per_second", perSecond)
        o.set("images_per_second_median_step", Double(batch) / median(times))
        o.set("parameters", network.parameters.reduce(0) { $0 + $1.value.count })
        o.set("optimizer", raw: "{\"kind\":\"sgd\",\"learning_rate\":\(jsonNumber(Double(options.learningRate)))"
            + ",\"momentum\":\(jsonNumber(Double(options.momentum))),\"weight_decay\":\(jsonNumber(Double(options.weightDecay)))}")
        o.set("architecture", raw: arch.json)
        training.append(o.text)
        rows.append("  train " + left(model.name, 14) + String(format: "%9.0f images/s (batch %d, %d thread%@)",
                                                              perSecond, batch, trainThreads, trainThreads == 1 ? "" : "s"))
    }
    if json {
        print("{\"cpu\":\(jsonQuote(cpuModel())),\"instruction_set\":\(jsonQuote(kernelInstructionSet)),"
            + "\"gemm\":[\(gemm.joined(separator: ","))]" + legacy.map { "," + $0 }.joined()
            + ",\"training\":[\(training.joined(separator: ","))]}")
    } else {
        print("\(cpuModel()); kernels built for \(kernelInstructionSet)")
        print(rows.joined(separator: "\n"))
    }
}

/// `sprig bench --load`: the median load time of each of `hostileBlobs()`, and what load said.
func runLoadBench(json: Bool, runs: Int) throws {
    var rows: [String] = [], items: [String] = []
    for blob in try hostileBlobs() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: blob.bytes.count, alignment: 16)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: blob.bytes)
        var times: [Double] = []
        var outcome = ""
        var scanned = 0
        for _ in 0..<runs {
            let start = Date()
            do {
                let m = try Model(bytes: UnsafeRawBufferPointer(buffer))
                scanned = m.loadScanBytes
                outcome = "loads (\(m.work.macs) MACs per invoke)"
            } catch {
                outcome = "refused: " + error.message
            }
            times.append(Date().timeIntervalSince(start))
        }
        let median = times.sorted()[times.count / 2]
        rows.append("  " + left(blob.name, 15) + right("\(blob.bytes.count)", 10) + " bytes "
            + String(format: "%9.4f s  ", median) + right("\(scanned)", 10) + " scanned  " + outcome)
        var o = JSONObject()
        o.set("name", blob.name)
        o.set("what", blob.what)
        o.set("blob_bytes", blob.bytes.count)
        o.set("load_seconds_median", median)
        o.set("scanned_bytes", scanned)
        o.set("outcome", outcome)
        items.append(o.text)
    }
    if json {
        print("{\"cpu\":\(jsonQuote(cpuModel())),\"load\":[\(items.joined(separator: ","))]}")
    } else {
        print("load of the worst blobs the caps allow (\(cpuModel()); median of \(runs)):")
        print("  " + left("blob", 15) + right("size", 10) + "       " + right("load", 9) + "   " + right("scanned", 10))
        print(rows.joined(separator: "\n"))
    }
}

/// The CPU's model name from /proc/cpuinfo ("unknown" elsewhere).
func cpuModel() -> String {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
          let colon = line.firstIndex(of: ":") else { return "unknown" }
    return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
}
