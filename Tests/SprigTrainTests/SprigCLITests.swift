// The host CLI, run as the built `sprig` executable:
//   - `sprig inspect --json` reports what the blob's bytes say, read here
//     independently of SprigRuntime (header fields, section counts, metadata,
//     a bitwise CRC-32 per docs/blob-format.md);
//   - `sprig compile --finetune-methods` plans the listed methods, so that
//     `sprig finetune --method last` runs inside the blob's own plan;
//   - `sprig prune --json` reports the costs of the checkpoint it wrote (counted here from
//     its widths), and refuses impossible budgets and bad options before writing anything;
//   - `sprig transfer` writes a table, JSON rows with one accuracy per episode and seed, DAP's
//     paired differences (recomputed here from those rows), and plots; it refuses bad --splits.

import Foundation
import SprigTrain
import XCTest

/// The package's root directory (this file is Tests/SprigTrainTests/SprigCLITests.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The built `sprig` beside the test bundle, else `.build/debug/sprig`; nil when neither exists.
func sprigExecutable(_ name: String = "sprig") -> URL? {
    let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    let candidates = [
        bundleDirectory.appendingPathComponent(name),
        Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent(name),
        packageRoot.appendingPathComponent(".build/debug/\(name)"),
    ]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
}

/// A blob's fields read straight from its bytes (docs/blob-format.md), without SprigRuntime.
struct RawBlob {
    let bytes: [UInt8]

    func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
    func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }

    var version: Int { u16(4) }
    var crc: Int { u32(8) }
    var fileBytes: Int { u32(12) }
    var arenaBytes: Int { u32(28) }
    var finetuneArenaBytes: Int { u32(32) }
    var finetuneMaxClasses: Int { u32(36) }
    var finetuneMaxShots: Int { u32(40) }
    var finetuneMaxLayers: Int { Int(bytes[46]) }

    /// (offset, bytes, count) of the section of `kind`, or nil.
    func section(_ kind: Int) -> (offset: Int, bytes: Int, count: Int)? {
        let table = u32(24)
        for s in 0..<u32(20) where u32(table + 16 * s) == kind {
            let entry = table + 16 * s
            return (u32(entry + 4), u32(entry + 8), u32(entry + 12))
        }
        return nil
    }

    var tensorCount: Int { section(1)?.count ?? 0 }
    var opCount: Int { section(2)?.count ?? 0 }

    /// The METADATA value of `key`, or nil.
    func metadata(_ key: String) -> String? {
        guard let strings = section(5), let records = section(6) else { return nil }
        func text(_ offset: Int, _ count: Int) -> String {
            String(decoding: bytes[(strings.offset + offset)..<(strings.offset + offset + count)], as: UTF8.self)
        }
        for r in 0..<records.count {
            let at = records.offset + 16 * r
            if text(u32(at), u32(at + 4)) == key { return text(u32(at + 8), u32(at + 12)) }
        }
        return nil
    }

    /// CRC-32/ISO-HDLC over the file with bytes 8…11 taken as zero, one bit at a time.
    var computedCRC: Int {
        var crc: UInt32 = 0xFFFF_FFFF
        for (i, byte) in bytes.enumerated() {
            crc ^= UInt32((8..<12).contains(i) ? 0 : byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return Int(crc ^ 0xFFFF_FFFF)
    }
}

final class SprigCLITests: ScratchTestCase {
    func json(_ text: String, _ context: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try XCTUnwrap(object as? [String: Any], "\(context): not a JSON object: \(text)")
    }

    // MARK: --version

    /// `sprig --version` and `sprig-edge --version` name the release in the VERSION file, a
    /// commit (40 hex digits, maybe "-dirty", or "unknown"), and the blob version that a
    /// committed fixture carries in its header bytes; extra arguments are bad usage.
    func testVersionNamesTheReleaseFileACommitAndTheFixturesBlobVersion() throws {
        let release = try String(contentsOf: packageRoot.appendingPathComponent("VERSION"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertNotNil(release.range(of: #"^[0-9]+\.[0-9]+\.[0-9]+$"#, options: .regularExpression), release)
        let fixture = RawBlob(bytes: [UInt8](try Data(contentsOf: packageRoot.appendingPathComponent("Tests/Fixtures/ref-cnn-q8.sprig"))))
        for tool in ["sprig", "sprig-edge"] {
            let r = try sprig(["--version"], tool: tool)
            XCTAssertEqual(r.status, 0, r.stderr)
            let lines = r.stdout.split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.first, "\(tool) \(release)")
            let commit = try XCTUnwrap(lines.first { $0.hasPrefix("commit: ") }, r.stdout).dropFirst(8)
            XCTAssertNotNil(commit.range(of: #"^([0-9a-f]{40}(-dirty)?|unknown)$"#, options: .regularExpression), String(commit))
            XCTAssertTrue(lines.contains("blob format: version \(fixture.version) (reads and writes)"), r.stdout)
            let help = try sprig(["--help"], tool: tool)
            XCTAssertTrue(help.stdout.contains("--version"), help.stdout)
            let extra = try sprig(["--version", "info"], tool: tool)
            XCTAssertEqual(extra.status, 2, extra.stderr)
        }
    }

    // MARK: sprig inspect --json

    func testInspectJSONAgreesWithTheBlobReadIndependently() throws {
        let fixture = packageRoot.appendingPathComponent("Tests/Fixtures/ref-cnn-q8.sprig").path
        let raw = RawBlob(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture))))
        let fileSize = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: fixture)[.size] as? Int)
        // The fixture itself is sound, by this file's own reading.
        XCTAssertEqual(raw.fileBytes, fileSize)
        XCTAssertEqual(raw.computedCRC, raw.crc)

        let run = try sprig(["inspect", fixture, "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let o = try json(run.stdout, "sprig inspect --json")
        let keys: Set = ["file", "name", "precision", "labels", "version", "crc32", "crc_ok", "blob_bytes", "arena_bytes",
                         "finetune_arena_bytes", "finetune_max_classes", "finetune_max_shots", "params", "ops", "tensors",
                         "macs", "element_ops"]
        XCTAssertEqual(Set(o.keys), keys)
        XCTAssertEqual(o["file"] as? String, fixture)
        XCTAssertEqual(o["blob_bytes"] as? Int, fileSize)
        XCTAssertEqual(o["crc32"] as? String, String(format: "%08x", raw.computedCRC))
        XCTAssertEqual(o["crc_ok"] as? Bool, true)
        XCTAssertEqual(o["version"] as? Int, raw.version)
        XCTAssertEqual(o["arena_bytes"] as? Int, raw.arenaBytes)
        XCTAssertEqual(o["finetune_arena_bytes"] as? Int, raw.finetuneArenaBytes)
        XCTAssertEqual(o["finetune_max_classes"] as? Int, raw.finetuneMaxClasses)
        XCTAssertEqual(o["finetune_max_shots"] as? Int, raw.finetuneMaxShots)
        XCTAssertEqual(o["name"] as? String, raw.metadata("name"))
        XCTAssertEqual(o["precision"] as? String, "q8")
        XCTAssertEqual(raw.metadata("precision"), "q8")
        XCTAssertEqual(o["labels"] as? String, raw.metadata("labels"))
        XCTAssertGreaterThan(o["params"] as? Int ?? 0, 0)
        // The reference CNN by hand: 3×3 convs 1→16 at 28×28, 16→32 at 14×14, 32→64 at 7×7, dense 64→10.
        XCTAssertEqual(o["macs"] as? Int, 28 * 28 * 16 * 9 + 14 * 14 * 32 * 9 * 16 + 7 * 7 * 64 * 9 * 32 + 64 * 10)

        let ops = try XCTUnwrap(o["ops"] as? [[String: Any]])
        XCTAssertEqual(ops.count, raw.opCount)
        XCTAssertEqual(ops.reduce(0) { $0 + ($1["macs"] as? Int ?? 0) }, o["macs"] as? Int)
        for (i, op) in ops.enumerated() {
            XCTAssertEqual(Set(op.keys), ["index", "op", "activation", "inputs", "output", "macs", "element_ops"], "op \(i)")
            XCTAssertEqual(op["index"] as? Int, i)
            // The op record: input_count at byte 2, the output's tensor index at byte 28 (docs/blob-format.md).
            let record = try XCTUnwrap(raw.section(2)).offset + 64 * i
            XCTAssertEqual(op["output"] as? Int, raw.u32(record + 28), "op \(i)")
            XCTAssertEqual((op["inputs"] as? [Any])?.count, Int(raw.bytes[record + 2]), "op \(i)")
        }
        XCTAssertEqual(ops.first?["op"] as? String, "Quantize")
        XCTAssertEqual(ops.last?["op"] as? String, "Dequantize")

        let tensors = try XCTUnwrap(o["tensors"] as? [[String: Any]])
        XCTAssertEqual(tensors.count, raw.tensorCount)
        let base = try XCTUnwrap(raw.section(1)).offset
        for (t, tensor) in tensors.enumerated() {
            let record = base + 64 * t
            XCTAssertEqual(tensor["storage"] as? String, raw.bytes[record + 2] == 0 ? "arena" : "constant", "tensor \(t)")
            XCTAssertEqual(tensor["offset"] as? Int, raw.u32(record + 20), "tensor \(t)")
            XCTAssertEqual(tensor["bytes"] as? Int, raw.u32(record + 24), "tensor \(t)")
            let shape = (0..<Int(raw.bytes[record + 1])).map { raw.u32(record + 4 + 4 * $0) }
            XCTAssertEqual(tensor["shape"] as? [Int], shape, "tensor \(t)")
            if raw.u32(record + 28) > 0 {
                XCTAssertEqual((tensor["scales"] as? [Any])?.count, raw.u32(record + 28), "tensor \(t)")
                XCTAssertEqual((tensor["zero_points"] as? [Any])?.count, raw.u32(record + 28), "tensor \(t)")
            }
        }
    }

    // MARK: sprig compile --finetune-methods

    func testCompilePlansTheListedMethodsSoFinetuneLastRunsInTheBlobsPlan() throws {
        // A small mlp checkpoint: its backbone has exactly two layers (fc1, fc2) before the classifier.
        let architecture = try Architecture(family: "mlp", classes: 5, width: 0.25, sourceClasses: [0, 1, 2, 3, 4])
        try saveCheckpoint(try buildNetwork(architecture, seed: 9), architecture: architecture, to: path("mlp.safetensors"))
        func compile(_ name: String, _ extra: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            try sprig(["compile", path("mlp.safetensors"), "--precision", "f32", "--out", path(name), "--json"] + extra)
        }
        func blob(_ name: String) throws -> RawBlob { RawBlob(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name))))) }

        let planned = try compile("last2.sprig", ["--finetune-methods", "head,last:2"])
        XCTAssertEqual(planned.status, 0, planned.stderr)
        XCTAssertEqual(try json(planned.stdout, "compile")["finetune_methods"] as? String, "head,last:2")
        let last2 = try blob("last2.sprig")
        XCTAssertEqual(last2.bytes[44], 1, "plan record version")
        XCTAssertEqual(last2.finetuneMaxLayers, 2)
        XCTAssertEqual(last2.finetuneMaxClasses, 10)
        XCTAssertEqual(last2.finetuneMaxShots, 20)

        // `last 2` runs in the blob's plan: no --replan, and the arena is the blob's (a replanned one would be
        // sized for these 5 classes × 2 shots instead).
        let arguments = ["--method", "last", "--layers", "2", "--episodes", "1", "--shots", "2", "--epochs", "2", "--json"]
        let tuned = try sprig(["finetune", path("last2.sprig")] + arguments)
        XCTAssertEqual(tuned.status, 0, tuned.stderr)
        let report = try json(tuned.stdout, "finetune")
        XCTAssertEqual(report["arena_bytes"] as? Int, last2.finetuneArenaBytes)
        XCTAssertEqual(report["layers"] as? Int, 2)
        XCTAssertLessThanOrEqual(report["arena_used"] as? Int ?? .max, last2.finetuneArenaBytes)

        // The default plan is head's: the same request is refused there, naming the plan's layers.
        let headOnly = try compile("head.sprig", [])
        XCTAssertEqual(headOnly.status, 0, headOnly.stderr)
        XCTAssertEqual(try json(headOnly.stdout, "compile")["finetune_methods"] as? String, "head")
        XCTAssertEqual(try blob("head.sprig").finetuneMaxLayers, 0)
        let refused = try sprig(["finetune", path("head.sprig")] + arguments)
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("finetune_max_layers"), refused.stderr)
        XCTAssertLessThan(try blob("head.sprig").finetuneArenaBytes, last2.finetuneArenaBytes)

        // bias is planned too: its plan covers head's.
        let bias = try compile("bias.sprig", ["--finetune-methods", "bias"])
        XCTAssertEqual(bias.status, 0, bias.stderr)
        XCTAssertEqual(try json(bias.stdout, "compile")["finetune_methods"] as? String, "head,bias")
        XCTAssertGreaterThanOrEqual(try blob("bias.sprig").finetuneArenaBytes, try blob("head.sprig").finetuneArenaBytes)

        // q8 with last:L: a mixed blob whose last L layers and classifier stay Float32, which `last` trains.
        let mixed = try sprig(["compile", path("mlp.safetensors"), "--precision", "q8", "--finetune-methods", "head,last:1",
                               "--calib-data", "builtin", "--out", path("mixed.sprig"), "--json"])
        XCTAssertEqual(mixed.status, 0, mixed.stderr)
        XCTAssertEqual(try json(mixed.stdout, "compile")["precision"] as? String, "mixed")
        XCTAssertEqual(try json(mixed.stdout, "compile")["finetune_methods"] as? String, "head,last:1")
        // --bias-correction on the mixed blob (its Float32 tail has no int8 output to correct).
        let corrected = try sprig(["compile", path("mlp.safetensors"), "--precision", "q8", "--finetune-methods", "head,last:1",
                                   "--bias-correction", "--calib-data", "builtin", "--out", path("corrected.sprig")])
        XCTAssertEqual(corrected.status, 0, corrected.stderr)
        XCTAssertTrue(corrected.stderr.contains("compile: biases corrected in "), corrected.stderr)
        XCTAssertEqual(try blob("corrected.sprig").bytes.count, try blob("mixed.sprig").bytes.count)
        let mixedTuned = try sprig(["finetune", path("mixed.sprig"), "--data", "builtin", "--method", "last", "--layers", "1",
                               "--episodes", "1", "--epochs", "2", "--out", path("mixed-tuned.sprig"), "--json"])
        XCTAssertEqual(mixedTuned.status, 0, mixedTuned.stderr)
        XCTAssertEqual(try json(mixedTuned.stdout, "finetune")["method"] as? String, "last")
        let tunedInfo = try sprig(["inspect", path("mixed-tuned.sprig"), "--json"])
        XCTAssertEqual(tunedInfo.status, 0, tunedInfo.stderr)
        XCTAssertEqual(try json(tunedInfo.stdout, "inspect")["precision"] as? String, "mixed")
        // --finetune-optimizer sgd: a plan without Adam's second moment, which both CLIs then train with SGD.
        // (5 classes × 5 shots, so that last's regions, not head's cached features, size the plan.)
        func smallPlan(_ optimizer: String, _ name: String) throws -> (status: Int32, stdout: String, stderr: String) {
            try sprig(["compile", path("mlp.safetensors"), "--precision", "q8", "--finetune-methods", "head,last:1",
                       "--max-classes", "5", "--max-shots", "5", "--finetune-optimizer", optimizer, "--calib-data", "builtin",
                       "--out", path(name), "--json"])
        }
        let sgd = try smallPlan("sgd", "sgd.sprig"), adam = try smallPlan("adam", "adam.sprig")
        XCTAssertEqual(sgd.status, 0, sgd.stderr)
        XCTAssertEqual(adam.status, 0, adam.stderr)
        XCTAssertEqual(try json(sgd.stdout, "compile")["finetune_optimizer"] as? String, "sgd")
        XCTAssertEqual(try json(adam.stdout, "compile")["finetune_optimizer"] as? String, "adam")
        XCTAssertLessThan(try blob("sgd.sprig").finetuneArenaBytes, try blob("adam.sprig").finetuneArenaBytes)
        let lastArguments = ["--data", "builtin", "--method", "last", "--episodes", "1", "--epochs", "2", "--json"]
        let sgdTuned = try sprig(["finetune", path("sgd.sprig")] + lastArguments)
        XCTAssertEqual(sgdTuned.status, 0, sgdTuned.stderr)
        XCTAssertEqual(try json(sgdTuned.stdout, "finetune")["optimizer"] as? String, "sgd")
        XCTAssertEqual(try json(sgdTuned.stdout, "finetune")["backbone_lr"] as? Double, 0.5)
        XCTAssertEqual(try json(try sprig(["finetune", path("adam.sprig")] + lastArguments).stdout, "finetune")["optimizer"]
                       as? String, "adam")
        let adamInSGDPlan = try sprig(["finetune", path("sgd.sprig"), "--optimizer", "adam"] + lastArguments)
        XCTAssertEqual(adamInSGDPlan.status, 1, adamInSGDPlan.stderr)
        XCTAssertTrue(adamInSGDPlan.stderr.contains("\(try blob("sgd.sprig").finetuneArenaBytes)"), adamInSGDPlan.stderr)
        let fixtures = packageRoot.appendingPathComponent("Tests/Fixtures").path
        let edge = try sprig(["finetune", path("sgd.sprig"), fixtures + "/shots-input.idx", fixtures + "/shots-labels.idx",
                              "--method", "last", "--epochs", "2", "--out", path("sgd-tuned.sprig"), "--json"], tool: "sprig-edge")
        XCTAssertEqual(edge.status, 0, edge.stderr)
        XCTAssertEqual(try json(edge.stdout, "sprig-edge finetune")["optimizer"] as? String, "sgd")
        let badOptimizer = try sprig(["compile", path("mlp.safetensors"), "--precision", "f32", "--finetune-optimizer", "rmsprop",
                                      "--out", path("bad-optimizer.sprig")])
        XCTAssertEqual(badOptimizer.status, 2, badOptimizer.stderr)
        XCTAssertTrue(badOptimizer.stderr.contains("--finetune-optimizer"), badOptimizer.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("bad-optimizer.sprig")))
        // Usage errors exit 2 and write nothing: bias for q8, an unknown method, last without L, L out of range.
        let q8 = try sprig(["compile", path("mlp.safetensors"), "--precision", "q8", "--finetune-methods", "head,bias",
                            "--out", path("q8.sprig")])
        XCTAssertEqual(q8.status, 2, q8.stderr)
        XCTAssertTrue(q8.stderr.contains("bias trains every backbone bias in Float32, so it needs --precision f32"), q8.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("q8.sprig")))
        for bad in ["head,tail", "last", "last:0", "last:256", "bias,"] {
            let run = try compile("bad.sprig", ["--finetune-methods", bad])
            XCTAssertEqual(run.status, 2, "\(bad): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains("--finetune-methods"), "\(bad): \(run.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("bad.sprig")), bad)
        }
        let f32Corrected = try compile("f32c.sprig", ["--bias-correction"])
        XCTAssertEqual(f32Corrected.status, 2, f32Corrected.stderr)
        XCTAssertTrue(f32Corrected.stderr.contains("--bias-correction corrects the int8 layers' biases, so it needs --precision q8"), f32Corrected.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("f32c.sprig")))
        let f32Classifier = try compile("f32fc.sprig", ["--float-classifier"])
        XCTAssertEqual(f32Classifier.status, 2, f32Classifier.stderr)
        XCTAssertTrue(f32Classifier.stderr.contains("--float-classifier keeps the classifier of an int8 blob in Float32, so it needs --precision q8"),
                      f32Classifier.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("f32fc.sprig")))
        // --fit-ranges chooses the fractions that --percentile would fix.
        let both = try sprig(["compile", path("mlp.safetensors"), "--precision", "q8", "--fit-ranges", "--percentile", "0.999",
                              "--out", path("both.sprig")])
        XCTAssertEqual(both.status, 2, both.stderr)
        XCTAssertTrue(both.stderr.contains("--fit-ranges"), both.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("both.sprig")))
    }

    func testCompilePlansReinitSoFinetuneReinitRunsInTheBlobsPlanAndQ8RefusesIt() throws {
        // The mlp's backbone has two layers (fc1, fc2): reinit's plan must hold both.
        let architecture = try Architecture(family: "mlp", classes: 5, width: 0.25, sourceClasses: [0, 1, 2, 3, 4])
        try saveCheckpoint(try buildNetwork(architecture, seed: 9), architecture: architecture, to: path("mlp.safetensors"))
        func blob(_ name: String) throws -> RawBlob { RawBlob(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name))))) }
        let planned = try sprig(["compile", path("mlp.safetensors"), "--precision", "f32", "--finetune-methods", "head,reinit",
                                 "--max-classes", "5", "--max-shots", "2", "--out", path("reinit.sprig"), "--json"])
        XCTAssertEqual(planned.status, 0, planned.stderr)
        XCTAssertEqual(try json(planned.stdout, "compile")["finetune_methods"] as? String, "head,reinit")
        let reinit = try blob("reinit.sprig")
        XCTAssertEqual(reinit.finetuneMaxLayers, 2, "every layer of the backbone")

        // reinit runs in the blob's plan (no --replan).
        let arguments = ["--method", "reinit", "--episodes", "1", "--shots", "2", "--epochs", "2", "--json"]
        let tuned = try sprig(["finetune", path("reinit.sprig"), "--data", "builtin"] + arguments)
        XCTAssertEqual(tuned.status, 0, tuned.stderr)
        let report = try json(tuned.stdout, "finetune")
        XCTAssertEqual(report["method"] as? String, "reinit")
        XCTAssertEqual(report["arena_bytes"] as? Int, reinit.finetuneArenaBytes)
        XCTAssertLessThanOrEqual(report["arena_used"] as? Int ?? .max, reinit.finetuneArenaBytes)

        // A head-only plan refuses it, naming reinit and the plan's layers.
        let head = try sprig(["compile", path("mlp.safetensors"), "--precision", "f32", "--max-classes", "5", "--max-shots", "2",
                              "--out", path("head.sprig")])
        XCTAssertEqual(head.status, 0, head.stderr)
        let refused = try sprig(["finetune", path("head.sprig"), "--data", "builtin"] + arguments)
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("reinit trains all 2 layers of the backbone, the plan holds 0"), refused.stderr)

        // q8 cannot plan reinit: a usage error (exit 2) that writes nothing.
        let q8 = try sprig(["compile", path("mlp.safetensors"), "--precision", "q8", "--finetune-methods", "head,reinit",
                            "--out", path("q8.sprig")])
        XCTAssertEqual(q8.status, 2, q8.stderr)
        XCTAssertTrue(q8.stderr.contains("reinit re-initialises and trains every backbone layer in Float32, so it needs --precision f32"),
                      q8.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("q8.sprig")))
    }

    // MARK: sprig prune and sprig transfer

    /// A small mlp supernet on the built-in data (a second in a debug build).
    func tinySupernet() throws -> String {
        let checkpoint = path("mlp.safetensors")
        let r = try sprig(["train", "--model", "mlp", "--width", "0.05", "--epochs", "1", "--out", checkpoint, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return checkpoint
    }

    func testPruneJSONReportsTheCostsOfThePrunedCheckpoint() throws {
        let supernet = try tinySupernet()
        for method in ["l1", "random", "uniform", "dap"] {
            let out = path("\(method).safetensors")
            let r = try sprig(["prune", supernet, "--method", method, "--budget", "30%", "--steps", "5", "--finetune-epochs", "0",
                               "--out", out, "--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let o = try json(r.stdout, method)
            for key in ["params_before", "params_after", "macs_before", "macs_after", "arena_bytes_after", "kept", "widths"] {
                XCTAssertNotNil(o[key], "\(method): no \(key)")
            }
            // The saved checkpoint has the widths and parameter count the JSON reports, counted here:
            // mlp 784 → w0 → w1 → 5 with biases.
            let (network, architecture) = try loadCheckpoint(path: out)
            let widths = try XCTUnwrap(o["widths"] as? [Int])
            XCTAssertEqual(architecture.widths, widths, method)
            let counted = 784 * widths[0] + widths[0] + widths[0] * widths[1] + widths[1] + widths[1] * 5 + 5
            XCTAssertEqual(parameterCount(network), counted, method)
            XCTAssertEqual(o["params_after"] as? Int, counted, method)
            XCTAssertEqual(o["params_before"] as? Int, 784 * 26 + 26 + 26 * 13 + 13 + 13 * 5 + 5, method)
            XCTAssertLessThanOrEqual(Double(counted), 0.3 * Double(o["params_before"] as! Int), method)
            let kept = try XCTUnwrap(o["kept"] as? [String: Int])
            XCTAssertEqual(kept, ["fc1": widths[0], "fc2": widths[1]], method)
        }
    }

    func testPruneWidthMultipleRoundsTheKeptWidthsAndIsReported() throws {
        let supernet = try tinySupernet()  // mlp 784 → 26 → 13 → 5
        let out = path("w4.safetensors")
        let r = try sprig(["prune", supernet, "--method", "l1", "--budget", "30%", "--width-multiple", "4", "--finetune-epochs", "0",
                           "--out", out, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let o = try json(r.stdout, "w4")
        XCTAssertEqual(o["width_multiple"] as? Int, 4)
        let widths = try XCTUnwrap(o["widths"] as? [Int])
        XCTAssertTrue(widths[0] % 4 == 0 || widths[0] == 26, "\(widths)")
        XCTAssertTrue(widths[1] % 4 == 0 || widths[1] == 13, "\(widths)")
        XCTAssertEqual(try loadCheckpoint(path: out).1.widths, widths)
        // The default is 1: the JSON says so, and the same prune with an explicit 1 keeps the same widths.
        let byDefault = try sprig(["prune", supernet, "--method", "l1", "--budget", "30%", "--finetune-epochs", "0",
                                   "--out", path("w1.safetensors"), "--json"])
        let explicit = try sprig(["prune", supernet, "--method", "l1", "--budget", "30%", "--finetune-epochs", "0",
                                  "--width-multiple", "1", "--out", path("w1b.safetensors"), "--json"])
        XCTAssertEqual(byDefault.status, 0, byDefault.stderr)
        XCTAssertEqual(explicit.status, 0, explicit.stderr)
        let o1 = try json(byDefault.stdout, "w1")
        XCTAssertEqual(o1["width_multiple"] as? Int, 1)
        XCTAssertEqual(o1["widths"] as? [Int], try json(explicit.stdout, "w1b")["widths"] as? [Int])
        for bad in ["0", "-4", "2.5", "four"] {
            let b = try sprig(["prune", supernet, "--method", "l1", "--width-multiple", bad, "--out", path("bad.safetensors")])
            XCTAssertEqual(b.status, 2, "\(bad): \(b.stderr)")
            XCTAssertTrue(b.stderr.contains("--width-multiple") && b.stderr.contains("'\(bad)'"), "\(bad): \(b.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("bad.safetensors")), bad)
        }
    }

    /// The search variants aimed at transfer: they run, are reported, and bad values are usage
    /// errors (exit 2) naming the option and the value; a count the classes cannot afford is the
    /// library's error (exit 1), before any training.
    func testPrunePseudoTargetAndFeatureFloorOptions() throws {
        let supernet = try tinySupernet()  // mlp, 5 source classes
        let out = path("pt.safetensors")
        let r = try sprig(["prune", supernet, "--budget", "30%", "--steps", "5", "--finetune-epochs", "0", "--pseudo-target", "2",
                           "--pseudo-target-weight", "0.5", "--feature-floor", "0.6", "--out", out, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let o = try json(r.stdout, "pt")
        XCTAssertEqual(o["pseudo_target"] as? Int, 2)
        XCTAssertEqual(o["pseudo_target_weight"] as? Double, 0.5)
        XCTAssertEqual(o["feature_floor"] as? Double, 0.6)
        for (option, bad) in [("--pseudo-target", "1"), ("--pseudo-target", "-2"), ("--pseudo-target", "two"),
                              ("--pseudo-target-weight", "-1"), ("--pseudo-target-weight", "x"),
                              ("--feature-floor", "1.5"), ("--feature-floor", "-0.1"), ("--feature-floor", "wide"),
                              ("--first-seed", "0")] {
            let t = try sprig(["transfer", "--supernet", supernet, "--data", "builtin", option, bad, "--out-dir", path("bad-transfer")])
            XCTAssertEqual(t.status, 2, "transfer \(option) \(bad): \(t.stderr)")
            XCTAssertTrue(t.stderr.contains(option) && t.stderr.contains("'\(bad)'"), "transfer \(option) \(bad): \(t.stderr)")
            guard option != "--first-seed" else { continue }  // transfer's only
            let b = try sprig(["prune", supernet, option, bad, "--out", path("bad.safetensors")])
            XCTAssertEqual(b.status, 2, "\(option) \(bad): \(b.stderr)")
            XCTAssertTrue(b.stderr.contains(option) && b.stderr.contains("'\(bad)'"), "\(option) \(bad): \(b.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("bad.safetensors")), "\(option) \(bad)")
        }
        let tooMany = try sprig(["prune", supernet, "--pseudo-target", "4", "--out", path("bad.safetensors")])
        XCTAssertEqual(tooMany.status, 1, tooMany.stderr)
        XCTAssertTrue(tooMany.stderr.contains("pseudo-target: 4 held-out classes of 5"), tooMany.stderr)
        let help = try sprig(["prune", "--help"])
        for option in ["--pseudo-target N", "--pseudo-target-weight X", "--feature-floor F"] {
            XCTAssertTrue(help.stdout.contains(option), option)
        }
    }

    func testPruneRefusesAnImpossibleBudgetAndBadOptions() throws {
        let supernet = try tinySupernet()
        let out = path("never.safetensors")
        let impossible = try sprig(["prune", supernet, "--budget", "params:100", "--out", out])
        XCTAssertEqual(impossible.status, 1)
        XCTAssertTrue(impossible.stderr.contains("smallest valid network"), impossible.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        for bad in [["--budget", "0%"], ["--budget", "flops:3"], ["--method", "magic"], ["--t1", "1"], ["--mode", "both"]] {
            let r = try sprig(["prune", supernet, "--out", out] + bad)
            XCTAssertEqual(r.status, 2, "\(bad): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(bad)")
        }
        let missing = try sprig(["prune", path("nothing.safetensors"), "--out", out])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("nothing.safetensors"), missing.stderr)
    }

    /// `--first-seed 2 --seeds 1` is the second search of `--seeds 2`: the same widths and, over the
    /// same episodes, the same accuracies (the second half of the two-seed run's values).
    func testTransferFirstSeedAddsSeedsWithoutRepeatingThem() throws {
        let supernet = try tinySupernet()
        let common = ["transfer", "--supernet", supernet, "--data", "builtin", "--budgets", "30%", "--methods", "dap", "--steps", "3",
                      "--shots", "2", "--episodes", "2", "--reinit-episodes", "0", "--threads", "1", "--json"]
        let both = try sprig(common + ["--seeds", "2", "--out-dir", path("seeds12")])
        let second = try sprig(common + ["--seeds", "1", "--first-seed", "2", "--out-dir", path("seed2")])
        XCTAssertEqual(both.status, 0, both.stderr)
        XCTAssertEqual(second.status, 0, second.stderr)
        func results(_ dir: String) throws -> [String: Any] {
            try json(try String(contentsOfFile: path(dir) + "/transfer.json", encoding: .utf8), dir)
        }
        let r12 = try results("seeds12"), r2 = try results("seed2")
        func dap(_ r: [String: Any]) throws -> (seeds: [Int], widths: [[Int]], accuracies: [Double]) {
            let nets = try XCTUnwrap(r["nets"] as? [[String: Any]]).filter { $0["method"] as? String == "dap" }
            let row = try XCTUnwrap((r["rows"] as? [[String: Any]])?.first { $0["method"] as? String == "dap" })
            return (nets.compactMap { $0["seed"] as? Int }, nets.compactMap { $0["widths"] as? [Int] },
                    try XCTUnwrap(row["accuracies"] as? [Double]))
        }
        let a = try dap(r12), b = try dap(r2)
        XCTAssertEqual(a.seeds, [1, 2])
        XCTAssertEqual(b.seeds, [2])
        XCTAssertEqual(b.widths, [a.widths[1]])
        XCTAssertEqual(b.accuracies, Array(a.accuracies[2...]))
    }

    func testTransferWritesItsTableJSONAndPlots() throws {
        let supernet = try tinySupernet()
        let outDir = path("results")
        let r = try sprig(["transfer", "--supernet", supernet, "--data", "builtin", "--budgets", "30%,60%", "--methods", "dap,l1",
                           "--steps", "3", "--shots", "1,2", "--episodes", "2", "--seeds", "1", "--reinit-shots", "1",
                           "--reinit-episodes", "1", "--reinit-steps", "2", "--out-dir", outDir, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let o = try json(r.stdout, "transfer")
        // json, two inherited and one reinit accuracy plot, a gate plot per DAP search, md
        XCTAssertEqual((o["files"] as? [String])?.count, 7)
        let results = try json(try String(contentsOfFile: outDir + "/transfer.json", encoding: .utf8), "transfer.json")
        let rows = try XCTUnwrap(results["rows"] as? [[String: Any]])
        // full + 2 methods × 2 budgets = 5 nets; inherited at 2 shot counts, reinit at 1.
        XCTAssertEqual(rows.count, 5 * 3)
        for row in rows {
            let n = row["n"] as? Int, mean = row["accuracy_mean"] as? Double
            XCTAssertEqual(n, row["arm"] as? String == "inherited" ? 2 : 1)
            XCTAssertTrue((0...1).contains(mean ?? -1), "\(row)")
            XCTAssertEqual(row["split"] as? String, "semantic")
            // The per-episode values are kept, and the mean is theirs.
            let values = try XCTUnwrap(row["accuracies"] as? [Double], "\(row)")
            XCTAssertEqual(values.count, n)
            XCTAssertEqual(values.reduce(0, +) / Double(values.count), mean ?? -1, accuracy: 1e-12)
        }
        // DAP minus the best (here the only) baseline per budget × arm × shots, recomputed from the rows.
        let paired = try XCTUnwrap(results["paired"] as? [[String: Any]])
        XCTAssertEqual(paired.count, 2 * 3)
        func accuracies(_ method: String, _ p: [String: Any]) throws -> [Double] {
            let row = try XCTUnwrap(rows.first { $0["method"] as? String == method && $0["budget"] as? String == p["budget"] as? String
                && $0["arm"] as? String == p["arm"] as? String && $0["shots"] as? Int == p["shots"] as? Int }, "\(p)")
            return try XCTUnwrap(row["accuracies"] as? [Double])
        }
        for p in paired {
            XCTAssertEqual(p["against"] as? String, "best_baseline")
            XCTAssertEqual(p["baseline"] as? String, "l1")
            let differences = zip(try accuracies("dap", p), try accuracies("l1", p)).map { $0 - $1 }
            let mean = try XCTUnwrap(p["difference_mean"] as? Double)
            XCTAssertEqual(mean, differences.reduce(0, +) / Double(differences.count), accuracy: 1e-12)
            XCTAssertEqual(mean, (p["dap_mean"] as? Double ?? .nan) - (p["baseline_mean"] as? Double ?? .nan), accuracy: 1e-12)
            XCTAssertEqual(p["n"] as? Int, differences.count)
            if differences.count == 2 {  // t(0.975, 1) · |d0 − d1| / 2, by hand
                XCTAssertEqual(p["difference_ci95"] as? Double ?? .nan, 12.706 * abs(differences[0] - differences[1]) / 2, accuracy: 1e-12)
            } else {  // one episode: no interval
                XCTAssertTrue(p["difference_ci95"] is NSNull, "\(p)")
            }
        }
        // Costs beside params for every net.
        for net in try XCTUnwrap(results["nets"] as? [[String: Any]]) {
            for key in ["params", "macs", "arena_bytes"] { XCTAssertGreaterThan(net[key] as? Int ?? 0, 0, "\(key): \(net)") }
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: outDir + "/transfer-accuracy-reinit-1shot.svg"))
        let markdown = try String(contentsOfFile: outDir + "/transfer.md", encoding: .utf8)
        XCTAssertTrue(markdown.contains("| l1 |") && markdown.contains("| dap |"), markdown)
        XCTAssertTrue(markdown.contains("**Paired differences**") && markdown.contains("| MACs | arena bytes |"), markdown)
        let svg = try String(contentsOfFile: outDir + "/transfer-accuracy-2shot.svg", encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.contains("</svg>") && svg.contains("l1"))
        let overlap = try sprig(["transfer", "--supernet", supernet, "--data", "builtin", "--source", "0-4", "--target", "4-8", "--out-dir", outDir])
        XCTAssertEqual(overlap.status, 2)
        XCTAssertTrue(overlap.stderr.contains("overlap"), overlap.stderr)
    }

    func testTransferRefusesBadSplitsBeforeAnyWork() throws {
        let outDir = path("never")
        for bad in ["bogus", "", "random", "random:0", "random:101", "random:x", "semantic,semantic", "random:1,random:2"] {
            let r = try sprig(["transfer", "--data", "builtin", "--splits", bad, "--out-dir", outDir])
            XCTAssertEqual(r.status, 2, "\(bad): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("--splits '\(bad)'"), "\(bad): \(r.stderr)")
        }
        let seed = try sprig(["transfer", "--data", "builtin", "--splits", "random:2", "--split-seed", "-1", "--out-dir", outDir])
        XCTAssertEqual(seed.status, 2, seed.stderr)
        XCTAssertTrue(seed.stderr.contains("--split-seed"), seed.stderr)
        // A given supernet knows one split's source classes only.
        let given = try sprig(["transfer", "--data", "builtin", "--splits", "semantic,random:1", "--supernet", path("any.safetensors"),
                               "--out-dir", outDir])
        XCTAssertEqual(given.status, 2, given.stderr)
        XCTAssertTrue(given.stderr.contains("--supernet") && given.stderr.contains("--splits"), given.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: outDir))
    }
}
