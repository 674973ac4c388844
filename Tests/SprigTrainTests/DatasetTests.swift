// Data sets: class lists, relabelling, seeded shuffles and splits, normalization, batches,
// shift augmentation, the episode sampler, data sources and the built-in subset.

import Foundation
import XCTest
@testable import SprigTrain

/// A 4×4 data set whose sample i has every pixel equal to i (mod 256), so that any output
/// can be traced back to its source sample.
private func tracedDataset(labels: [UInt8], rows: Int = 4, cols: Int = 4) throws -> Dataset {
    let p = rows * cols
    let images = (0..<labels.count).flatMap { i in [UInt8](repeating: UInt8(i % 256), count: p) }
    return try Dataset(images: images, labels: labels, rows: rows, cols: cols)
}

final class DatasetTests: XCTestCase {

    // MARK: --classes

    func testClassSpecsParse() throws {
        let present = Array(0...9)
        XCTAssertEqual(try ClassSelection.parse("0-4", present: present), [0, 1, 2, 3, 4])
        XCTAssertEqual(try ClassSelection.parse("5-9", present: present), [5, 6, 7, 8, 9])
        XCTAssertEqual(try ClassSelection.parse("0,2,4", present: present), [0, 2, 4])
        XCTAssertEqual(try ClassSelection.parse("all", present: present), present)
        XCTAssertEqual(try ClassSelection.parse(" 7, 0-2 ", present: present), [0, 1, 2, 7], "sorted")
        XCTAssertEqual(try ClassSelection.parse("3-3", present: present), [3])
    }

    func testClassSpecErrors() {
        let present = Array(0...9)
        for spec in ["", "a", "4-0", "1-2-3", "0,0", "0-3,2", "256", "-1", "3-", ",", "1,,2", "+1"] {
            XCTAssertThrowsError(try ClassSelection.parse(spec, present: present), "'\(spec)'") { error in
                guard case DataError.classSpec(let s, _)? = error as? DataError else {
                    return XCTFail("'\(spec)': expected classSpec, got \(error)")
                }
                XCTAssertEqual(s, spec)
            }
        }
        XCTAssertThrowsError(try ClassSelection.parse("0-12", present: present)) { error in
            XCTAssertEqual(error as? DataError, .classNotPresent(class: 10, present: present))
            XCTAssertTrue("\(error)".contains("class 10") && "\(error)".contains("0-9"), "\(error)")
        }
    }

    func testFilterRelabelsInTheOrderGiven() throws {
        let data = try tracedDataset(labels: [5, 0, 9, 6, 5, 7, 8, 1])
        let target = try data.filtered(classes: [5, 6, 7, 8, 9])
        XCTAssertEqual(target.labels, [0, 4, 1, 0, 2, 3])   // 5→0, 9→4, 6→1, 5→0, 7→2, 8→3
        XCTAssertEqual(target.images.enumerated().filter { $0.offset % 16 == 0 }.map(\.element), [0, 2, 3, 4, 5, 6],
                       "file order kept, images travel with their labels")
        let reversed = try data.filtered(classes: [9, 5])
        XCTAssertEqual(reversed.labels, [1, 0, 1], "9→0, 5→1")
        XCTAssertThrowsError(try data.filtered(classes: [5, 3])) { error in
            XCTAssertEqual(error as? DataError, .classNotPresent(class: 3, present: [0, 1, 5, 6, 7, 8, 9]))
        }
        XCTAssertThrowsError(try data.filtered(classes: [5, 5]))
        XCTAssertThrowsError(try data.filtered(classes: []))
    }

    func testDatasetInitValidates() {
        XCTAssertThrowsError(try Dataset(images: [0, 0, 0], labels: [0], rows: 2, cols: 2))
        XCTAssertThrowsError(try Dataset(images: [], labels: [], rows: 0, cols: 2))
    }

    // MARK: Shuffles and splits

    func testPermutationIsSeededAndStable() {
        let a = Dataset.permutation(count: 100, seed: 7)
        XCTAssertEqual(a, Dataset.permutation(count: 100, seed: 7))
        XCTAssertNotEqual(a, Dataset.permutation(count: 100, seed: 8))
        XCTAssertEqual(a.sorted(), Array(0..<100))
        // Pinned so that a change of generator or shuffle (which would silently change every
        // experiment's data order) fails here. Cross-checked against an independent Python
        // SplitMix64 + Lemire bounded draw + Fisher–Yates (i from n−1 down to 1).
        XCTAssertEqual(Dataset.permutation(count: 10, seed: 42), DatasetTests.pinnedPermutation)
    }
    static let pinnedPermutation = [8, 3, 6, 5, 4, 0, 9, 2, 1, 7]

    func testDataRNGBoundedDrawsStayInRangeAndCoverIt() {
        var rng = DataRNG(seed: 1)
        var seen = [Int](repeating: 0, count: 5)
        for _ in 0..<1000 { seen[rng.next(in: -2...2) + 2] += 1 }
        XCTAssertTrue(seen.allSatisfy { $0 > 150 && $0 < 250 }, "\(seen)")
    }

    func testShuffledKeepsPairsTogether() throws {
        let data = try tracedDataset(labels: (0..<50).map { UInt8($0 % 7) })
        let s = data.shuffled(seed: 3)
        XCTAssertEqual(s, data.shuffled(seed: 3))
        XCTAssertNotEqual(s.labels, data.labels)
        for j in 0..<s.count {
            let source = Int(s.images[j * 16])
            XCTAssertEqual(s.labels[j], data.labels[source])
        }
    }

    func testSplitIsDisjointAndComplete() throws {
        let data = try tracedDataset(labels: (0..<100).map { UInt8($0 % 4) })
        let (train, validation) = try data.split(validationCount: 30, seed: 11)
        XCTAssertEqual(train.count, 70)
        XCTAssertEqual(validation.count, 30)
        let ids = (train.images + validation.images).enumerated().filter { $0.offset % 16 == 0 }.map { Int($0.element) }
        XCTAssertEqual(ids.sorted(), Array(0..<100))
        XCTAssertEqual(try data.split(validationFraction: 0.3, seed: 11).validation, validation)
        XCTAssertThrowsError(try data.split(validationCount: 101, seed: 0))
    }

    func testStratifiedSplitKeepsClassBalance() throws {
        // 60 of class 0, 30 of class 1, 10 of class 2; 20% validation → 12, 6, 2.
        let labels = [UInt8](repeating: 0, count: 60) + [UInt8](repeating: 1, count: 30) + [UInt8](repeating: 2, count: 10)
        let data = try tracedDataset(labels: labels)
        let (train, validation) = try data.split(validationCount: 20, seed: 5, stratified: true)
        XCTAssertEqual(Array(validation.classCounts[0..<3]), [12, 6, 2])
        XCTAssertEqual(Array(train.classCounts[0..<3]), [48, 24, 8])
    }

    // MARK: Normalization and batches

    func testNormalization() throws {
        let n = Normalization.fashionMNIST
        XCTAssertEqual(n.mean, [0.2860])
        XCTAssertEqual(n.std, [0.3530])
        XCTAssertEqual(n.apply(0), (0 - 0.2860) / 0.3530, accuracy: 1e-6)
        XCTAssertEqual(n.apply(255), (1 - 0.2860) / 0.3530, accuracy: 1e-6)
        // Half black, half white pixels: mean 0.5, population std 0.5.
        let data = try Dataset(images: [0, 255, 0, 255, 255, 0, 255, 0], labels: [0, 1], rows: 2, cols: 2)
        let computed = Normalization.computed(from: data)
        XCTAssertEqual(computed.mean.count, 1)
        XCTAssertEqual(computed.mean[0], 0.5, accuracy: 1e-7)
        XCTAssertEqual(computed.std[0], 0.5, accuracy: 1e-7)
        XCTAssertEqual(computed.normalize([0, 255]), [-1, 1])
    }

    func testBatchesAreNHWCAndCoverEverySampleOnce() throws {
        let data = try tracedDataset(labels: (0..<10).map { UInt8($0 % 3) })
        let unit = Normalization.unit
        let batches = Array(data.batches(size: 4, normalization: unit))
        XCTAssertEqual(batches.map(\.count), [4, 4, 2])
        XCTAssertEqual(batches[0].shape, [4, 4, 4, 1])
        XCTAssertEqual(batches[0].images.count, 4 * 4 * 4)
        XCTAssertEqual(batches[1].labels, [1, 2, 0, 1])
        XCTAssertEqual(batches[1].images[16], 5 / 255, "second image of batch 1 is sample 5")
        XCTAssertEqual(Array(data.batches(size: 4, dropLast: true)).map(\.count), [4, 4])
        XCTAssertEqual(data.batches(size: 4).batchCount, 3)

        let shuffled = Array(data.batches(size: 3, normalization: unit, shuffleSeed: 9))
        XCTAssertEqual(shuffled, Array(data.batches(size: 3, normalization: unit, shuffleSeed: 9)))
        let order = shuffled.flatMap { b in (0..<b.count).map { Int((b.images[$0 * 16] * 255).rounded()) } }
        XCTAssertEqual(order, Dataset.permutation(count: 10, seed: 9))
    }

    func testShiftAugmentationMovesPixelsAndFillsBackground() throws {
        // One bright pixel at (row 4, col 3) of an 8×8 image.
        var image = [UInt8](repeating: 0, count: 64)
        image[4 * 8 + 3] = 200
        let data = try Dataset(images: [UInt8]((0..<300).map { _ in image }.joined()),
                               labels: [UInt8](repeating: 0, count: 300), rows: 8, cols: 8)
        let n = Normalization.fashionMNIST
        let batch = data.makeBatch(indices: Array(0..<300), normalization: n, augmentation: .shift(2), augmentationSeed: 4)
        XCTAssertEqual(batch, data.makeBatch(indices: Array(0..<300), normalization: n, augmentation: .shift(2),
                                             augmentationSeed: 4), "seeded")
        var shifts = Set<[Int]>()
        for j in 0..<300 {
            let out = Array(batch.images[(j * 64)..<((j + 1) * 64)])
            let bright = out.indices.filter { out[$0] == n.apply(200) }
            XCTAssertEqual(bright.count, 1)
            let (dy, dx) = (bright[0] / 8 - 4, bright[0] % 8 - 3)
            XCTAssertTrue(abs(dy) <= 2 && abs(dx) <= 2, "shift (\(dy), \(dx)) beyond ±2")
            XCTAssertEqual(out.filter { $0 == n.apply(0) }.count, 63, "everything else is background")
            shifts.insert([dy, dx])
        }
        XCTAssertEqual(shifts.count, 25, "all 5×5 shifts occur in 300 draws")

        // A pixel in the corner falls off the image for some shifts: zero fill, nothing wraps.
        var corner = [UInt8](repeating: 0, count: 64)
        corner[0] = 255
        let edge = try Dataset(images: [UInt8]((0..<50).map { _ in corner }.joined()),
                               labels: [UInt8](repeating: 0, count: 50), rows: 8, cols: 8)
        let shifted = edge.makeBatch(indices: Array(0..<50), normalization: .unit, augmentation: .shift(2), augmentationSeed: 1)
        var lost = 0
        for j in 0..<50 {
            let out = shifted.images[(j * 64)..<((j + 1) * 64)]
            let lit = out.indices.filter { out[$0] == 1 }
            XCTAssertLessThanOrEqual(lit.count, 1)
            if lit.isEmpty { lost += 1 } else { XCTAssertTrue((lit[0] - j * 64) / 8 <= 2 && (lit[0] - j * 64) % 8 <= 2) }
        }
        XCTAssertGreaterThan(lost, 0, "negative shifts push the corner pixel out")
        XCTAssertEqual(data.makeBatch(indices: [0], normalization: n).images, n.normalize(image), "no augmentation = identity")
    }

    // MARK: Episodes

    /// 5 classes (labels 0...4) × 20 samples, interleaved.
    private func episodeLabels() -> [UInt8] { (0..<100).map { UInt8($0 % 5) } }

    func testEpisodeHasExactlyKPerClassAndDisjointQuery() throws {
        let labels = episodeLabels()
        let sampler = EpisodeSampler(labels: labels)
        let e = try sampler.sample(nWay: 5, kShot: 5, query: .perClass(10), seed: 3)
        XCTAssertEqual(e.classes, [0, 1, 2, 3, 4])
        XCTAssertEqual(e.supportIndices.count, 25)
        XCTAssertEqual(e.queryIndices.count, 50)
        XCTAssertTrue(Set(e.supportIndices).isDisjoint(with: e.queryIndices))
        XCTAssertEqual(Set(e.supportIndices).count, 25)
        XCTAssertEqual(Set(e.queryIndices).count, 50)
        for c in 0..<5 {
            XCTAssertEqual(e.supportLabels.filter { $0 == c }.count, 5)
            XCTAssertEqual(e.queryLabels.filter { $0 == c }.count, 10)
        }
        for (i, l) in zip(e.supportIndices + e.queryIndices, e.supportLabels + e.queryLabels) {
            XCTAssertEqual(Int(labels[i]), e.classes[l], "episode label must match the data label")
        }
    }

    func testEpisodeDeterminismBySeed() throws {
        let sampler = EpisodeSampler(labels: episodeLabels())
        let a = try sampler.sample(nWay: 5, kShot: 1, query: .perClass(3), seed: 10)
        XCTAssertEqual(a, try sampler.sample(nWay: 5, kShot: 1, query: .perClass(3), seed: 10))
        XCTAssertNotEqual(a.supportIndices, try sampler.sample(nWay: 5, kShot: 1, query: .perClass(3), seed: 11).supportIndices)
    }

    func testEpisodeAllRemainingQueryAndFewerWays() throws {
        let sampler = EpisodeSampler(labels: episodeLabels())
        let e = try sampler.sample(nWay: 5, kShot: 20 - 7, query: .allRemaining, seed: 1)
        XCTAssertEqual((e.supportIndices + e.queryIndices).sorted(), Array(0..<100))
        XCTAssertEqual(e.queryIndices.count, 5 * 7)

        let three = try sampler.sample(nWay: 3, kShot: 2, query: .allRemaining, seed: 2)
        XCTAssertEqual(three.classes.count, 3)
        XCTAssertEqual(three.classes, three.classes.sorted())
        XCTAssertEqual(three.supportIndices.count + three.queryIndices.count, 60)
        XCTAssertEqual(Set(three.supportLabels + three.queryLabels), [0, 1, 2])
    }

    func testEpisodeErrors() {
        var labels = episodeLabels()
        labels += [7, 7, 7]  // class 7 has only 3 samples
        let sampler = EpisodeSampler(labels: labels)
        XCTAssertThrowsError(try sampler.sample(nWay: 6, kShot: 5, query: .perClass(0), seed: 0)) { error in
            XCTAssertEqual(error as? DataError, .notEnoughSamples(class: 7, available: 3, required: 5))
            XCTAssertTrue("\(error)".contains("class 7"), "\(error)")
        }
        XCTAssertThrowsError(try sampler.sample(nWay: 5, kShot: 15, query: .perClass(6), seed: 0)) { error in
            guard case DataError.notEnoughSamples(_, 20, 21)? = error as? DataError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try sampler.sample(nWay: 7, kShot: 1, query: .allRemaining, seed: 0))
        XCTAssertThrowsError(try sampler.sample(nWay: 5, kShot: 0, query: .allRemaining, seed: 0))
        XCTAssertThrowsError(try sampler.sample(nWay: 5, kShot: 1, query: .perClass(-1), seed: 0))
    }

    // MARK: Sources

    func testDataSourceArguments() {
        XCTAssertEqual(DataSource(argument: "builtin"), .builtin)
        XCTAssertEqual(DataSource(argument: "fashion-mnist"), .fashionMNIST)
        XCTAssertEqual(DataSource(argument: "/data/fm"), .directory("/data/fm"))
        XCTAssertEqual(DataSource.default, .builtin)
    }

    func testDirectorySourceFindsRawAndGzipFiles() throws {
        let dir = NSTemporaryDirectory() + "sprig-source-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let train = try tracedDataset(labels: [0, 1, 2])
        let test = try tracedDataset(labels: [2, 1])
        try train.write(imagesPath: dir + "/train-images-idx3-ubyte.gz", labelsPath: dir + "/train-labels-idx1-ubyte")
        XCTAssertThrowsError(try DataSource.directory(dir).load()) { error in
            guard case DataError.sourceMissing(let p, let hint)? = error as? DataError else { return XCTFail("\(error)") }
            XCTAssertTrue(p.hasSuffix("t10k-images-idx3-ubyte[.gz]"), p)
            XCTAssertTrue(hint.contains("t10k-labels-idx1-ubyte"), hint)
        }
        // A mistyped source is not a directory at all: said so, naming the word given.
        XCTAssertThrowsError(try DataSource(argument: "fashion_mnist").load()) { error in
            guard case DataError.sourceMissing(let p, let hint)? = error as? DataError else { return XCTFail("\(error)") }
            XCTAssertEqual(p, "fashion_mnist")
            XCTAssertTrue(hint.hasPrefix("it is not a directory; --data takes builtin, fashion-mnist"), hint)
        }
        try test.write(imagesPath: dir + "/t10k-images-idx3-ubyte", labelsPath: dir + "/t10k-labels-idx1-ubyte.gz")
        let loaded = try DataSource.directory(dir).load()
        XCTAssertEqual(loaded.train, train)
        XCTAssertEqual(loaded.test, test)
    }

    func testMissingFashionMNISTSaysHowToInstall() {
        XCTAssertThrowsError(try DataSource.findFiles(in: "/nonexistent-sprig", hint: DataSource.fashionMNISTHint)) { error in
            XCTAssertTrue("\(error)".contains("apt-get install dataset-fashion-mnist"), "\(error)")
        }
        if FileManager.default.fileExists(atPath: DataSource.fashionMNISTDirectory) {
            XCTAssertEqual(try DataSource.fashionMNIST.files().trainImages,
                           DataSource.fashionMNISTDirectory + "/train-images-idx3-ubyte.gz")
        }
    }

    func testBuiltinSubsetHas1000And200PerClass() throws {
        let data = try DataSource.builtin.load()
        XCTAssertEqual(data.train.count, 10_000)
        XCTAssertEqual(data.test.count, 2_000)
        XCTAssertEqual([data.train.rows, data.train.cols, data.test.rows, data.test.cols], [28, 28, 28, 28])
        XCTAssertEqual(Array(data.train.classCounts[0..<10]), [Int](repeating: 1_000, count: 10))
        XCTAssertEqual(Array(data.test.classCounts[0..<10]), [Int](repeating: 200, count: 10))
        XCTAssertEqual(data.train.labelsPresent, Array(0...9))
        // First official training image is an ankle boot (label 9); subset keeps file order.
        XCTAssertEqual(data.train.labels.first, 9)
    }

    func testBuiltinSubsetIsFirstNPerClassOfTheRealSet() throws {
        let files: DataFiles
        do { files = try DataSource.fashionMNIST.files() } catch { throw XCTSkip("dataset-fashion-mnist not installed") }
        let builtin = try DataSource.builtin.load()
        for (imagesPath, labelsPath, perClass, subset) in [
            (files.trainImages, files.trainLabels, 1_000, builtin.train),
            (files.testImages, files.testLabels, 200, builtin.test),
        ] {
            let full = try Dataset.load(imagesPath: imagesPath, labelsPath: labelsPath)
            var taken = [Int](repeating: 0, count: 256)
            var keep: [Int] = []
            for (i, l) in full.labels.enumerated() where taken[Int(l)] < perClass {
                taken[Int(l)] += 1
                keep.append(i)
            }
            XCTAssertEqual(full.subset(keep), subset, "\(imagesPath): subset must be the first \(perClass) per class")
        }
    }

    func testBuiltinEnvironmentOverride() throws {
        let dir = NSTemporaryDirectory() + "sprig-builtin-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer {
            unsetenv(DataSource.builtinEnvironmentVariable)
            try? FileManager.default.removeItem(atPath: dir)
        }
        setenv(DataSource.builtinEnvironmentVariable, dir, 1)
        XCTAssertThrowsError(try DataSource.builtinDirectory()) { error in
            XCTAssertTrue("\(error)".contains(dir) && "\(error)".contains(DataSource.builtinEnvironmentVariable), "\(error)")
        }
        let tiny = try tracedDataset(labels: [3, 1])
        try tiny.write(imagesPath: dir + "/train-images-idx3-ubyte.gz", labelsPath: dir + "/train-labels-idx1-ubyte.gz")
        try tiny.write(imagesPath: dir + "/t10k-images-idx3-ubyte.gz", labelsPath: dir + "/t10k-labels-idx1-ubyte.gz")
        XCTAssertEqual(try DataSource.builtinDirectory(), dir)
        XCTAssertEqual(try DataSource.builtin.load().test, tiny)
    }
}
