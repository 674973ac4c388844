// The imported MobileNet-style model (Tests/Fixtures/onnx) goes through the rest of
// Sprig like any checkpoint: DAP and L1 prune it, it compiles to int8, and the device
// runtime fine-tunes it (`sprig finetune`, method head). And `sprig import`'s errors
// name the file and the node.

import Foundation
import SprigCompile
import SprigPrune
import SprigRuntime
import SprigTestSupport
import SprigTrain
import XCTest

final class ONNXImportPipelineTests: ScratchTestCase {
    func json(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
    }

    static let mobilenet = packageRoot.appendingPathComponent("Tests/Fixtures/onnx/mobilenet-bn-opset17.onnx").path

    /// Import (CLI) → DAP prune, a few steps (library) → int8 compile (CLI, calibrated on
    /// 32×32×3 images of `sprig make-rgb`) → few-shot head fine-tuning on the device runtime
    /// (CLI) on new classes; and an L1 prune through the CLI. (The fixture's weights are
    /// random, so the accuracy is near chance: this checks that every stage takes the import.)
    func testImportedMobileNetPrunesCompilesToInt8AndFineTunes() throws {
        let imported = path("mobilenet.safetensors"), data = path("rgb32")
        var r = try sprig(["import", Self.mobilenet, "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225",
                           "--names", "a,b,c,d", "--out", imported, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let summary = try json(r.stdout)
        XCTAssertEqual(summary["opset"] as? Int, 17)
        XCTAssertEqual(summary["classes"] as? Int, 4)
        XCTAssertEqual(summary["input"] as? [Int], [32, 32, 3])
        r = try sprig(["make-rgb", "--side", "32", "--per-class", "10", "--out", data])
        XCTAssertEqual(r.status, 0, r.stderr)

        // DAP, a short search through the library (source classes 0–3 of the same images).
        let (network, architecture) = try loadCheckpoint(path: imported)
        XCTAssertEqual(architecture.classNames, ["a", "b", "c", "d"])
        let source = try DataSource(argument: data).load().train.filtered(classes: [0, 1, 2, 3])
        var settings = PruneSettings(budget: try Budget(parsing: "50%"))
        settings.method = .dap
        settings.batchSize = 8
        settings.dap.steps = 4
        let dap = try pruneNetwork(network, architecture: architecture, source: source, settings: settings, finetuneEpochs: 0)
        XCTAssertLessThanOrEqual(dap.achieved, dap.target)
        XCTAssertLessThan(try dap.architecture.plan().parameters, try architecture.plan().parameters)
        let dapPath = path("dap.safetensors")
        try saveCheckpoint(dap.network, architecture: dap.architecture, to: dapPath)

        // L1 through the CLI.
        let l1Path = path("l1.safetensors")
        r = try sprig(["prune", imported, "--method", "l1", "--budget", "50%", "--data", data, "--classes", "0-3",
                       "--finetune-epochs", "0", "--out", l1Path, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let l1 = try json(r.stdout)
        XCTAssertLessThan(try XCTUnwrap(l1["params_after"] as? Int), try XCTUnwrap(l1["params_before"] as? Int))

        for (label, checkpoint) in [("dap", dapPath)] {
            let blob = path("\(label).sprig"), tuned = path("\(label)-tuned.sprig")
            r = try sprig(["compile", checkpoint, "--precision", "q8", "--calib-data", data, "--calib-count", "32", "--out", blob, "--json"])
            XCTAssertEqual(r.status, 0, "\(label): \(r.stderr)")
            XCTAssertEqual(try json(r.stdout)["precision"] as? String, "q8", label)
            r = try sprig(["finetune", blob, "--data", data, "--classes", "5-9", "--shots", "5", "--episodes", "1",
                           "--out", tuned, "--json"])
            XCTAssertEqual(r.status, 0, "\(label): \(r.stderr)")
            let report = try json(r.stdout)
            print("onnx mobilenet \(label): finetune \(r.stdout)")
            let accuracy = try XCTUnwrap(report["accuracy"] as? Double, r.stdout)
            XCTAssertTrue((0...1).contains(accuracy), r.stdout)
            XCTAssertTrue(FileManager.default.fileExists(atPath: tuned), label)
        }
    }

    /// The int8 blob of the unpruned import agrees with its f32 blob on the committed images:
    /// the same class for most, and logits within the quantisation's reach.
    func testImportedMobileNetInt8FollowsItsFloat32Blob() throws {
        let imported = try importONNX(Array(try Data(contentsOf: URL(fileURLWithPath: Self.mobilenet))),
                                      options: ONNXImportOptions(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]))
        let network = try buildImportedNetwork(imported)
        let images = try idxImages(packageRoot.appendingPathComponent("Tests/Fixtures/onnx/rgb32-input.idx").path, count: 8)
        var f32 = CompileOptions()
        f32.precision = .f32
        let reference = try runBlob(try compileNetwork(network, architecture: imported.architecture, calibration: nil, options: f32), images)
        var q8 = CompileOptions()
        q8.precision = .q8
        let calibration = try Dataset(images: images.flatMap { $0 }, labels: [UInt8](repeating: 0, count: images.count),
                                      rows: 32, cols: 32, channels: 3)
        let quantized = try runBlob(try compileNetwork(network, architecture: imported.architecture, calibration: calibration,
                                                       options: q8), images)
        let range = reference.flatMap { $0 }.map(abs).max()!
        let worst = zip(reference.flatMap { $0 }, quantized.flatMap { $0 }).map { abs($0 - $1) }.max()!
        print("onnx mobilenet int8 vs f32: largest logit difference \(worst), logit range \(range)")
        XCTAssertLessThan(worst, 0.15 * range)
    }

    /// `sprig export` of the committed reference blob, imported back and compiled to f32,
    /// computes what the blob computes (a second producer: Sprig's own exporter, opset 13,
    /// with Identity nodes and GlobalAveragePool → Flatten → Gemm).
    func testExportOfTheReferenceBlobImportsBackToTheSameFunction() throws {
        let reference = packageRoot.appendingPathComponent("Tests/Fixtures/ref-cnn-f32.sprig").path
        let blobBytes = Array(try Data(contentsOf: URL(fileURLWithPath: reference)))
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: blobBytes.count, alignment: 16)
        defer { storage.deallocate() }
        storage.copyBytes(from: blobBytes)
        let input = try XCTUnwrap(try Model(bytes: UnsafeRawBufferPointer(storage)).input(0))
        let onnx = path("ref.onnx"), checkpoint = path("ref.safetensors"), blob = path("ref.sprig")
        var r = try sprig(["export", reference, "--onnx", onnx])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try sprig(["import", onnx, "--mean", "\(input.mean)", "--std", "\(input.std)", "--out", checkpoint])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try sprig(["compile", checkpoint, "--precision", "f32", "--out", blob])
        XCTAssertEqual(r.status, 0, r.stderr)
        let images = try idxImages(packageRoot.appendingPathComponent("Tests/Fixtures/ref-input.idx").path, count: 16)
        let expected = try runBlob(blobBytes, images)
        let actual = try runBlob(Array(try Data(contentsOf: URL(fileURLWithPath: blob))), images)
        var worst: Float = 0
        for (a, e) in zip(actual.flatMap { $0 }, expected.flatMap { $0 }) where abs(e) > 1e-3 { worst = max(worst, abs(a - e) / abs(e)) }
        XCTAssertEqual(actual.map(argmax), expected.map(argmax))
        XCTAssertLessThan(worst, 1e-5)
    }

    // MARK: CLI errors

    func testUnsupportedOpAndBadFilesNameTheFileAndNode() throws {
        // An unsupported op, named with its node.
        var g = GraphBuilder()
        g.floats("w", [2, 1, 1, 1], [1, 2])
        g.node("Conv", ["x", "w"], "c")
        g.node("Sigmoid", ["c"], "s")
        g.node("GlobalAveragePool", ["s"], "gap")
        g.node("Flatten", ["gap"], "flat")
        g.floats("fc", [2, 2], [1, 0, 0, 1])
        g.node("Gemm", ["flat", "fc"], "y", int: ["transB": 1])
        let model = path("sigmoid.onnx")
        try Data(g.model(input: [1, 1, 4, 4], output: "y")).write(to: URL(fileURLWithPath: model))
        let out = path("out.safetensors")
        var r = try sprig(["import", model, "--out", out])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("sprig import: \(model): node 1 'Sigmoid_2' (Sigmoid): op 'Sigmoid' is not supported"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))

        // Not an ONNX file: a safetensors checkpoint.
        let checkpoint = path("ckpt.safetensors")
        try saveCheckpoint(try buildNetwork(try Architecture(family: "mlp", classes: 2, width: 0.01, sourceClasses: [0, 1]), seed: 1),
                           architecture: try Architecture(family: "mlp", classes: 2, width: 0.01, sourceClasses: [0, 1]), to: checkpoint)
        r = try sprig(["import", checkpoint, "--out", out])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("sprig import: \(checkpoint): "), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))

        // A truncated model names the file and the field.
        let whole = try Data(contentsOf: URL(fileURLWithPath: Self.mobilenet))
        let truncated = path("truncated.onnx")
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: truncated))
        r = try sprig(["import", truncated, "--out", out])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("sprig import: \(truncated): field 7: length"), r.stderr)

        // A missing file, and bad usage.
        r = try sprig(["import", path("nothing.onnx"), "--out", out])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("nothing.onnx"), r.stderr)
        r = try sprig(["import", Self.mobilenet, "--mean", "0.5,0.5", "--std", "1", "--out", out])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("--mean has 2 values and --std 1"), r.stderr)
        r = try sprig(["import", Self.mobilenet, "--mean", "0.5,0.5", "--std", "1,1", "--out", out])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("need 1 or 3 values each"), r.stderr)
        r = try sprig(["import", Self.mobilenet, "--names", "a,b", "--out", out])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("2 class names for the 4 outputs"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}
