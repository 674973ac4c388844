// Image files and image folders (ImageDecoding.swift, ImageFolder.swift), and the digits:
//   - PNG gray, RGB, RGBA, palette and 16-bit, written here through libpng with known pixels
//     and decoded back exactly; JPEG baseline and progressive, of flat blocks (which JPEG
//     keeps to within ±2 away from their edges), checked against the planted values and for
//     the frame marker (SOF0 / SOF2);
//   - PGM/PPM bytes written by hand (comments, maxval 255 and 65535), and their errors;
//   - area resizing against hand-computed means; gray/RGB conversion against BT.601;
//   - the stratified split's per-class counts, hand-computed;
//   - corrupt and truncated files name the file;
//   - an image folder's classes, labels and split; the digits' 1,797 images in 10 classes.

import Foundation
@testable import SprigTrain
import XCTest

final class ImageDataTests: ScratchTestCase {
    // MARK: PNG

    func testPNGGrayRGBRoundTripExactly() throws {
        // 2×3 gray: every value distinct, corners 0 and 255.
        let gray: [UInt8] = [0, 10, 20, 200, 250, 255]
        let g = try ImageCodec.decode(try ImageCodec.encodePNG(gray, width: 3, height: 2, channels: 1), path: "gray.png")
        XCTAssertEqual(g, DecodedImage(height: 2, width: 3, channels: 1, pixels: gray))
        // 2×2 RGB: red, green, blue, white.
        let rgb: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]
        let c = try ImageCodec.decode(try ImageCodec.encodePNG(rgb, width: 2, height: 2, channels: 3), path: "rgb.png")
        XCTAssertEqual(c, DecodedImage(height: 2, width: 2, channels: 3, pixels: rgb))
    }

    func testPNGAlphaIsDroppedAndPaletteExpanded() throws {
        // RGBA: the alpha byte goes, the colour stays as it is (not composited).
        let rgba: [UInt8] = [10, 20, 30, 0, 40, 50, 60, 255]
        let a = try ImageCodec.decode(try ImageCodec.encodePNG(rgba, width: 2, height: 1, channels: 4), path: "rgba.png")
        XCTAssertEqual(a, DecodedImage(height: 1, width: 2, channels: 3, pixels: [10, 20, 30, 40, 50, 60]))
        // Gray + alpha → gray.
        let ga = try ImageCodec.decode(try ImageCodec.encodePNG([7, 0, 9, 128], width: 2, height: 1, channels: 2), path: "ga.png")
        XCTAssertEqual(ga, DecodedImage(height: 1, width: 2, channels: 1, pixels: [7, 9]))
        // Palette: indices [2, 0, 1] into (1,2,3) (4,5,6) (7,8,9).
        let palette: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        let p = try ImageCodec.decode(try ImageCodec.encodePNG([2, 0, 1], width: 3, height: 1, channels: 1, palette: palette), path: "p.png")
        XCTAssertEqual(p, DecodedImage(height: 1, width: 3, channels: 3, pixels: [7, 8, 9, 1, 2, 3, 4, 5, 6]))
    }

    func testPNG16BitIsScaledTo8() throws {
        // A 16-bit gray PNG, 1×2, samples 0xFFFF and 0x8080, written byte by byte: signature, IHDR,
        // one IDAT (zlib stored block), IEND. png_set_scale_16: v·255/65535 rounded → 255, 128.
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            var crc: UInt32 = 0xFFFF_FFFF
            for b in body {
                crc ^= UInt32(b)
                for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            crc ^= 0xFFFF_FFFF
            func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
            return be(UInt32(data.count)) + body + be(crc)
        }
        let raw: [UInt8] = [0, 0xFF, 0xFF, 0x80, 0x80]   // filter 0, two big-endian samples
        var a: UInt32 = 1, b: UInt32 = 0
        for x in raw { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
        let adler = (b << 16) | a
        let zlib: [UInt8] = [0x78, 0x01, 0x01, UInt8(raw.count), 0, ~UInt8(raw.count), 0xFF] + raw
            + [UInt8(adler >> 24), UInt8(adler >> 16 & 0xFF), UInt8(adler >> 8 & 0xFF), UInt8(adler & 0xFF)]
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", [0, 0, 0, 2, 0, 0, 0, 1, 16, 0, 0, 0, 0]) + chunk("IDAT", zlib) + chunk("IEND", [])
        XCTAssertEqual(try ImageCodec.decode(png, path: "16.png"), DecodedImage(height: 1, width: 2, channels: 1, pixels: [255, 128]))
    }

    // MARK: JPEG

    /// 2×2 flat blocks of `side`×`side` pixels. JPEG keeps a flat block's value to within a
    /// step or two away from its edges (colour: 16×16 blocks, one MCU each, because 4:2:0
    /// chroma is subsampled and upsampled across block edges).
    func flatBlocks(channels: Int, side: Int = 8) -> (pixels: [UInt8], values: [[UInt8]]) {
        let values: [[UInt8]] = channels == 1 ? [[20], [100], [180], [240]]
            : [[200, 40, 40], [40, 200, 40], [40, 40, 200], [128, 128, 128]]
        let n = 2 * side
        var pixels = [UInt8](repeating: 0, count: n * n * channels)
        for y in 0..<n {
            for x in 0..<n {
                let block = (y / side) * 2 + x / side
                for c in 0..<channels { pixels[(y * n + x) * channels + c] = values[block][c] }
            }
        }
        return (pixels, values)
    }

    /// The largest difference from the planted blocks over pixels at least `margin` from a block edge.
    func assertFlatBlocks(_ image: DecodedImage, _ values: [[UInt8]], side: Int, margin: Int, tolerance: Int,
                          file: StaticString = #filePath, line: UInt = #line) {
        let n = 2 * side
        XCTAssertEqual(image.shape, [n, n, values[0].count], file: file, line: line)
        var worst = 0
        for y in 0..<n where (y % side) >= margin && (y % side) < side - margin {
            for x in 0..<n where (x % side) >= margin && (x % side) < side - margin {
                for c in 0..<image.channels {
                    let got = Int(image.pixels[(y * n + x) * image.channels + c]), want = Int(values[(y / side) * 2 + x / side][c])
                    worst = max(worst, abs(got - want))
                }
            }
        }
        XCTAssertLessThanOrEqual(worst, tolerance, "largest difference from the planted blocks", file: file, line: line)
    }

    /// Whether `bytes` holds the start-of-frame marker `FF marker`.
    func hasMarker(_ bytes: [UInt8], _ marker: UInt8) -> Bool {
        zip(bytes, bytes.dropFirst()).contains { $0 == 0xFF && $1 == marker }
    }

    func testJPEGBaselineAndProgressive() throws {
        for channels in [1, 3] {
            // Gray: 8×8 blocks, every pixel checked. Colour: 16×16 blocks, 3 pixels from each edge.
            let side = channels == 1 ? 8 : 16, margin = channels == 1 ? 0 : 3
            let (pixels, values) = flatBlocks(channels: channels, side: side)
            let baseline = try ImageCodec.encodeJPEG(pixels, width: 2 * side, height: 2 * side, channels: channels, quality: 100)
            let progressive = try ImageCodec.encodeJPEG(pixels, width: 2 * side, height: 2 * side, channels: channels, quality: 100,
                                                        progressive: true)
            XCTAssertTrue(hasMarker(baseline, 0xC0), "baseline SOF0")
            XCTAssertFalse(hasMarker(baseline, 0xC2))
            XCTAssertTrue(hasMarker(progressive, 0xC2), "progressive SOF2")
            for (bytes, name) in [(baseline, "b.jpg"), (progressive, "p.jpg")] {
                assertFlatBlocks(try ImageCodec.decode(bytes, path: name), values, side: side, margin: margin, tolerance: 2)
            }
        }
    }

    // MARK: PGM / PPM

    func testPGMAndPPMByHand() throws {
        // P5 with a comment, 3×1, maxval 255.
        let pgm = Array("P5\n# made by hand\n3 1\n255\n".utf8) + [0, 128, 255]
        XCTAssertEqual(try ImageCodec.decode(pgm, path: "a.pgm"), DecodedImage(height: 1, width: 3, channels: 1, pixels: [0, 128, 255]))
        // P6, 1×2, maxval 65535: (0xFFFF, 0, 0x8080) → (255, 0, 128); (0x0101, 0x0202, 0) → (1, 2, 0).
        let ppm = Array("P6 2 1 65535\n".utf8) + [0xFF, 0xFF, 0, 0, 0x80, 0x80, 0x01, 0x01, 0x02, 0x02, 0, 0]
        XCTAssertEqual(try ImageCodec.decode(ppm, path: "a.ppm"), DecodedImage(height: 1, width: 2, channels: 3, pixels: [255, 0, 128, 1, 2, 0]))
        // maxval 15: 15 → 255, 8 → (8·255 + 7) / 15 = 136.
        let small = Array("P5 2 1 15\n".utf8) + [15, 8]
        XCTAssertEqual(try ImageCodec.decode(small, path: "s.pgm").pixels, [255, 136])
    }

    func testPNMErrorsNameTheFileAndField() {
        let cases: [(String, [UInt8], String)] = [
            ("truncated samples", Array("P5 3 1 255\n".utf8) + [1, 2], "samples truncated"),
            ("no maxval", Array("P5 3 1".utf8), "truncated before maxval"),
            ("letters for width", Array("P5 x 1 255\n".utf8), "width: expected a decimal number"),
            ("maxval 0", Array("P5 1 1 0\n".utf8) + [0], "maxval 0"),
            ("sample above maxval", Array("P5 1 1 10\n".utf8) + [11], "above maxval"),
            ("zero width", Array("P5 0 1 255\n".utf8), "size 0×1"),
            ("plain PGM", Array("P2 1 1 255\n0\n".utf8), "plain (ASCII)"),
        ]
        for (name, bytes, phrase) in cases {
            XCTAssertThrowsError(try ImageCodec.decode(bytes, path: "/x/\(name).pgm"), name) { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix("/x/\(name).pgm: "), "\(name): \(text)")
                XCTAssertTrue(text.contains(phrase), "\(name): \(text)")
            }
        }
    }

    func testCorruptAndTruncatedImagesNameTheFile() throws {
        let (pixels, _) = flatBlocks(channels: 3)
        let png = try ImageCodec.encodePNG(pixels, width: 16, height: 16, channels: 3)
        let jpeg = try ImageCodec.encodeJPEG(pixels, width: 16, height: 16, channels: 3)
        var flipped = png
        flipped[40] ^= 0xFF   // inside IDAT: CRC mismatch
        let cases: [(String, [UInt8], String)] = [
            ("png-truncated.png", Array(png.prefix(png.count / 2)), "PNG"),
            ("png-crc.png", flipped, "PNG"),
            ("png-header-only.png", Array(png.prefix(8)), "PNG"),
            ("jpeg-truncated.jpg", Array(jpeg.prefix(jpeg.count / 2)), "JPEG"),
            ("jpeg-soi-only.jpg", [0xFF, 0xD8, 0xFF], "JPEG"),
            ("empty.png", [], "empty file"),
            ("text.png", Array("hello".utf8), "not a PNG, JPEG"),
            ("gzip.png", [0x1F, 0x8B, 8, 0], "gunzip it first"),
        ]
        for (name, bytes, phrase) in cases {
            XCTAssertThrowsError(try ImageCodec.decode(bytes, path: "/data/\(name)"), name) { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix("/data/\(name): "), "\(name): \(text)")
                XCTAssertTrue(text.contains(phrase), "\(name): \(text)")
            }
        }
    }

    /// Seeded corruptions of a PNG, a baseline and a progressive JPEG and a PPM: each either
    /// decodes to an image of a consistent shape or throws an error naming the file. A longjmp
    /// or abort escaping the C shim would end this test process. (Run once at 25,000 per
    /// file: 21,477 decoded, 78,523 refused, no crash.)
    func testMutatedImagesDecodeOrThrowNeverCrash() throws {
        let (pixels, _) = flatBlocks(channels: 3)
        let seeds: [(String, [UInt8])] = [
            ("m.png", try ImageCodec.encodePNG(pixels, width: 16, height: 16, channels: 3)),
            ("m.jpg", try ImageCodec.encodeJPEG(pixels, width: 16, height: 16, channels: 3)),
            ("p.jpg", try ImageCodec.encodeJPEG(pixels, width: 16, height: 16, channels: 3, progressive: true)),
            ("m.ppm", Array("P6 16 16 255\n".utf8) + pixels),
        ]
        var state: UInt64 = 0x5EED
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: state >> 33)
        }
        var decoded = 0, refused = 0
        for (name, original) in seeds {
            for _ in 0..<500 {
                var bytes = original
                switch next() % 3 {
                case 0: bytes = Array(bytes.prefix(next() % bytes.count))                 // truncate
                case 1: for _ in 0..<(1 + next() % 4) { bytes[next() % bytes.count] = UInt8(next() & 0xFF) }  // overwrite
                default: bytes.insert(UInt8(next() & 0xFF), at: next() % bytes.count)      // insert
                }
                do {
                    let image = try ImageCodec.decode(bytes, path: "/fuzz/" + name)
                    XCTAssertEqual(image.pixels.count, image.height * image.width * image.channels)
                    decoded += 1
                } catch {
                    XCTAssertTrue("\(error)".hasPrefix("/fuzz/" + name + ": "), "\(error)")
                    refused += 1
                }
            }
        }
        XCTAssertEqual(decoded + refused, 2000)
        XCTAssertGreaterThan(refused, 500, "most corruptions are caught")
    }

    // MARK: Resizing and channels

    func testAreaResizeHandComputed() {
        // 1×4 → 1×2: pairs averaged, (200 + 255)/2 = 227.5 → 228.
        let row = DecodedImage(height: 1, width: 4, channels: 1, pixels: [0, 100, 200, 255])
        XCTAssertEqual(ImageCodec.resizeArea(row, height: 1, width: 2).pixels, [50, 228])
        // 1×3 → 1×2: output 0 covers source [0, 1.5): (0·1 + 90·0.5)/1.5 = 30; output 1: (90·0.5 + 180)/1.5 = 150.
        XCTAssertEqual(ImageCodec.resizeArea(DecodedImage(height: 1, width: 3, channels: 1, pixels: [0, 90, 180]), height: 1, width: 2).pixels,
                       [30, 150])
        // 2×2 RGB → 1×1: the mean of each channel.
        let rgb = DecodedImage(height: 2, width: 2, channels: 3, pixels: [0, 10, 255, 4, 20, 255, 8, 30, 0, 12, 40, 0])
        XCTAssertEqual(ImageCodec.resizeArea(rgb, height: 1, width: 1).pixels, [6, 25, 128])  // 127.5 rounds up
        // Enlarging 1×2 → 2×4 repeats each pixel.
        let small = DecodedImage(height: 1, width: 2, channels: 1, pixels: [3, 7])
        XCTAssertEqual(ImageCodec.resizeArea(small, height: 2, width: 4).pixels, [3, 3, 7, 7, 3, 3, 7, 7])
    }

    func testChannelConversion() {
        let rgb = DecodedImage(height: 1, width: 3, channels: 3, pixels: [255, 0, 0, 0, 255, 0, 0, 0, 255])
        // BT.601: 0.299·255 = 76.2, 0.587·255 = 149.7, 0.114·255 = 29.1.
        XCTAssertEqual(ImageCodec.convert(rgb, toChannels: 1).pixels, [76, 150, 29])
        XCTAssertEqual(ImageCodec.convert(DecodedImage(height: 1, width: 2, channels: 1, pixels: [7, 9]), toChannels: 3).pixels,
                       [7, 7, 7, 9, 9, 9])
    }

    // MARK: Split

    func testStratifiedSplitCountsPerClass() {
        // Class 0: 10 → round(2.0) = 2 test; class 1: 3 → round(0.6) = 1; class 2: 2 → round(0.4) = 0, raised to 1;
        // class 3: 7 → round(1.4) = 1.
        let labels = [Int](repeating: 0, count: 10) + [1, 1, 1] + [2, 2] + [Int](repeating: 3, count: 7)
        let (train, test) = ImageFolder.stratifiedSplit(labels: labels, testFraction: 0.2, seed: 5)
        func count(_ indices: [Int], _ c: Int) -> Int { indices.filter { labels[$0] == c }.count }
        XCTAssertEqual((0..<4).map { count(test, $0) }, [2, 1, 1, 1])
        XCTAssertEqual((0..<4).map { count(train, $0) }, [8, 2, 1, 6])
        XCTAssertEqual(Set(train + test), Set(labels.indices))
        XCTAssertTrue(Set(train).isDisjoint(with: test))
        // The same seed gives the same split; another seed another choice (of 45 possible for class 0).
        XCTAssertEqual(ImageFolder.stratifiedSplit(labels: labels, testFraction: 0.2, seed: 5).test, test)
        XCTAssertNotEqual((1...5).map { ImageFolder.stratifiedSplit(labels: labels, testFraction: 0.2, seed: UInt64($0)).test }.count { $0 == test }, 5)
    }

    // MARK: Folders

    /// Writes `DIR/name/i.ext` for each class, with gray pixels `value(class, i)` at `side`×`side`.
    func makeFolder(_ root: String, classes: [String], perClass: Int, side: Int = 4, formats: [String] = ["png", "pgm"]) throws {
        for (k, name) in classes.enumerated() {
            let folder = (root as NSString).appendingPathComponent(name)
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for i in 0..<perClass {
                let pixels = [UInt8](repeating: UInt8(k * 40 + i), count: side * side)
                let format = formats[i % formats.count]
                let bytes = format == "png" ? try ImageCodec.encodePNG(pixels, width: side, height: side, channels: 1)
                    : Array("P5 \(side) \(side) 255\n".utf8) + pixels
                try writeFileAtomically(bytes, to: (folder as NSString).appendingPathComponent("\(i).\(format)"))
            }
        }
    }

    func testFolderClassesLabelsAndSplit() throws {
        let root = path("shop")
        try makeFolder(root, classes: ["cat", "ant", "bee"], perClass: 5)
        let splits = try DataSource.directory(root).load()
        XCTAssertEqual(splits.classNames, ["ant", "bee", "cat"], "sorted folder names")
        XCTAssertEqual(splits.split, SplitRecord(testFraction: 0.2, seed: 1))
        XCTAssertEqual(splits.train.count, 12)
        XCTAssertEqual(splits.test.count, 3)
        XCTAssertEqual(splits.test.classCounts.prefix(3), [1, 1, 1])
        // "ant" was written as class 1 (values 40...44), so label 0 holds values 40...44.
        for d in [splits.train, splits.test] {
            for i in 0..<d.count {
                let value = Int(d.image(i).first!), label = Int(d.labels[i])
                XCTAssertEqual(value / 40, [1, 2, 0][label], "image \(i) of label \(label) has value \(value)")
            }
        }
        XCTAssertEqual(DataSource.directory(root).kind, "images")
    }

    func testFolderWithTrainAndTestAndResize() throws {
        let root = path("split")
        try makeFolder(root + "/train", classes: ["a", "b"], perClass: 3, side: 4)
        try makeFolder(root + "/test", classes: ["a", "b"], perClass: 2, side: 4)
        let splits = try DataSource.directory(root).load(images: ImageFolderOptions(height: 2, width: 2, channels: 3))
        XCTAssertNil(splits.split)
        XCTAssertEqual(splits.train.count, 6)
        XCTAssertEqual(splits.test.count, 4)
        XCTAssertEqual(splits.train.shape, [2, 2, 3])
        XCTAssertEqual(Array(splits.test.image(3)), [UInt8](repeating: 41, count: 12))  // class b, image 1
    }

    func testDigitsLoad() throws {
        let digits = try DataSource.digits.load()
        XCTAssertEqual(digits.train.count + digits.test.count, 1797)
        XCTAssertEqual(digits.train.shape, [8, 8, 1])
        XCTAssertEqual(digits.train.labelsPresent, Array(0...9))
        XCTAssertEqual(digits.test.labelsPresent, Array(0...9))
        XCTAssertEqual(digits.classNames, (0...9).map(String.init))
        // tools/make-digits: every 5th image of a class (in file order) is a test image → 355 of 1,797;
        // sklearn's class sizes are 178 182 177 183 181 182 181 179 174 180, so test = ⌊n/5⌋ = 35 36 35 36 36 36 36 35 34 36.
        XCTAssertEqual(Array(digits.test.classCounts.prefix(10)), [35, 36, 35, 36, 36, 36, 36, 35, 34, 36])
        // Values 0...16 scaled by (v·255 + 8)/16: only these 17 bytes occur.
        let allowed = Set((0...16).map { UInt8(($0 * 255 + 8) / 16) })
        XCTAssertTrue(Set(digits.train.images).isSubset(of: allowed))
        XCTAssertTrue(digits.train.images.contains(255))
    }
}
