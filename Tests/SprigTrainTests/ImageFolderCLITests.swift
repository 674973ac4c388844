// Image folders through the built `sprig`:
//   - every folder error names the place and says what to do (empty folder, single class,
//     empty class, stray file, corrupt image, mixed sizes, a size refused under --no-resize),
//     exit status 1 and nothing on standard output;
//   - `sprig data DIR --out` → IDX → the same pixels as the folder decoded in-process;
//   - `sprig data --device-files` writes the shots of the training split and every test image;
//   - a checkpoint records its data: `sprig eval` without --data uses it, and says so; with
//     other data it warns; `sprig compile` stores the class names in the blob.

import Foundation
@testable import SprigTrain
import XCTest

final class ImageFolderCLITests: ScratchTestCase {
    /// Writes `root/CLASS/i.png|jpg` of `side`×`side` RGB: class k image i has pixel (y, x) =
    /// ((k·50 + i) mod 256, y·10, x·10).
    func makeFolder(_ root: String, classes: [String], perClass: Int, side: Int = 6) throws {
        for (k, name) in classes.enumerated() {
            let folder = (root as NSString).appendingPathComponent(name)
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for i in 0..<perClass {
                var pixels: [UInt8] = []
                for y in 0..<side { for x in 0..<side { pixels += [UInt8(truncatingIfNeeded: k * 50 + i), UInt8(y * 10), UInt8(x * 10)] } }
                let jpeg = i % 3 == 2
                let bytes = jpeg ? try ImageCodec.encodeJPEG(pixels, width: side, height: side, channels: 3)
                    : try ImageCodec.encodePNG(pixels, width: side, height: side, channels: 3)
                try writeFileAtomically(bytes, to: (folder as NSString).appendingPathComponent("\(i).\(jpeg ? "jpg" : "png")"))
            }
        }
    }

    func expectFailure(_ arguments: [String], _ phrases: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try sprig(arguments)
        XCTAssertEqual(r.status, 1, "\(arguments): \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stdout, "", file: file, line: line)
        for phrase in phrases {
            XCTAssertTrue(r.stderr.contains(phrase), "\(arguments): expected '\(phrase)' in: \(r.stderr)", file: file, line: line)
        }
        XCTAssertFalse(r.stderr.contains("Fatal error"), file: file, line: line)
    }

    func testFolderErrorsSayWhatToDo() throws {
        let empty = path("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try expectFailure(["data", empty], [empty, "data not found", "image folder with one subfolder per class"])

        let single = path("single")
        try makeFolder(single, classes: ["only"], perClass: 3)
        try expectFailure(["data", single], ["has a single class ('only')", "at least 2 class folders"])

        let emptyClass = path("empty-class")
        try makeFolder(emptyClass, classes: ["a", "b"], perClass: 3)
        try FileManager.default.createDirectory(atPath: emptyClass + "/c", withIntermediateDirectories: true)
        try expectFailure(["data", emptyClass], [emptyClass + "/c", "holds no images; add images or remove the folder"])

        let stray = path("stray")
        try makeFolder(stray, classes: ["a", "b"], perClass: 3)
        try writeFileAtomically(Array("notes".utf8), to: stray + "/a/notes.txt")
        try expectFailure(["data", stray], [stray + "/a/notes.txt", "not an image file"])

        let corrupt = path("corrupt")
        try makeFolder(corrupt, classes: ["a", "b"], perClass: 3)
        let good = try readFileBytes(atPath: corrupt + "/b/1.png")
        try writeFileAtomically(Array(good.prefix(good.count - 20)), to: corrupt + "/b/1.png")
        try expectFailure(["data", corrupt], [corrupt + "/b/1.png", "corrupt or unsupported PNG"])

        let mixed = path("mixed")
        try makeFolder(mixed, classes: ["a", "b"], perClass: 3, side: 6)
        try makeFolder(mixed + "/tmp", classes: ["b"], perClass: 1, side: 8)
        try FileManager.default.moveItem(atPath: mixed + "/tmp/b/0.png", toPath: mixed + "/b/9.png")
        try FileManager.default.removeItem(atPath: mixed + "/tmp")
        try expectFailure(["data", mixed], ["images of mixed sizes", "6×6", mixed + "/b/9.png", "8×8", "--size"])
        try expectFailure(["data", mixed, "--size", "6x6", "--no-resize"], [mixed + "/b/9.png", "is 8×8, not the 6×6", "--no-resize"])
        // Resizing is allowed by default: the same folder loads at 6×6.
        let resized = try sprig(["data", mixed, "--size", "6x6", "--json"])
        XCTAssertEqual(resized.status, 0, resized.stderr)

        let comma = path("comma")
        try makeFolder(comma, classes: ["a", "b,c"], perClass: 2)
        try expectFailure(["data", comma], [comma + "/b,c", "name with a comma"])

        let tooFew = path("too-few")
        try makeFolder(tooFew, classes: ["a", "b"], perClass: 1)
        try expectFailure(["data", tooFew], ["has 1 image; a train/test split needs at least 2 per class"])

        let halfSplit = path("half-split")
        try makeFolder(halfSplit + "/train", classes: ["a", "b"], perClass: 2)
        try expectFailure(["data", halfSplit], ["has train/ but not test/"])
    }

    func testDataConvertsAFolderToIDXWithTheSamePixels() throws {
        let root = path("shop")
        try makeFolder(root, classes: ["bolt", "nut", "washer"], perClass: 5)
        let r = try sprig(["data", root, "--json", "--out", path("idx"), "--test-fraction", "0.4", "--split-seed", "3"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["kind"] as? String, "images")
        XCTAssertEqual(object["channels"] as? Int, 3)
        XCTAssertEqual(object["train_count"] as? Int, 9)   // 5 per class, round(2.0) = 2 test each
        XCTAssertEqual(object["test_count"] as? Int, 6)
        let classes = try XCTUnwrap(object["classes"] as? [[String: Any]])
        XCTAssertEqual(classes.map { $0["name"] as? String }, ["bolt", "nut", "washer"])
        // The IDX the command wrote holds exactly what the folder decodes to in-process.
        let fromIDX = try DataSource.directory(path("idx")).load()
        let fromFolder = try ImageFolder.load(root, options: ImageFolderOptions(testFraction: 0.4, splitSeed: 3))
        XCTAssertEqual(fromIDX.train, fromFolder.train)
        XCTAssertEqual(fromIDX.test, fromFolder.test)
        XCTAssertEqual(try String(contentsOfFile: path("idx/classes.txt"), encoding: .utf8), "bolt,nut,washer\n")
        // Image 0 of "nut" (class 1) is a PNG, in one split or the other: red exactly 50 (lossless),
        // green y·10, blue x·10.
        let nut = [try fromIDX.train.filtered(classes: [1]), try fromIDX.test.filtered(classes: [1])]
        let firstPixels = nut.flatMap { d in (0..<d.count).map { Array(d.image($0).prefix(6)) } }
        XCTAssertTrue(firstPixels.contains([50, 0, 0, 50, 0, 10]), "\(firstPixels)")
    }

    func testDeviceFilesComeFromTheRightSplits() throws {
        let r = try sprig(["data", "digits", "--classes", "5-9", "--shots", "3", "--seed", "2", "--device-files", path("board")])
        XCTAssertEqual(r.status, 0, r.stderr)
        let shots = try IDX.read(path: path("board/shots.idx"), dimensionCounts: [3], axisNames: ["N", "H", "W"])
        let shotLabels = try IDX.read(path: path("board/shots-labels.idx"), dimensionCounts: [1], axisNames: ["N"])
        let images = try IDX.read(path: path("board/images.idx"), dimensionCounts: [3], axisNames: ["N", "H", "W"])
        let labels = try IDX.read(path: path("board/labels.idx"), dimensionCounts: [1], axisNames: ["N"])
        XCTAssertEqual(shots.dimensions, [15, 8, 8])
        XCTAssertEqual(shotLabels.data.sorted(), [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4])
        // Held out: every test image of digits 5...9 (36 + 36 + 35 + 34 + 36), relabelled 0...4.
        XCTAssertEqual(images.dimensions, [177, 8, 8])
        XCTAssertEqual(Set(labels.data), Set(0...4))
        XCTAssertEqual(try String(contentsOfFile: path("board/classes.txt"), encoding: .utf8), "5,6,7,8,9\n")
        // Each shot is a training image of its class, never a test image.
        let digits = try DataSource.digits.load()
        let train = try digits.train.filtered(classes: Array(5...9)), test = try digits.test.filtered(classes: Array(5...9))
        let trainImages = Set((0..<train.count).map { Array(train.image($0)) + [train.labels[$0]] })
        let testImages = Set((0..<test.count).map { Array(test.image($0)) })
        for s in 0..<15 {
            let image = Array(shots.data[(s * 64)..<((s + 1) * 64)])
            XCTAssertTrue(trainImages.contains(image + [shotLabels.data[s]]), "shot \(s) is a training image of its class")
            XCTAssertFalse(testImages.contains(image), "shot \(s) is not a test image")
        }
    }

    func testCheckpointRecordsItsDataAndEvalUsesIt() throws {
        let root = path("parts")
        try makeFolder(root, classes: ["gear", "nut", "spring"], perClass: 6, side: 8)
        let ckpt = path("m.safetensors")
        let train = try sprig(["train", "--model", "mlp", "--width", "0.05", "--data", root, "--classes", "0-2", "--epochs", "1",
                               "--out", ckpt])
        XCTAssertEqual(train.status, 0, train.stderr)
        XCTAssertTrue(train.stderr.contains("stratified split, test fraction 0.2, seed 1"), train.stderr)
        let record = try XCTUnwrap(try DataRecord.read(checkpoint: ckpt))
        XCTAssertEqual(record.source, URL(fileURLWithPath: root).standardizedFileURL.path)
        XCTAssertEqual(record.shape, [8, 8, 3])
        XCTAssertEqual(record.classNames, ["gear", "nut", "spring"])
        let (_, architecture) = try loadCheckpoint(path: ckpt)
        XCTAssertEqual(architecture.classNames, ["gear", "nut", "spring"])
        // Mean and std per channel of the training split, as Normalization.computed finds them.
        let expected = Normalization.computed(from: try ImageFolder.load(root).train)
        XCTAssertEqual(architecture.input.mean, expected.mean)
        XCTAssertEqual(architecture.input.std, expected.std)

        // eval without --data: the recorded folder, said on standard error.
        let eval = try sprig(["eval", ckpt, "--json"])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let evalObject = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(evalObject["count"] as? Int, 3)  // 3 classes × round(6 · 0.2) = 3 × 1
        let said = try sprig(["eval", ckpt])
        XCTAssertTrue(said.stderr.contains("no --data: using \(record.source)"), said.stderr)
        // With other data of the same shape: a warning naming the difference.
        let other = path("other")
        try makeFolder(other, classes: ["a", "b", "c", "d"], perClass: 4, side: 8)
        let warned = try sprig(["eval", ckpt, "--data", other, "--classes", "0-2"])
        XCTAssertEqual(warned.status, 0, warned.stderr)
        XCTAssertTrue(warned.stderr.contains("warning: --data \(other) differs"), warned.stderr)
        XCTAssertTrue(warned.stderr.contains("4 classes, trained on a source of 3"), warned.stderr)

        // compile without --calib-data calibrates on the recorded folder and stores the class names.
        let blob = path("m.sprig")
        let compile = try sprig(["compile", ckpt, "--precision", "q8", "--out", blob])
        XCTAssertEqual(compile.status, 0, compile.stderr)
        XCTAssertTrue(compile.stderr.contains("no --calib-data: using \(record.source)"), compile.stderr)
        let raw = RawBlob(bytes: try readFileBytes(atPath: blob))
        XCTAssertEqual(raw.metadata("labels"), "gear,nut,spring")
        XCTAssertEqual(DataRecord.decode(raw.metadata("data")), record)
    }

    func testDemoOnAnImageFolderSplitsHalfAndHalfAndNamesReachTheBlobs() throws {
        // 6 classes of 8 RGB images (PNG and JPEG): the demo's default is source 0-2, target 3-5.
        let root = path("six")
        let names = ["apple", "banana", "cherry", "date", "elder", "fig"]
        try makeFolder(root, classes: names, perClass: 8, side: 12)
        let out = path("demo")
        let r = try sprig(["demo", "--data", root, "--epochs", "1", "--steps", "2", "--episodes", "1", "--out-dir", out, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let summary = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(summary["target_classes"] as? [String], ["date", "elder", "fig"])
        XCTAssertEqual(summary["held_out_images"] as? Int, 6)   // 3 classes × round(8 · 0.2)
        let report = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        XCTAssertTrue(report.contains("trained on classes 0-2 (apple, banana, cherry)"))
        for name in ["date", "elder", "fig"] { XCTAssertTrue(report.contains("<th>\(name)</th>"), name) }
        XCTAssertEqual(RawBlob(bytes: try readFileBytes(atPath: out + "/pruned-q8.sprig")).metadata("labels"), "apple,banana,cherry")
        XCTAssertEqual(RawBlob(bytes: try readFileBytes(atPath: out + "/tuned-q8.sprig")).metadata("labels"), "date,elder,fig")
        XCTAssertEqual(try String(contentsOfFile: out + "/device-classes.txt", encoding: .utf8), "date,elder,fig\n")
        let shots = try IDX.read(path: out + "/device-shots.idx", dimensionCounts: [4], axisNames: ["N", "H", "W", "C"])
        XCTAssertEqual(shots.dimensions, [15, 12, 12, 3])
        // Fewer than 4 classes without --source and --target: a usage error that says what to do.
        let three = path("three")
        try makeFolder(three, classes: ["a", "b", "c"], perClass: 6, side: 12)
        let refused = try sprig(["demo", "--data", three, "--out-dir", path("demo3")])
        XCTAssertEqual(refused.status, 2, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("has 3 classes; the demo needs at least 4"), refused.stderr)
    }
}
