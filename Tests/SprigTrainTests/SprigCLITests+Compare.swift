// `sprig compare` against the blobs run one by one through SprigRuntime: the agreement, the
// accuracies and the output's SQNR recomputed here with a naive loop; a blob against itself is
// exact at every tensor; blobs of different shapes are an error naming both.

import Foundation
import SprigTestSupport
import SprigTrain
import XCTest

extension SprigCLITests {
    /// The 16 reference images of the fixtures as an IDX data directory (train = test), labelled
    /// i mod 10 so that every class is present.
    func referenceData() throws -> String {
        let images = packageRoot.appendingPathComponent("Tests/Fixtures/ref-input.idx")
        let names = DataSource.fileNames
        let labels = Data([0, 0, 8, 1, 0, 0, 0, 16] + (0..<16).map { UInt8($0 % 10) })
        for name in [names.trainImages, names.testImages] {
            try FileManager.default.copyItem(at: images, to: directory.appendingPathComponent(name))
        }
        for name in [names.trainLabels, names.testLabels] { try labels.write(to: directory.appendingPathComponent(name)) }
        return directory.path
    }

    func testCompareCountsWhatRunningBothBlobsImageByImageCounts() throws {
        let f32 = packageRoot.appendingPathComponent("Tests/Fixtures/ref-cnn-f32.sprig").path
        let q8 = packageRoot.appendingPathComponent("Tests/Fixtures/ref-cnn-q8.sprig").path
        let data = try referenceData()
        let r = try sprig(["compare", f32, q8, "--data", data, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let o = try json(r.stdout, "compare --json")

        let test = try DataSource(argument: data).load().test
        XCTAssertEqual(test.count, 16)
        let images = (0..<16).map { Array(test.image($0)) }
        let a = try runBlob([UInt8](try Data(contentsOf: URL(fileURLWithPath: f32))), images)
        let b = try runBlob([UInt8](try Data(contentsOf: URL(fileURLWithPath: q8))), images)
        func argmax(_ v: [Float]) -> Int { v.indices.max { v[$0] < v[$1] || (v[$0] == v[$1] && $0 > $1) }! }
        var agree = 0, correctA = 0, correctB = 0, signal = 0.0, noise = 0.0
        for i in 0..<16 {
            if argmax(a[i]) == argmax(b[i]) { agree += 1 }
            if argmax(a[i]) == Int(test.labels[i]) { correctA += 1 }
            if argmax(b[i]) == Int(test.labels[i]) { correctB += 1 }
            for (x, y) in zip(a[i], b[i]) {
                signal += Double(x) * Double(x)
                noise += (Double(x) - Double(y)) * (Double(x) - Double(y))
            }
        }
        XCTAssertEqual(o["count"] as? Int, 16)
        XCTAssertEqual(o["agreeing"] as? Int, agree)
        XCTAssertEqual(o["agreement"] as? Double ?? -1, Double(agree) / 16, accuracy: 1e-12)
        XCTAssertEqual(o["reference_accuracy"] as? Double ?? -1, Double(correctA) / 16, accuracy: 1e-12)
        XCTAssertEqual(o["other_accuracy"] as? Double ?? -1, Double(correctB) / 16, accuracy: 1e-12)
        XCTAssertGreaterThan(noise, 0, "the q8 fixture rounds its outputs")
        XCTAssertEqual(o["output_sqnr_db"] as? Double ?? -1, 10 * log10(signal / noise), accuracy: 1e-6)
        // One row per op output of the f32 blob: the q8 blob keeps their names.
        let tensors = try XCTUnwrap(o["tensors"] as? [[String: Any]])
        XCTAssertEqual(tensors.map { $0["name"] as? String ?? "" }, ["conv1", "maxpool2", "conv3", "maxpool4", "conv5", "gap6", "fc7"])
        for t in tensors {
            let db = try XCTUnwrap(t["sqnr_db"] as? Double, "\(t)")
            XCTAssertTrue(db > 10 && db < 60, "int8 noise of \(t): \(db) dB")
        }

        let text = try sprig(["compare", f32, q8, "--data", data, "--limit", "16"])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains(String(format: "argmax agreement %.2f%% (%d/16)", Double(agree) / 16 * 100, agree)), text.stdout)
    }

    func testCompareOfABlobWithItselfIsExactAndOfAnotherShapeIsAnError() throws {
        let f32 = packageRoot.appendingPathComponent("Tests/Fixtures/ref-cnn-f32.sprig").path
        let data = try referenceData()
        let same = try sprig(["compare", f32, f32, "--data", data, "--limit", "10", "--json"])
        XCTAssertEqual(same.status, 0, same.stderr)
        let o = try json(same.stdout, "compare --json")
        XCTAssertEqual(o["agreement"] as? Double, 1)
        XCTAssertTrue(o["output_sqnr_db"] is NSNull, "equal outputs have no finite SQNR: \(same.stdout)")
        XCTAssertEqual(o["output_max_abs_error"] as? Double, 0)
        for t in try XCTUnwrap(o["tensors"] as? [[String: Any]]) { XCTAssertTrue(t["sqnr_db"] is NSNull, "\(t)") }

        let other = packageRoot.appendingPathComponent("Tests/Fixtures/all-ops-f32.sprig").path
        let bad = try sprig(["compare", f32, other, "--data", data])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("[8,8,2] → [3] against [28,28,1] → [10]"), bad.stderr)
        XCTAssertTrue(bad.stdout.isEmpty, bad.stdout)
        let usage = try sprig(["compare", f32])
        XCTAssertEqual(usage.status, 2, usage.stderr)
    }
}
