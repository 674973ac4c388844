// IDX reader and writer: round trips (raw, gzip, multi-member gzip, 3- and 4-dimension image
// files) and a table of corrupt files, each expecting its own error that names the file and
// the field.

import Foundation
import XCTest
@testable import SprigTrain

final class IDXTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "sprig-idx-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func path(_ name: String) -> String { directory + "/" + name }

    /// 3 × 4 × 5 elements numbered 0, 1, 2, ... (mod 256).
    private let sample = IDXArray(dimensions: [3, 4, 5], data: (0..<60).map { UInt8($0 * 7 % 256) })

    // MARK: Round trips

    func testEncodeHeaderIsBigEndianByHand() throws {
        let bytes = try IDX.encode(IDXArray(dimensions: [2, 258], data: [UInt8](repeating: 9, count: 516)))
        // magic 00 00, dtype 08, ndim 02, dims 2 = 00 00 00 02, 258 = 00 00 01 02
        XCTAssertEqual(Array(bytes[0..<12]), [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 1, 2])
        XCTAssertEqual(bytes.count, 12 + 516)
    }

    func testRoundTripRaw() throws {
        let p = path("a-idx3-ubyte")
        try IDX.write(sample, to: p)
        XCTAssertEqual(try readFileBytes(atPath: p).prefix(2), [0, 0], "raw file must not be compressed")
        XCTAssertEqual(try IDX.read(path: p, dimensionCounts: [3]), sample)
    }

    func testRoundTripGzipAndDeterministicBytes() throws {
        let p = path("a-idx3-ubyte.gz")
        try IDX.write(sample, to: p)
        let first = try readFileBytes(atPath: p)
        XCTAssertEqual(Array(first.prefix(2)), [0x1F, 0x8B], "a .gz name must produce gzip")
        XCTAssertEqual(try IDX.read(path: p), sample)
        try IDX.write(sample, to: p)
        XCTAssertEqual(try readFileBytes(atPath: p), first, "same array, same gzip bytes")
    }

    func testGzipDetectedByContentWithoutSuffix() throws {
        let p = path("noext")
        try IDX.write(sample, to: p, gzip: true)
        XCTAssertEqual(try IDX.read(path: p), sample)
    }

    func testMultiMemberGzipIsOneStream() throws {
        let raw = try IDX.encode(sample)
        let joined = try gzipCompress(Array(raw[0..<10])) + gzipCompress(Array(raw[10...]))
        let p = path("multi.gz")
        try writeFileAtomically(joined, to: p)
        XCTAssertEqual(try IDX.read(path: p), sample)
    }

    func testLabelsAndEmptyData() throws {
        let labels = IDXArray(dimensions: [6], data: [0, 1, 2, 9, 255, 4])
        try IDX.write(labels, to: path("l.gz"))
        XCTAssertEqual(try IDX.read(path: path("l.gz"), dimensionCounts: [1]), labels)
        let empty = IDXArray(dimensions: [0, 28, 28], data: [])
        try IDX.write(empty, to: path("e.gz"))
        XCTAssertEqual(try IDX.read(path: path("e.gz"), dimensionCounts: [3]), empty)
    }

    func testEncodeRejectsInconsistentArrays() {
        XCTAssertThrowsError(try IDX.encode(IDXArray(dimensions: [2, 2], data: [1, 2, 3]))) { error in
            XCTAssertTrue("\(error)".contains("data length"), "\(error)")
        }
        XCTAssertThrowsError(try IDX.encode(IDXArray(dimensions: [], data: [])))
        XCTAssertThrowsError(try IDX.encode(IDXArray(dimensions: [-1], data: [])))
    }

    // MARK: Corrupt files

    private struct Case {
        var name: String
        var fileName: String
        var bytes: [UInt8]
        var dimensionCounts: [Int]?
        var field: IDXField
        /// Substrings the message must contain besides the path and the field name.
        var mentions: [String]
    }

    func testCorruptFilesNameFileAndField() throws {
        let good = try IDX.encode(sample)          // 16-byte header + 60 bytes
        let hugeDims: [UInt8] = [0, 0, 8, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        let claimsFullSet: [UInt8] = [0, 0, 8, 3, 0, 0, 0xEA, 0x60, 0, 0, 0, 28, 0, 0, 0, 28]  // 60000×28×28
        let cases: [Case] = [
            Case(name: "wrong magic", fileName: "m", bytes: [0x01, 0x00] + good.dropFirst(2), dimensionCounts: [3],
                 field: .magic, mentions: ["0x0100", "0x0000"]),
            Case(name: "wrong dtype float32", fileName: "d", bytes: [0, 0, 0x0D] + good.dropFirst(3), dimensionCounts: [3],
                 field: .dtype, mentions: ["0x0D", "float32", "0x08 (uint8)"]),
            Case(name: "labels file with 3 dims", fileName: "n", bytes: good, dimensionCounts: [1],
                 field: .dimensionCount, mentions: ["found 3", "expected 1"]),
            Case(name: "zero dims", fileName: "z", bytes: [0, 0, 8, 0], dimensionCounts: nil,
                 field: .dimensionCount, mentions: ["found 0"]),
            Case(name: "shorter than magic", fileName: "h0", bytes: [0, 0], dimensionCounts: [3],
                 field: .header, mentions: ["2 bytes"]),
            Case(name: "truncated dims", fileName: "h1", bytes: Array(good[0..<10]), dimensionCounts: [3],
                 field: .header, mentions: ["10 bytes", "16 bytes"]),
            Case(name: "truncated data", fileName: "t", bytes: Array(good.dropLast(7)), dimensionCounts: [3],
                 field: .dataLength, mentions: ["found 53 bytes", "expected 60 bytes (3×4×5)"]),
            Case(name: "trailing data", fileName: "x", bytes: good + [1, 2], dimensionCounts: [3],
                 field: .dataLength, mentions: ["found 62 bytes", "expected 60 bytes"]),
            Case(name: "truncated data gz", fileName: "t.gz", bytes: try gzipCompress(Array(good.dropLast(7))),
                 dimensionCounts: [3], field: .dataLength, mentions: ["found 53 bytes", "expected 60 bytes"]),
            Case(name: "trailing data gz", fileName: "x.gz", bytes: try gzipCompress(good + [1, 2]),
                 dimensionCounts: [3], field: .dataLength, mentions: ["found 62 bytes"]),
            Case(name: "dims product overflows", fileName: "o", bytes: hugeDims, dimensionCounts: [3],
                 field: .elementCount, mentions: ["4294967295×4294967295×4294967295", "overflow"]),
            Case(name: "tiny gz claims 47 MB", fileName: "bomb-header.gz", bytes: try gzipCompress(claimsFullSet),
                 dimensionCounts: [3], field: .dataLength, mentions: ["cannot hold more", "47040000 bytes"]),
        ]
        for c in cases {
            let p = path(c.fileName)
            try writeFileAtomically(c.bytes, to: p)
            XCTAssertThrowsError(try IDX.read(path: p, dimensionCounts: c.dimensionCounts), c.name) { error in
                guard case DataError.idx(let ep, let field, _, _)? = error as? DataError else {
                    return XCTFail("\(c.name): expected DataError.idx, got \(error)")
                }
                XCTAssertEqual(ep, p, c.name)
                XCTAssertEqual(field, c.field, c.name)
                let message = "\(error)"
                XCTAssertTrue(message.contains(p), "\(c.name): message lacks the path: \(message)")
                XCTAssertTrue(message.contains(c.field.description), "\(c.name): message lacks the field: \(message)")
                for m in c.mentions {
                    XCTAssertTrue(message.contains(m), "\(c.name): message lacks '\(m)': \(message)")
                }
            }
        }
    }

    func testGzipBombIsCutOffAfterOneMebibyte() throws {
        // 16 bytes promised, 8 MiB of zeros delivered: reading stops at 1 MiB of excess.
        let header: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 16]
        let bomb = try gzipCompress(header + [UInt8](repeating: 0, count: 8 << 20), level: 9)
        XCTAssertLessThan(bomb.count, 20_000)
        let p = path("bomb.gz")
        try writeFileAtomically(bomb, to: p)
        XCTAssertThrowsError(try IDX.read(path: p)) { error in
            guard case DataError.idx(_, .dataLength, let found, _)? = error as? DataError else {
                return XCTFail("expected a data length error, got \(error)")
            }
            XCTAssertTrue(found.hasPrefix("more than"), found)
        }
    }

    func testBadGzipNamesTheFile() throws {
        let good = try gzipCompress(try IDX.encode(sample))
        var badCRC = good
        badCRC[badCRC.count - 6] ^= 0xFF  // inside the CRC-32 trailer
        let cases: [(String, String, [UInt8], String)] = [
            ("not gzip at all", "garbage.gz", Array("this is not gzip data".utf8), "incorrect header"),
            ("CRC mismatch", "crc.gz", badCRC, "incorrect data check"),
            ("truncated stream", "cut.gz", Array(good.prefix(good.count / 2)), "truncated gzip stream"),
            ("trailing garbage", "tail.gz", good + [0x42, 0x42, 0x42], "3 trailing bytes"),
            ("empty file", "empty.gz", [], "truncated gzip stream"),
        ]
        for (name, file, bytes, mention) in cases {
            let p = path(file)
            try writeFileAtomically(bytes, to: p)
            XCTAssertThrowsError(try IDX.read(path: p), name) { error in
                guard case DataError.gzip(let ep, _)? = error as? DataError else {
                    return XCTFail("\(name): expected DataError.gzip, got \(error)")
                }
                XCTAssertEqual(ep, p, name)
                let message = "\(error)"
                XCTAssertTrue(message.contains(p) && message.contains(mention), "\(name): \(message)")
            }
        }
    }

    func testMissingFileIsAnIOErrorNamingThePath() {
        let p = path("does-not-exist.gz")
        XCTAssertThrowsError(try IDX.read(path: p)) { error in
            guard case DataError.io(let io)? = error as? DataError else { return XCTFail("\(error)") }
            XCTAssertEqual(io.code, ENOENT)
            XCTAssertTrue("\(error)".contains(p) && "\(error)".contains("ENOENT"), "\(error)")
        }
    }

    func testDatasetOfZeroImagesIsRefusedNamingTheFile() throws {
        let images = path("none-idx3-ubyte"), labels = path("none-idx1-ubyte")
        try IDX.write(IDXArray(dimensions: [0, 28, 28], data: []), to: images)
        try IDX.write(IDXArray(dimensions: [0], data: []), to: labels)
        XCTAssertThrowsError(try Dataset.load(imagesPath: images, labelsPath: labels)) { error in
            XCTAssertEqual(error as? DataError, .idx(path: images, field: .dimension(0), found: "0", expected: "at least one image"))
            XCTAssertTrue("\(error)".contains(images) && "\(error)".contains("dims[0]"), "\(error)")
        }
    }

    func testImageAndLabelCountMismatchNamesBothFiles() throws {
        let images = path("imgs-idx3-ubyte.gz"), labels = path("lbls-idx1-ubyte")
        try IDX.write(IDXArray(dimensions: [3, 2, 2], data: [UInt8](repeating: 0, count: 12)), to: images)
        try IDX.write(IDXArray(dimensions: [2], data: [0, 1]), to: labels)
        XCTAssertThrowsError(try Dataset.load(imagesPath: images, labelsPath: labels)) { error in
            XCTAssertEqual(error as? DataError,
                           .countMismatch(imagesPath: images, images: 3, labelsPath: labels, labels: 2))
            let message = "\(error)"
            for m in [images, labels, "images count 3", "labels count 2"] {
                XCTAssertTrue(message.contains(m), "lacks '\(m)': \(message)")
            }
        }
    }

    // MARK: Image files of 3 and 4 dimensions

    /// Big-endian UInt32 bytes of `v`, written out independently of `IDX.encode`.
    private func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    /// Every byte of a gzip file, decompressed (the reference for the raw layout).
    private func gunzip(_ path: String, size: Int) throws -> [UInt8] {
        let inflater = try GzipInflater(compressed: try readFileBytes(atPath: path), path: path)
        var out = [UInt8](repeating: 0, count: size + 1)
        let n = try out.withUnsafeMutableBytes { try inflater.read(into: $0) }
        XCTAssertEqual(n, size, "\(path) decompresses to \(n) bytes, not \(size)")
        return Array(out.prefix(n))
    }

    func testRGBDatasetRoundTripsThroughFourDimensions() throws {
        // 2 images of 2×3 pixels × 3 channels; byte k = 7k mod 256.
        let images = (0..<36).map { UInt8($0 * 7 % 256) }
        let rgb = try Dataset(images: images, labels: [4, 1], rows: 2, cols: 3, channels: 3)
        let imagesPath = path("rgb-images"), labelsPath = path("rgb-labels")
        try rgb.write(imagesPath: imagesPath, labelsPath: labelsPath)
        // Header by hand: magic 00 00, dtype 08, ndim 04, dims 2, 2, 3, 3; then the bytes as stored.
        XCTAssertEqual(try readFileBytes(atPath: imagesPath), [0, 0, 8, 4] + be32(2) + be32(2) + be32(3) + be32(3) + images)
        XCTAssertEqual(try readFileBytes(atPath: labelsPath), [0, 0, 8, 1] + be32(2) + [4, 1])
        let back = try Dataset.load(imagesPath: imagesPath, labelsPath: labelsPath)
        XCTAssertEqual(back, rgb)
        XCTAssertEqual(back.shape, [2, 3, 3])
        XCTAssertEqual(back.channels, 3)

        // Gzip'd as well; and a 4-dimension file with C = 1 loads as gray.
        try rgb.write(imagesPath: path("rgb-images.gz"), labelsPath: path("rgb-labels.gz"))
        XCTAssertEqual(try Dataset.load(imagesPath: path("rgb-images.gz"), labelsPath: path("rgb-labels.gz")), rgb)
        try IDX.write(IDXArray(dimensions: [2, 2, 3, 1], data: Array(images[0..<12])), to: path("c1-images"))
        let gray = try Dataset.load(imagesPath: path("c1-images"), labelsPath: labelsPath)
        XCTAssertEqual(gray, try Dataset(images: Array(images[0..<12]), labels: [4, 1], rows: 2, cols: 3))
    }

    func testGrayDatasetStillWritesThreeDimensionsByteForByte() throws {
        let pixels = (0..<24).map { UInt8(255 - $0) }
        let gray = try Dataset(images: pixels, labels: [0, 9], rows: 3, cols: 4)
        try gray.write(imagesPath: path("gray-images"), labelsPath: path("gray-labels"))
        XCTAssertEqual(try readFileBytes(atPath: path("gray-images")), [0, 0, 8, 3] + be32(2) + be32(3) + be32(4) + pixels)

        // The built-in Fashion-MNIST test set, written back raw, equals its decompressed file.
        let directory = try DataSource.builtinDirectory()
        let original = directory + "/t10k-images-idx3-ubyte.gz"
        let test = try Dataset.load(imagesPath: original, labelsPath: directory + "/t10k-labels-idx1-ubyte.gz")
        XCTAssertEqual(test.channels, 1)
        try test.write(imagesPath: path("t10k-images"), labelsPath: path("t10k-labels"))
        let written = try readFileBytes(atPath: path("t10k-images"))
        XCTAssertEqual(written.count, 16 + 2_000 * 784)
        XCTAssertTrue(written == (try gunzip(original, size: 16 + 2_000 * 784)), "the rewritten file differs from the original")
    }

    func testImageFilesOfOtherDimensionCountsAreRefusedNamingTheFile() throws {
        let labels = path("two-labels")
        try IDX.write(IDXArray(dimensions: [2], data: [0, 1]), to: labels)
        for (name, dims) in [("five", [2, 2, 2, 3, 1]), ("two", [2, 4])] {
            let images = path("\(name)-dims-images")
            try IDX.write(IDXArray(dimensions: dims, data: [UInt8](repeating: 1, count: dims.reduce(1, *))), to: images)
            XCTAssertThrowsError(try Dataset.load(imagesPath: images, labelsPath: labels), name) { error in
                XCTAssertEqual(error as? DataError, .idx(path: images, field: .dimensionCount, found: "\(dims.count)",
                                                         expected: "3 (N, H, W) or 4 (N, H, W, C)"))
                let message = "\(error)"
                XCTAssertTrue(message.contains(images), message)
                XCTAssertTrue(message.contains("IDX ndim: found \(dims.count), expected 3 (N, H, W) or 4 (N, H, W, C)"), message)
            }
        }
        // A labels file of 5 dimensions names its own axis.
        try IDX.write(IDXArray(dimensions: [2, 1, 1], data: [0, 0]), to: path("ok-images"))
        XCTAssertThrowsError(try Dataset.load(imagesPath: path("ok-images"), labelsPath: path("five-dims-images"))) { error in
            XCTAssertTrue("\(error)".contains("IDX ndim: found 5, expected 1 (N)"), "\(error)")
        }
    }

    func testChannelCountsOutsideOneToFourAreRefusedNamingTheFileAndDimension() throws {
        let labels = path("labels-2")
        try IDX.write(IDXArray(dimensions: [2], data: [0, 1]), to: labels)
        for c in [0, 5, 255] {
            let images = path("c\(c)-images")
            try IDX.write(IDXArray(dimensions: [2, 2, 2, c], data: [UInt8](repeating: 0, count: 8 * c)), to: images)
            XCTAssertThrowsError(try Dataset.load(imagesPath: images, labelsPath: labels), "C = \(c)") { error in
                guard case DataError.idx(let p, .dimension(3), let found, _)? = error as? DataError else {
                    return XCTFail("C = \(c): expected an IDX dims[3] error, got \(error)")
                }
                XCTAssertEqual(p, images)
                XCTAssertEqual(found, "\(c)")
                let message = "\(error)"
                for m in [images, "dims[3]", "found \(c)", "1...4"] {
                    XCTAssertTrue(message.contains(m), "C = \(c): lacks '\(m)': \(message)")
                }
            }
        }
        for c in 1...4 {
            let images = path("ok\(c)-images")
            try IDX.write(IDXArray(dimensions: [2, 2, 2, c], data: [UInt8](repeating: 3, count: 8 * c)), to: images)
            XCTAssertEqual(try Dataset.load(imagesPath: images, labelsPath: labels).channels, c)
        }
    }

    func testDimensionCountDescriptions() {
        let axes = Dataset.imageAxes
        XCTAssertEqual(IDX.describeDimensionCounts([3, 4], axisNames: axes), "3 (N, H, W) or 4 (N, H, W, C)")
        XCTAssertEqual(IDX.describeDimensionCounts([1], axisNames: ["N"]), "1 (N)")
        XCTAssertEqual(IDX.describeDimensionCounts([1], axisNames: []), "1")
        XCTAssertEqual(IDX.describeDimensionCounts([2, 3, 5], axisNames: axes), "2 (N, H), 3 (N, H, W) or 5")
    }
}
