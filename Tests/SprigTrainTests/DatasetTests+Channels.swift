// Data sets with channels: HWC storage, per-channel normalization, NHWC batches of C > 1,
// shifts that move a pixel's channels together, and the synthetic padded-and-tinted RGB set.
// Every expected value is computed independently: by hand, or by a naive loop over (y, x, c).

import XCTest
@testable import SprigTrain
import SprigTestSupport

/// `count` random images of `rows × cols × channels` bytes with labels `i mod 3`.
private func randomDataset(count: Int, rows: Int, cols: Int, channels: Int, seed: UInt64) throws -> Dataset {
    var rng = SeededRNG(seed: seed)
    let images = (0..<(count * rows * cols * channels)).map { _ in UInt8(rng.int(in: 0...255)) }
    return try Dataset(images: images, labels: (0..<count).map { UInt8($0 % 3) }, rows: rows, cols: cols, channels: channels)
}

extension DatasetTests {

    // MARK: Storage

    func testChannelsAreStoredInterleavedAndKeptBySelection() throws {
        XCTAssertThrowsError(try Dataset(images: [], labels: [], rows: 1, cols: 1, channels: 0)) { error in
            XCTAssertEqual(error as? DataError, .invalidArgument(name: "channels", value: "0", expected: "1...4 (1 gray, 3 RGB)"))
        }
        XCTAssertThrowsError(try Dataset(images: [UInt8](repeating: 0, count: 5), labels: [0], rows: 1, cols: 1, channels: 5))
        XCTAssertThrowsError(try Dataset(images: [0, 0, 0], labels: [0], rows: 2, cols: 1, channels: 3), "needs 6 bytes")

        // Sample i, row y, col x, channel c holds 50·i + 10·(y·W + x) + c, here H = 2, W = 3, C = 3.
        let (h, w, c) = (2, 3, 3)
        var images: [UInt8] = []
        for i in 0..<4 { for y in 0..<h { for x in 0..<w { for k in 0..<c { images.append(UInt8(50 * i + 10 * (y * w + x) + k)) } } } }
        let data = try Dataset(images: images, labels: [0, 1, 2, 1], rows: h, cols: w, channels: c)
        XCTAssertEqual(data.shape, [2, 3, 3])
        XCTAssertEqual(data.valuesPerImage, 18)
        XCTAssertEqual(data.images[((2 * h + 1) * w + 2) * c + 1], UInt8(50 * 2 + 10 * 5 + 1), "((i·H + y)·W + x)·C + c")
        XCTAssertEqual(Array(data.image(1)), Array(images[18..<36]))

        for part in [data.subset([3, 0]), try data.filtered(classes: [1]), data.shuffled(seed: 2),
                     try data.split(validationCount: 1, seed: 1).train, try data.split(validationCount: 1, seed: 1).validation] {
            XCTAssertEqual(part.shape, [2, 3, 3])
            XCTAssertEqual(part.images.count, part.count * 18)
        }
        XCTAssertEqual(Array(data.subset([3, 0]).image(0)), Array(data.image(3)), "a whole HWC image travels")
        XCTAssertEqual(try data.filtered(classes: [1]).images, Array(data.image(1) + data.image(3)))
    }

    // MARK: Normalization

    func testNormalizationValidatesAndBroadcasts() throws {
        let cases: [(String, [Float], [Float], String)] = [
            ("no values", [], [], "normalization mean"),
            ("five channels", [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], "normalization mean"),
            ("counts differ", [0, 0, 0], [1, 1], "normalization std"),
            ("zero std", [0.1, 0.2], [1, 0], "normalization std[1]"),
            ("negative std", [0.1], [-1], "normalization std[0]"),
            ("NaN mean", [0, .nan, 0], [1, 1, 1], "normalization mean[1]"),
            ("infinite std", [0], [.infinity], "normalization std[0]"),
        ]
        for (name, mean, std, field) in cases {
            XCTAssertThrowsError(try Normalization.validated(mean: mean, std: std), name) { error in
                guard case DataError.invalidArgument(let n, _, _)? = error as? DataError else { return XCTFail("\(name): \(error)") }
                XCTAssertEqual(n, field, name)
            }
        }
        let n = try Normalization.validated(mean: [0.5, 0.4, 0.3], std: [0.25, 0.5, 1])
        XCTAssertEqual(n, Normalization(mean: [0.5, 0.4, 0.3], std: [0.25, 0.5, 1]))
        XCTAssertEqual(n.channelCount, 3)
        XCTAssertEqual(n.apply(255, channel: 0), 2)          // (1 − 0.5) / 0.25
        XCTAssertEqual(n.apply(0, channel: 2), -0.3)         // (0 − 0.3) / 1
        XCTAssertEqual(n.apply(0, channel: 1), -0.8)         // (0 − 0.4) / 0.5

        // One value applies to every channel, and expands to the same thing.
        let one = Normalization(mean: 0.25, std: 0.5)
        XCTAssertEqual(one.mean, [0.25])
        XCTAssertEqual(try one.expanded(toChannels: 3), Normalization(mean: [0.25, 0.25, 0.25], std: [0.5, 0.5, 0.5]))
        XCTAssertEqual(try n.expanded(toChannels: 3), n)
        XCTAssertThrowsError(try n.expanded(toChannels: 1)) { error in
            XCTAssertEqual(error as? DataError, .invalidArgument(name: "normalization channels", value: "3",
                                                                 expected: "1, the channels of the data"))
        }
        XCTAssertThrowsError(try one.expanded(toChannels: 5))
        XCTAssertEqual(one.lookupTable(channels: 3), try one.expanded(toChannels: 3).lookupTable(channels: 3))
        for v in 0...255 { XCTAssertEqual(one.apply(UInt8(v), channel: 2), one.apply(UInt8(v))) }

        // Interleaved bytes: byte i is channel i mod 3.
        let table = n.lookupTable(channels: 3)
        XCTAssertEqual(table.count, 768)
        XCTAssertEqual(table[255 * 3 + 0], 2)
        XCTAssertEqual(n.normalize([255, 0, 0, 0, 255, 255]),
                       [n.apply(255, channel: 0), n.apply(0, channel: 1), n.apply(0, channel: 2),
                        n.apply(0, channel: 0), n.apply(255, channel: 1), n.apply(255, channel: 2)])
        XCTAssertEqual(Normalization.unit.normalize([0, 255, 51]), [0, 1, 0.2])
    }

    func testComputedNormalizationPerChannelMatchesNaiveDouble() throws {
        for (channels, seed) in [(1, UInt64(1)), (2, 2), (3, 3), (4, 4)] {
            let data = try randomDataset(count: 37, rows: 5, cols: 7, channels: channels, seed: seed)
            let computed = Normalization.computed(from: data)
            XCTAssertEqual(computed.channelCount, channels)
            for k in 0..<channels {
                // Naive: walk every pixel's byte of channel k, two passes in Double.
                let values = stride(from: k, to: data.images.count, by: channels).map { Double(data.images[$0]) / 255 }
                let mean = values.reduce(0, +) / Double(values.count)
                let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
                XCTAssertEqual(Double(computed.mean[k]), mean, accuracy: 1e-6, "C = \(channels), channel \(k)")
                XCTAssertEqual(Double(computed.std[k]), variance.squareRoot(), accuracy: 1e-6, "C = \(channels), channel \(k)")
            }
        }
        // A constant channel falls back to std 1; the others are unaffected.
        let pixels: [UInt8] = [0, 77, 255,  255, 77, 255,  0, 77, 0,  255, 77, 0]  // 2×2 RGB, one image
        let computed = Normalization.computed(from: try Dataset(images: pixels, labels: [0], rows: 2, cols: 2, channels: 3))
        XCTAssertEqual(computed.mean, [0.5, Float(77.0 / 255), 0.5])
        XCTAssertEqual(computed.std, [0.5, 1, 0.5])
    }

    // MARK: Batches

    func testHandComputedRGBBatch() throws {
        // Two 2×2 RGB images. Normalization: channel 0 x, channel 1 (x − 0.5)/0.5, channel 2 (x − 1)/0.25.
        //   sample 0  (0,0) 255   0 255 → 1   −1    0      (0,1)   0 255   0 → 0    1   −4
        //             (1,0)  51 102 204 → 0.2 −0.2 −0.8    (1,1)   0   0   0 → 0   −1   −4
        //   sample 1  every pixel 255 255 255 → 1 1 0
        let images: [UInt8] = [255, 0, 255,  0, 255, 0,  51, 102, 204,  0, 0, 0] + [UInt8](repeating: 255, count: 12)
        let data = try Dataset(images: images, labels: [7, 3], rows: 2, cols: 2, channels: 3)
        let n = Normalization(mean: [0, 0.5, 1], std: [1, 0.5, 0.25])
        let batch = data.makeBatch(indices: [1, 0], normalization: n)
        XCTAssertEqual(batch.shape, [2, 2, 2, 3])
        XCTAssertEqual([batch.rows, batch.cols, batch.channels], [2, 2, 3])
        XCTAssertEqual(batch.labels, [3, 7])
        let expected: [Float] = [1, 1, 0,  1, 1, 0,  1, 1, 0,  1, 1, 0,
                                 1, -1, 0,  0, 1, -4,  0.2, -0.2, -0.8,  0, -1, -4]
        XCTAssertEqual(batch.images.count, expected.count)
        for (i, (got, want)) in zip(batch.images, expected).enumerated() {
            XCTAssertEqual(got, want, accuracy: 1e-6, "value \(i): sample \(i / 12), pixel \(i % 12 / 3), channel \(i % 3)")
        }
        // The exactly representable ones are exact.
        XCTAssertEqual(batch.images[12..<18], [1, -1, 0, 0, 1, -4])

        // The same through batches(), and .unit broadcast is x/255 in every channel.
        XCTAssertEqual(Array(data.batches(size: 2, normalization: n)).first?.images,
                       data.makeBatch(indices: [0, 1], normalization: n).images)
        XCTAssertEqual(data.makeBatch(indices: [0], normalization: .unit).images, images[0..<12].map { Float($0) / 255 })
    }

    func testShiftAugmentationOnChannelsMatchesNaiveLoop() throws {
        let (h, w, c) = (5, 6, 3)
        let data = try randomDataset(count: 60, rows: h, cols: w, channels: c, seed: 21)
        // Distinct means per channel, so that a background taken from the wrong channel shows.
        let n = Normalization(mean: [0.1, 0.5, 0.9], std: [0.2, 0.3, 0.4])
        let indices = Array((0..<60).reversed())
        let seed: UInt64 = 77
        let batch = data.makeBatch(indices: indices, normalization: n, augmentation: .shift(2), augmentationSeed: seed)

        // Naive: the same draws (dy then dx per sample), then one (y, x, c) at a time.
        var rng = DataRNG(seed: seed)
        var expected: [Float] = []
        var shifts = Set<[Int]>()
        for i in indices {
            let dy = rng.next(in: -2...2), dx = rng.next(in: -2...2)
            shifts.insert([dy, dx])
            for y in 0..<h {
                for x in 0..<w {
                    for k in 0..<c {
                        let (sy, sx) = (y - dy, x - dx)
                        let inside = sy >= 0 && sy < h && sx >= 0 && sx < w
                        let byte = inside ? data.images[((i * h + sy) * w + sx) * c + k] : 0
                        expected.append(n.apply(byte, channel: k))
                    }
                }
            }
        }
        XCTAssertGreaterThan(shifts.count, 15, "most of the 25 shifts occur")
        XCTAssertEqual(batch.images, expected)
        XCTAssertEqual(batch.labels, indices.map { Int(data.labels[$0]) })

        // batches() draws from its own derived stream: the same result as makeBatch with that seed.
        let all = Array(data.batches(size: 7, normalization: n, augmentation: .shift(2)))
        XCTAssertEqual(all.flatMap(\.images),
                       data.makeBatch(indices: Array(0..<60), normalization: n, augmentation: .shift(2),
                                      augmentationSeed: deriveDataSeed(0, 0xA6)).images)
    }

    // MARK: Synthetic RGB

    func testPaddedAndTintedCentresAndTintsEachImage() throws {
        // 3×2 gray images; image i has one planted pixel 200 − i at (1, 0), the rest 0.
        var images = [UInt8](repeating: 0, count: 4 * 6)
        for i in 0..<4 { images[i * 6 + 1 * 2 + 0] = UInt8(200 - i) }
        let gray = try Dataset(images: images, labels: [2, 0, 1, 2], rows: 3, cols: 2)
        // Side 6: top = (6 − 3)/2 = 1, left = (6 − 2)/2 = 2, so (1, 0) lands at (2, 2).
        // Side 7: top = 2, left = 2 (the odd extra row is at the bottom), so it lands at (3, 2).
        for (side, landing) in [(6, (2, 2)), (7, (3, 2)), (3, (1, 0))] {
            let rgb = try gray.paddedAndTinted(side: side, seed: 5)
            XCTAssertEqual(rgb.shape, [side, side, 3])
            XCTAssertEqual(rgb.count, 4)
            XCTAssertEqual(rgb.labels, gray.labels)
            // Independent tints: the same SplitMix64 stream, three draws per image.
            var rng = DataRNG(seed: 5)
            for i in 0..<4 {
                let tints = (0..<3).map { _ in 0.4 + 0.6 * Double(rng.next() >> 11) / 9_007_199_254_740_992 }
                let image = Array(rgb.image(i))
                let at = (landing.0 * side + landing.1) * 3
                for k in 0..<3 {
                    let want = (Double(200 - i) * tints[k]).rounded()
                    XCTAssertEqual(Double(image[at + k]), want, "side \(side), image \(i), channel \(k)")
                    XCTAssertTrue(Double(image[at + k]) >= (Double(200 - i) * 0.4).rounded() && image[at + k] <= UInt8(200 - i))
                }
                XCTAssertEqual(image.enumerated().filter { $0.element != 0 }.map(\.offset), [at, at + 1, at + 2],
                               "side \(side), image \(i): only the planted pixel is lit")
            }
        }
    }

    func testPaddedAndTintedIsDeterministicAndRefusesBadInput() throws {
        let gray = try randomDataset(count: 20, rows: 4, cols: 5, channels: 1, seed: 8)
        let a = try gray.paddedAndTinted(side: 8, seed: 42)
        XCTAssertEqual(a, try gray.paddedAndTinted(side: 8, seed: 42))
        XCTAssertNotEqual(a.images, try gray.paddedAndTinted(side: 8, seed: 43).images)
        // Tints differ between images (not one global colour) and between channels.
        let ratios = (0..<20).map { i -> [Double] in
            let image = Array(a.image(i)), source = Array(gray.image(i))
            let (y, x) = (source.indices.max { source[$0] < source[$1] }! / 5, source.indices.max { source[$0] < source[$1] }! % 5)
            let at = ((y + 2) * 8 + x + 1) * 3
            return (0..<3).map { Double(image[at + $0]) / Double(source[y * 5 + x]) }
        }
        XCTAssertGreaterThan(Set(ratios.map { ($0[0] * 20).rounded() }).count, 3)
        for r in ratios.flatMap({ $0 }) { XCTAssertTrue(r >= 0.39 && r <= 1.0, "\(r)") }

        XCTAssertThrowsError(try gray.paddedAndTinted(side: 4, seed: 0)) { error in
            XCTAssertEqual(error as? DataError, .invalidArgument(name: "side", value: "4", expected: "at least 5, the images are 4×5"))
        }
        XCTAssertThrowsError(try a.paddedAndTinted(side: 8, seed: 0)) { error in
            guard case DataError.invalidArgument("channels of the data to tint", "3", _)? = error as? DataError else {
                return XCTFail("\(error)")
            }
        }
        // The result trains like any other set: per-channel statistics and NHWC batches.
        let n = Normalization.computed(from: a)
        XCTAssertEqual(n.channelCount, 3)
        XCTAssertEqual(Array(a.batches(size: 8, normalization: n, augmentation: .shift(1)))[0].shape, [8, 8, 8, 3])
    }
}
