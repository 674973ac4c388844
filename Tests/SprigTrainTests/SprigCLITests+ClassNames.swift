// Class names from the checkpoint to the board, through the built executables:
//   checkpoint (head.class_names) → `sprig compile` (the blob's labels, read from its bytes)
//   → `sprig-edge run` (index and name per prediction, per class with labels)
//   → `sprig-edge finetune --names` (count checked against the labels) → tuned blob
//   → `sprig-edge run` (the new names);
// and `sprig-edge` refusing gzip files where it expects IDX or a blob.

import Foundation
import SprigTrain
import XCTest

extension SprigCLITests {
    /// A small cnn checkpoint whose description names its 3 classes.
    func namedCheckpoint(_ names: [String]) throws -> String {
        var a = try Architecture(family: "cnn", classes: names.count, width: 0.25, sourceClasses: Array(0..<names.count))
        a.classNames = names
        let p = path("named.safetensors")
        try saveCheckpoint(try buildNetwork(a, seed: 5), architecture: a, to: p)
        return p
    }

    func testClassNamesGoFromTheCheckpointThroughFinetuneToRun() throws {
        let fixtures = packageRoot.appendingPathComponent("Tests/Fixtures").path
        let images = fixtures + "/ref-input.idx"
        let shots = fixtures + "/shots-input.idx", shotLabels = fixtures + "/shots-labels.idx"
        let names = ["coat", "bag", "ankle boot"]
        let ckpt = try namedCheckpoint(names)
        let blob = path("named.sprig")
        let compile = try sprig(["compile", ckpt, "--precision", "f32", "--out", blob])
        XCTAssertEqual(compile.status, 0, compile.stderr)
        // The blob's own bytes hold the names, in output order.
        XCTAssertEqual(RawBlob(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: blob)))).metadata("labels"),
                       names.joined(separator: ","))

        let info = try json(try sprig(["info", blob, "--json"], tool: "sprig-edge").stdout, "info --json")
        XCTAssertEqual(info["labels"] as? String, "coat,bag,ankle boot")
        XCTAssertTrue(try sprig(["info", blob], tool: "sprig-edge").stdout.contains("classes:    3: coat,bag,ankle boot\n"))

        // Each prediction line is "index name", the name the one of that index.
        let run = try sprig(["run", blob, images], tool: "sprig-edge")
        XCTAssertEqual(run.status, 0, run.stderr)
        let lines = run.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 16)
        for line in lines {
            let index = try XCTUnwrap(Int(line.prefix { $0 != " " }), line)
            XCTAssertEqual(line, "\(index) \(names[index])")
        }
        let runJSON = try json(try sprig(["run", blob, images, "--json"], tool: "sprig-edge").stdout, "run --json")
        let predicted = try XCTUnwrap(runJSON["predictions"] as? [Int])
        XCTAssertEqual(runJSON["names"] as? [String], predicted.map { names[$0] })

        // Fine-tune 5 new classes with their names; a wrong count is refused, naming the labels file.
        let newNames = ["a", "b", "c", "d", "e"]
        let tuned = path("tuned.sprig")
        let short = try sprig(["finetune", blob, shots, shotLabels, "--names", "a,b,c", "--out", tuned], tool: "sprig-edge")
        XCTAssertEqual(short.status, 1, short.stderr)
        XCTAssertTrue(short.stderr.contains(shotLabels) && short.stderr.contains("3 names") && short.stderr.contains("5 classes"),
                      short.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tuned))
        let empty = try sprig(["finetune", blob, shots, shotLabels, "--names", "a,,c,d,e", "--out", tuned], tool: "sprig-edge")
        XCTAssertEqual(empty.status, 2, empty.stderr)
        let finetune = try sprig(["finetune", blob, shots, shotLabels, "--names", newNames.joined(separator: ","),
                                  "--method", "imprint", "--out", tuned], tool: "sprig-edge")
        XCTAssertEqual(finetune.status, 0, finetune.stderr)
        XCTAssertEqual(RawBlob(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: tuned)))).metadata("labels"), "a,b,c,d,e")

        let after = try sprig(["run", tuned, images], tool: "sprig-edge")
        XCTAssertEqual(after.status, 0, after.stderr)
        for line in after.stdout.split(separator: "\n").map(String.init) {
            let index = try XCTUnwrap(Int(line.prefix { $0 != " " }), line)
            XCTAssertEqual(line, "\(index) \(newNames[index])")
        }
        // With labels: the accuracy line, then one line per class present, with its name
        // (the shots, whose labels are 0...4, five each).
        let scored = try sprig(["run", tuned, shots, shotLabels], tool: "sprig-edge")
        XCTAssertEqual(scored.status, 0, scored.stderr)
        let scoredLines = scored.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(scoredLines.count, 6, scored.stdout)
        XCTAssertTrue(scoredLines[0].hasPrefix("accuracy: "), scored.stdout)
        for c in 0..<5 { XCTAssertTrue(scoredLines[c + 1].hasPrefix("  \(c) \(newNames[c]): "), scoredLines[c + 1]) }
        let scoredJSON = try json(try sprig(["run", tuned, shots, shotLabels, "--json"], tool: "sprig-edge").stdout, "run --json")
        let perClass = try XCTUnwrap(scoredJSON["per_class"] as? [[String: Any]])
        XCTAssertEqual(perClass.map { $0["name"] as? String }, newNames)
        XCTAssertEqual(perClass.map { $0["count"] as? Int }, [5, 5, 5, 5, 5])
        XCTAssertEqual(perClass.reduce(0) { $0 + ($1["correct"] as? Int ?? 0) }, scoredJSON["correct"] as? Int)

        // Tuned without names: plain indices (the old names named other classes).
        let bare = path("bare.sprig")
        XCTAssertEqual(try sprig(["finetune", blob, shots, shotLabels, "--method", "imprint", "--out", bare], tool: "sprig-edge").status, 0)
        let bareRun = try sprig(["run", bare, images], tool: "sprig-edge")
        XCTAssertTrue(bareRun.stdout.split(separator: "\n").allSatisfy { Int($0) != nil }, bareRun.stdout)
    }

    /// A name the blob cannot hold (a comma separates the names there) is refused by compile.
    func testCompileRefusesAClassNameWithAComma() throws {
        let ckpt = try namedCheckpoint(["coat", "bag, small", "boot"])
        let r = try sprig(["compile", ckpt, "--precision", "f32", "--out", path("x.sprig")])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains(ckpt) && r.stderr.contains("class_names[1]") && r.stderr.contains("comma"), r.stderr)
    }

    /// gzip's magic 1f 8b where an IDX file or a blob is expected: "FILE is gzip-compressed:
    /// gunzip it first", exit 1, for the model, the images, the shots and the labels.
    func testSprigEdgeSaysGunzipForGzipFiles() throws {
        let fixtures = packageRoot.appendingPathComponent("Tests/Fixtures").path
        func gzipped(_ source: String, _ name: String) throws -> String {
            // A real gzip stream: header (magic, deflate, no flags), one stored deflate block, CRC-32, size.
            let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
            var bytes: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3]
            let n = min(data.count, 65535)
            bytes += [1, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            bytes += data[0..<n]
            var crc: UInt32 = 0xFFFF_FFFF
            for b in data[0..<n] {
                crc ^= UInt32(b)
                for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            crc ^= 0xFFFF_FFFF
            for k in 0..<4 { bytes.append(UInt8((crc >> (8 * UInt32(k))) & 0xFF)) }
            for k in 0..<4 { bytes.append(UInt8((UInt32(n) >> (8 * UInt32(k))) & 0xFF)) }
            let p = path(name)
            try Data(bytes).write(to: URL(fileURLWithPath: p))
            return p
        }
        let model = fixtures + "/ref-cnn-q8.sprig", images = fixtures + "/ref-input.idx"
        let shots = fixtures + "/shots-input.idx", labels = fixtures + "/shots-labels.idx"
        let gzImages = try gzipped(images, "images.idx.gz"), gzModel = try gzipped(model, "model.sprig.gz")
        let gzLabels = try gzipped(labels, "labels.idx.gz")
        for (arguments, file) in [(["info", gzModel], gzModel), (["run", gzModel, images], gzModel),
                                  (["run", model, gzImages], gzImages),
                                  (["finetune", model, shots, gzLabels, "--out", path("t.sprig")], gzLabels)] {
            let r = try sprig(arguments, tool: "sprig-edge")
            XCTAssertEqual(r.status, 1, "\(arguments): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("\(file) is gzip-compressed: gunzip it first"), "\(arguments): \(r.stderr)")
            XCTAssertTrue(r.stdout.isEmpty, r.stdout)
        }
    }
}
