// Named networks: checkpoint round trip and its errors, a short deterministic
// training run, divergence detection, and the compiled blob against the
// trainer's forward for each family.

import Foundation
import SprigCompile
import SprigRuntime
import SprigTestSupport
import SprigTrain
import XCTest

final class NetworkTests: XCTestCase {
    func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("sprig-\(ProcessInfo.processInfo.processIdentifier)-\(name)").path
    }

    /// A network with non-trivial BatchNorm statistics.
    func network(_ family: String, seed: UInt64) throws -> (Sequential, Architecture) {
        let a = try Architecture(family: family, classes: 5, width: 0.25, sourceClasses: [0, 1, 2, 3, 4])
        let n = try buildNetwork(a, seed: seed)
        var rng = SprigRNG(seed: seed + 100)
        for case let bn as BatchNorm2D in n.layers {
            for c in 0..<bn.channels {
                bn.runningMean.storage[c] = rng.nextFloat() - 0.5
                bn.runningVariance.storage[c] = 0.5 + rng.nextFloat()
                bn.weight.value.storage[c] = 0.5 + rng.nextFloat()
                bn.bias.value.storage[c] = rng.nextFloat() - 0.5
            }
        }
        return (n, a)
    }

    func testCheckpointRoundTripIsBitExact() throws {
        for family in Architecture.presets {
            let (n, a) = try network(family, seed: 3)
            let path = temporary("\(family).safetensors")
            defer { try? FileManager.default.removeItem(atPath: path) }
            try saveCheckpoint(n, architecture: a, to: path)
            let (m, b) = try loadCheckpoint(path: path)
            XCTAssertEqual(a, b)
            XCTAssertEqual(n.namedParameters.map { $0.name }, m.namedParameters.map { $0.name })
            for (p, q) in zip(n.namedParameters, m.namedParameters) {
                XCTAssertEqual(p.parameter.value.storage.map(\.bitPattern), q.parameter.value.storage.map(\.bitPattern), p.name)
            }
            var rng = SprigRNG(seed: 9)
            let x = Tensor(shape: [2, 28, 28, 1], storage: (0..<(2 * 784)).map { _ in rng.normal() })
            XCTAssertEqual(n.forward(x, training: false).storage, m.forward(x, training: false).storage, family)
        }
    }

    /// `Architecture.tensorElements` (counted without building, for the load-time bound)
    /// equals the values of the built network's every named tensor, for every family.
    func testTensorElementsCountsWhatTheBuiltNetworkHolds() throws {
        var cases: [Architecture] = []
        for family in Architecture.presets + Architecture.internalPresets {
            for width in [0.25, 1.0] {
                cases.append(try Architecture(family: family, classes: 7, width: width, sourceClasses: Array(0..<7)))
            }
        }
        // Six widths (the version-1 form of a pruned resnet): stage inner/output pairs, shortcuts everywhere.
        for widths in [[5, 3, 7, 9, 11, 13], [6, 4, 6, 9, 11, 13]] {
            cases.append(try Architecture(preset: "resnet", widths: widths, input: .fashionMNIST, classes: 5,
                                          sourceClasses: [0, 1, 2, 3, 4]))
        }
        for a in cases {
            let n = try buildNetwork(a, seed: 1)
            let held = namedTensors(n).reduce(0) { $0 + $1.get().count }
            XCTAssertEqual(a.tensorElements, held, "\(a.family) \(a.widths)")
        }
    }

    func testCheckpointErrorsNameTheFileAndTensor() throws {
        let (n, a) = try network("cnn", seed: 4)
        let path = temporary("broken.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try saveCheckpoint(n, architecture: a, to: path)
        var file = try SafetensorsFile.read(path: path)
        file.tensors.removeValue(forKey: "1.running_var")
        try file.write(path: path)
        XCTAssertThrowsError(try loadCheckpoint(path: path)) {
            XCTAssertTrue("\($0)".contains(path) && "\($0)".contains("1.running_var"), "\($0)")
        }
        file.tensors["1.running_var"] = try SafetensorsTensor(shape: [3], floats: [1, 2, 3])
        try file.write(path: path)
        XCTAssertThrowsError(try loadCheckpoint(path: path)) { XCTAssertTrue("\($0)".contains("shape"), "\($0)") }
        file.metadata = [:]
        try file.write(path: path)
        XCTAssertThrowsError(try loadCheckpoint(path: path)) { XCTAssertTrue("\($0)".contains("architecture"), "\($0)") }
    }

    /// A NaN or infinite weight is refused when loading (so `sprig compile` and `sprig eval`
    /// stop with the tensor named) and when saving (so a good file is never replaced by it).
    func testNonFiniteWeightsAreRefusedNamingTheTensor() throws {
        let (n, a) = try network("mlp", seed: 4)
        let path = temporary("nonfinite.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try saveCheckpoint(n, architecture: a, to: path)
        let good = try readFileBytes(atPath: path)
        for (bad, word) in [(Float.nan, "nan"), (Float.infinity, "inf"), (-Float.infinity, "-inf")] {
            var file = try SafetensorsFile.read(path: path)
            var (shape, values) = try file.floats("3.weight")
            values[7] = bad
            file.tensors["3.weight"] = try SafetensorsTensor(shape: shape, floats: values)
            let broken = path + ".broken"
            defer { try? FileManager.default.removeItem(atPath: broken) }
            try file.write(path: broken)
            XCTAssertThrowsError(try loadCheckpoint(path: broken)) {
                let m = "\($0)"
                XCTAssertTrue(m.contains(broken) && m.contains("'3.weight' element 7 is \(word)"), m)
            }
            let (m, _) = try loadCheckpoint(path: path)
            m.namedParameters.first { $0.name == "3.weight" }!.parameter.value.storage[7] = bad
            XCTAssertThrowsError(try saveCheckpoint(m, architecture: a, to: path)) {
                XCTAssertTrue("\($0)".contains("'3.weight' element 7"), "\($0)")
            }
            XCTAssertEqual(try readFileBytes(atPath: path), good, "the old checkpoint stays intact")
        }
    }

    func testShortTrainingBeatsChanceAndIsDeterministic() throws {
        let data = try DataSource.builtin.load()
        let train = try data.train.filtered(classes: [0, 1]).subset(Array(0..<256))
        let test = try data.test.filtered(classes: [0, 1])
        let previous = GEMM.defaultThreads
        GEMM.defaultThreads = 1
        defer { GEMM.defaultThreads = previous }
        var bytes: [[UInt8]] = []
        for _ in 0..<2 {
            let a = try Architecture(family: "mlp", classes: 2, width: 0.1, sourceClasses: [0, 1])
            let n = try buildNetwork(a, seed: 5)
            var options = TrainOptions()
            options.epochs = 2
            options.augmentShift = 0
            _ = try SprigTrain.train(n, on: train, options: options)
            XCTAssertGreaterThan(try evaluate(n, on: test).accuracy, 0.8)
            let path = temporary("det.safetensors")
            try saveCheckpoint(n, architecture: a, to: path)
            bytes.append(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
            try? FileManager.default.removeItem(atPath: path)
        }
        XCTAssertEqual(bytes[0], bytes[1], "the same seed must give a byte-identical checkpoint")
    }

    func testDivergenceStopsAndNamesTheStep() throws {
        let data = try DataSource.builtin.load().train.filtered(classes: [0, 1]).subset(Array(0..<128))
        let n = try buildNetwork(try Architecture(family: "mlp", classes: 2, width: 0.1, sourceClasses: [0, 1]), seed: 1)
        var options = TrainOptions()
        options.learningRate = 1e12
        options.warmupFraction = 0
        options.augmentShift = 0
        XCTAssertThrowsError(try train(n, on: data, options: options)) {
            guard case TrainError.diverged(let step, _) = $0 else { return XCTFail("\($0)") }
            XCTAssertGreaterThan(step, 0)
            XCTAssertTrue("\($0)".contains("step \(step)"))
        }
    }

    /// An update that breaks the weights on the very last step (no loss follows it) is caught too.
    func testDivergenceOnTheLastStepIsCaught() throws {
        let data = try DataSource.builtin.load().train.filtered(classes: [0, 1]).subset(Array(0..<32))
        let n = try buildNetwork(try Architecture(family: "mlp", classes: 2, width: 0.1, sourceClasses: [0, 1]), seed: 1)
        var options = TrainOptions()
        options.epochs = 1
        options.batchSize = 32  // one step: its loss is finite, the update is not
        options.learningRate = .infinity
        options.warmupFraction = 0
        options.augmentShift = 0
        XCTAssertThrowsError(try train(n, on: data, options: options)) {
            XCTAssertEqual($0 as? TrainError, .diverged(step: 0, epoch: 1))
        }
    }

    /// The compiled f32 blob computes the trainer's eval forward, for every family.
    func testCompiledBlobMatchesTheTrainer() throws {
        for family in Architecture.presets {
            let (n, a) = try network(family, seed: 6)
            let blob = try lowerNetwork(try loweringSteps(n), input: a.input, name: family).build()
            let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: blob.count, alignment: 16)
            defer { bytes.deallocate() }
            bytes.copyBytes(from: blob)
            let model = try Model(bytes: UnsafeRawBufferPointer(bytes))
            let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: model.arenaBytes, alignment: 16)
            defer { arena.deallocate() }
            let interpreter = try Interpreter(model: model, arena: arena)
            var rng = SprigRNG(seed: 2)
            for _ in 0..<3 {
                let pixels = (0..<784).map { _ in UInt8(rng.int(below: 256)) }
                try pixels.withUnsafeBytes { try interpreter.setInput(pixels: $0) }
                interpreter.invoke()
                let x = Tensor(shape: [1, 28, 28, 1], storage: pixels.map { (Float($0) / 255 - a.input.mean[0]) / a.input.std[0] })
                let want = n.forward(x, training: false).storage
                let got = (0..<interpreter.outputCount).map { interpreter.output($0) }
                let scale = max(1, want.map { abs($0) }.max() ?? 0)
                let diff = zip(got, want).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertLessThan(diff / scale, 1e-5, "\(family): max |diff| \(diff)")
            }
        }
    }
}

final class ResidualGradientTests: XCTestCase {
    /// dL/dx of a residual block (projection shortcut, eval-mode BN) against central differences
    /// of L = Σ y·r in Double, skipping points near the ReLU kink.
    func testInputGradientMatchesFiniteDifferences() {
        var rng = SprigRNG(seed: 12)
        let body = Sequential([
            Conv2D(inputChannels: 2, outputChannels: 3, kernelSize: 3, stride: 2, padding: 1, bias: true, rng: &rng),
            ReLU(),
            Conv2D(inputChannels: 3, outputChannels: 3, kernelSize: 3, padding: 1, bias: true, rng: &rng),
        ])
        let shortcut = Sequential([Conv2D(inputChannels: 2, outputChannels: 3, kernelSize: 1, stride: 2, bias: true, rng: &rng)])
        let block = Residual(body: body, shortcut: shortcut)
        let x = Tensor(shape: [1, 5, 5, 2], storage: (0..<50).map { _ in rng.normal() })
        let r = Tensor(shape: [1, 3, 3, 3], storage: (0..<27).map { _ in rng.normal() })
        let y = block.forward(x, training: false)
        let dx = block.backward(r)
        func loss(_ input: Tensor) -> Double {
            let out = block.forward(input, training: false)
            return zip(out.storage, r.storage).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        var checked = 0
        for i in 0..<x.count {
            let h: Float = 1e-2
            var a = x, b = x
            a.storage[i] += h
            b.storage[i] -= h
            // Skip inputs whose perturbation flips a ReLU (a kink), inside the body or after the add.
            let inner = body.layers[0]
            let ia = inner.forward(a, training: false), ib = inner.forward(b, training: false)
            if zip(ia.storage, ib.storage).contains(where: { ($0 > 0) != ($1 > 0) }) { continue }
            let ya = block.forward(a, training: false), yb = block.forward(b, training: false)
            if zip(ya.storage, yb.storage).contains(where: { ($0 > 0) != ($1 > 0) }) { continue }
            if zip(ya.storage, y.storage).contains(where: { ($0 > 0) != ($1 > 0) }) { continue }
            let numeric = (loss(a) - loss(b)) / Double(2 * h)
            XCTAssertEqual(Double(dx.storage[i]), numeric, accuracy: 2e-3 * max(1, abs(numeric)), "x[\(i)]")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 20)
    }
}

final class QuantizationAgreementTests: XCTestCase {
    /// A trained network on real images: the int8 blob's top-1 agrees with the f32 blob's on
    /// at least 99% of the test images, and its accuracy drops by at most one point.
    func testInt8AgreesWithFloat32OnRealImages() throws {
        let data = try DataSource.builtin.load()
        let train = try data.train.filtered(classes: [0, 1, 2, 3, 4]).subset(Array(0..<2000))
        let test = try data.test.filtered(classes: [0, 1, 2, 3, 4])
        let a = try Architecture(family: "mlp", classes: 5, width: 0.125, sourceClasses: [0, 1, 2, 3, 4])
        let network = try buildNetwork(a, seed: 3)
        var options = TrainOptions()
        options.epochs = 1
        options.augmentShift = 0
        _ = try SprigTrain.train(network, on: train, options: options)
        let builder = try lowerNetwork(try loweringSteps(network), input: a.input, name: "mlp")
        let f32 = try builder.build()
        let calibration = (0..<200).map { Array(train.image($0 * 7 % train.count)) }
        let q8 = try quantizeNetwork(builder, ranges: try calibrate(blob: f32, samples: calibration)).build()
        func predictions(_ blob: [UInt8]) throws -> [Int] {
            let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: blob.count, alignment: 16)
            defer { bytes.deallocate() }
            bytes.copyBytes(from: blob)
            let model = try Model(bytes: UnsafeRawBufferPointer(bytes))
            let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: model.arenaBytes, alignment: 16)
            defer { arena.deallocate() }
            let interpreter = try Interpreter(model: model, arena: arena)
            return try (0..<test.count).map { i in
                try Array(test.image(i)).withUnsafeBytes { try interpreter.setInput(pixels: $0) }
                interpreter.invoke()
                return interpreter.argmax()
            }
        }
        let p32 = try predictions(f32), p8 = try predictions(q8)
        let agree = Double(zip(p32, p8).filter { $0 == $1 }.count) / Double(test.count)
        let acc32 = Double(zip(p32, test.labels).filter { $0 == Int($1) }.count) / Double(test.count)
        let acc8 = Double(zip(p8, test.labels).filter { $0 == Int($1) }.count) / Double(test.count)
        XCTAssertGreaterThan(acc32, 0.8, "the network did not learn")
        XCTAssertGreaterThanOrEqual(agree, 0.99, "q8 agrees with f32 on \(agree) of the test images")
        XCTAssertLessThanOrEqual(acc32 - acc8, 0.01, "q8 accuracy \(acc8) vs f32 \(acc32)")
    }
}
