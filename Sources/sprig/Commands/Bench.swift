// `sprig bench`: GEMM GFLOP/s and training throughput on this machine.

import Foundation
import SprigTrain

let benchCommand = Command(
    name: "bench",
    summary: "Measure GEMM GFLOP/s (1 and 2 threads) and training images/s of mlp and cnn.",
    usage: "sprig bench [--quick] [--json]",
    positionals: 0...0,
    options: [
        OptionSpec(name: "quick", value: nil, help: "Fewer iterations (a rough figure in a few seconds)."),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object."),
    ],
    details: "Build with -c release: debug builds are 10-100x slower. Training throughput is forward + backward + SGD step at batch 64 on random data.",
    run: runBench)

func runBench(_ a: ParsedArguments) throws {
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
        let x = Tensor(shape: [64, 28, 28, 1], storage: (0..<(64 * 784)).map { _ in rng.normal() })
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
        print("{\"gemm\":[\(gemm.joined(separator: ","))],\(training.joined(separator: ","))}")
    } else {
        print(rows.joined(separator: "\n"))
    }
}
