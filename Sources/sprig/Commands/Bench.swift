// `sprig bench`: GEMM GFLOP/s and training throughput on this machine.

import Foundation
import SprigCompile
import SprigRuntime
import SprigTrain

let benchCommand = Command(
    name: "bench",
    summary: "Measure GEMM GFLOP/s (1 and 2 threads) and training images/s of mlp and cnn.",
    usage: "sprig bench [--quick] [--load] [--json]",
    positionals: 0...0,
    options: [
        OptionSpec(name: "quick", value: nil, help: "Fewer iterations (a rough figure in a few seconds)."),
        OptionSpec(name: "load", value: nil, help: "Instead: time the runtime's load (Model(bytes:)) of the worst blobs the format's caps allow, next to a plain blob of the same size (docs/reliability.md)."),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object."),
    ],
    details: "Build with -c release: debug builds are 10-100x slower. Training throughput is forward + backward + SGD step at batch 64 on random data.",
    run: runBench)

func runBench(_ a: ParsedArguments) throws {
    if a.flag("load") { return try runLoadBench(json: a.flag("json"), runs: a.flag("quick") ? 1 : 5) }
    let quick = a.flag("quick")
    let shapes: [(String, Int, Int, Int)] = [("256x256x256", 256, 256, 256), ("512x512x512", 512, 512, 512),
                                            ("1024x1024x1024", 1024, 1024, 1024), ("conv 12544x64x288", 12544, 64, 288)]
    var gemm: [String] = []
    var rows: [String] = []
    for (name, m, n, k) in shapes {
        let iterations = quick ? 2 : (m * n * k > 200_000_000 ? 5 : 20)
        let one = gemmBenchmark(m: m, n: n, k: k, threads: 1, iterations: iterations)
        let two = gemmBenchmark(m: m, n: n, k: k, threads: 2, iterations: iterations)
        gemm.append("{\"shape\":\(jsonQuote(name)),\"gflops_1_thread\":\(one),\"gflops_2_threads\":\(two)}")
        rows.append("  " + left(name, 20) + String(format: "%7.1f GFLOP/s (1 thread)  %7.1f GFLOP/s (2 threads)", one, two))
    }
    var training: [String] = []
    for family in ["mlp", "cnn"] {
        GEMM.defaultThreads = 2
        let arch = try Architecture(family: family, classes: 5, sourceClasses: [0, 1, 2, 3, 4])
        let network = try buildNetwork(arch, seed: 1)
        var rng = SprigRNG(seed: 2)
        let shape = [64] + arch.input.shape
        let x = Tensor(shape: shape, storage: (0..<shape.reduce(1, *)).map { _ in rng.normal() })
        let labels = (0..<64).map { _ in rng.int(below: 5) }
        let optimizer = SGD(learningRate: 0.01, momentum: 0.9)
        var store = ParameterList(network.parameters)
        let loss = SoftmaxCrossEntropy()
        let steps = quick ? 5 : (family == "cnn" ? 30 : 300)
        func step() {
            network.zeroGrad()
            _ = loss.forward(network.forward(x, training: true), labels: labels)
            _ = network.backward(loss.backward())
            optimizer.step(&store)
        }
        step()
        let start = Date()
        for _ in 0..<steps { step() }
        let perSecond = Double(steps * 64) / Date().timeIntervalSince(start)
        training.append("\"\(family)_images_per_second\":\(perSecond)")
        rows.append("  train " + left(family, 14) + String(format: "%9.0f images/s (batch 64, 2 threads)", perSecond))
    }
    if a.flag("json") {
        print("{\"cpu\":\(jsonQuote(cpuModel())),\"instruction_set\":\(jsonQuote(kernelInstructionSet)),"
            + "\"gemm\":[\(gemm.joined(separator: ","))],\(training.joined(separator: ","))}")
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
