// The CLI on data that is not 28×28×1, and on descriptions that do not fit:
// every misfit is exit 1 with a message that names both shapes or the layer,
// never a crash, and nothing is written.

import Foundation
import SprigTrain
import XCTest

extension SprigCLITests {
    /// A directory of the four IDX files: `count` random images per class of 3 classes, H×W×C.
    func tinyDataDirectory(_ name: String, rows: Int, cols: Int, channels: Int, count: Int = 12) throws -> String {
        let dir = path(name)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var rng = SprigRNG(seed: 5)
        func split(_ n: Int) throws -> Dataset {
            let labels = (0..<(3 * n)).map { UInt8($0 % 3) }
            let images = (0..<(labels.count * rows * cols * channels)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            return try Dataset(images: images, labels: labels, rows: rows, cols: cols, channels: channels)
        }
        let names = DataSource.fileNames
        try split(count).write(imagesPath: "\(dir)/\(names.trainImages)", labelsPath: "\(dir)/\(names.trainLabels)")
        try split(count / 2).write(imagesPath: "\(dir)/\(names.testImages)", labelsPath: "\(dir)/\(names.testLabels)")
        return dir
    }

    func testAModelOfOneShapeRefusesDataOfAnother() throws {
        let small = try tinyDataDirectory("rgb8", rows: 8, cols: 8, channels: 3)
        let ckpt = path("rgb8.safetensors")
        let trained = try sprig(["train", "--model", "mlp", "--width", "0.05", "--data", small, "--classes", "0-2",
                                 "--epochs", "1", "--out", ckpt, "--json"])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        // The checkpoint's description carries the data's shape.
        let described = try sprig(["describe", ckpt, "--json"])
        XCTAssertEqual(described.status, 0, described.stderr)
        XCTAssertEqual(try json(described.stdout, "describe")["input"] as? [Int], [8, 8, 3])
        // Built-in Fashion-MNIST is 28×28×1: eval, prune and a q8 compile name both shapes.
        for command in [["eval", ckpt, "--classes", "0-2", "--data", "builtin"],
                        ["prune", ckpt, "--classes", "0-2", "--data", "builtin", "--out", path("never.safetensors")],
                        ["compile", ckpt, "--precision", "q8", "--calib-data", "builtin", "--out", path("never.sprig")]] {
            let r = try sprig(command)
            XCTAssertEqual(r.status, 1, "\(command[0]): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("8×8×3") && r.stderr.contains("28×28×1"), "\(command[0]): \(r.stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("never.safetensors")))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("never.sprig")))
        // The same data compiles and runs through the runtime.
        let blob = path("rgb8.sprig")
        let compiled = try sprig(["compile", ckpt, "--precision", "q8", "--calib-data", small, "--out", blob])
        XCTAssertEqual(compiled.status, 0, compiled.stderr)
        let run = try sprig(["run", blob, "--data", small, "--classes", "0-2", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let wrong = try sprig(["run", blob, "--data", "builtin", "--classes", "0-2"])
        XCTAssertEqual(wrong.status, 1, wrong.stderr)
    }

    func testAPresetThatDoesNotFitTheDataIsAnErrorNamingTheLayer() throws {
        // cnn pools three times: 4×4 → 2 → 1, and the third 2×2 pool has no room.
        let tiny = try tinyDataDirectory("gray4", rows: 4, cols: 4, channels: 1)
        let out = path("never.safetensors")
        let r = try sprig(["train", "--model", "cnn", "--data", tiny, "--classes", "0-2", "--epochs", "1", "--out", out])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("4×4×1") && r.stderr.contains("max_pool") && r.stderr.contains("larger than its input"),
                      r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testAnImpossibleDescriptionIsAnErrorNamingTheLayer() throws {
        let data = try tinyDataDirectory("gray8", rows: 8, cols: 8, channels: 1)
        let cases: [(json: String, expect: [String])] = [
            (#"{"layers": [{"conv": {"filters": 4, "kernel": 9, "padding": 0}}, "global_average_pool"]}"#,
             ["layers[0] (conv)", "kernel 9×9 is larger than its input 8×8"]),
            (#"{"layers": [{"conv": {"filters": 4}}, {"dense": {"units": 3}}]}"#,
             ["layers[1] (dense)", "needs a flat input"]),
            (#"{"layers": [{"conv": {"filters": 4}}, {"residual": {"body": [{"conv": {"filters": 6}}]}}, "flatten"]}"#,
             ["layers[1].residual.body[0] (conv)", "filters 6 must equal"]),
            (#"{"input": {"height": 28, "width": 28, "channels": 1}, "layers": ["flatten"]}"#,
             ["input is 28×28×1", "8×8×1"]),
            (#"{"layers": ["flatten", "swish"]}"#, ["unknown layer 'swish'"]),
        ]
        for (i, c) in cases.enumerated() {
            let spec = path("spec\(i).json")
            try Data(c.json.utf8).write(to: URL(fileURLWithPath: spec))
            let out = path("never\(i).safetensors")
            let r = try sprig(["train", "--model-spec", spec, "--data", data, "--classes", "0-2", "--epochs", "1", "--out", out])
            XCTAssertEqual(r.status, 1, "\(c.json): \(r.stderr)")
            for e in c.expect { XCTAssertTrue(r.stderr.contains(e), "\(c.json): expected '\(e)' in: \(r.stderr)") }
            XCTAssertTrue(r.stderr.contains(spec), "the message names the file: \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
        // A fitting description trains, and its checkpoint says so.
        let spec = path("good.json")
        try Data(#"{"layers": [{"conv": {"filters": 4, "stride": 2}}, "batch_norm", "relu6", {"depthwise": {}}, "global_average_pool"]}"#.utf8)
            .write(to: URL(fileURLWithPath: spec))
        let ckpt = path("custom.safetensors")
        let ok = try sprig(["train", "--model-spec", spec, "--data", data, "--classes", "0-2", "--epochs", "1", "--out", ckpt])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let described = try sprig(["describe", ckpt])
        XCTAssertTrue(described.stdout.contains("custom: input 8×8×1, 3 classes"), described.stdout)
        XCTAssertTrue(described.stdout.contains("4×4×4"), described.stdout)
    }
}
