// In-memory image classification data: uint8 images plus uint8 labels, and the operations
// the trainer needs on them — class selection with relabelling, seeded shuffles and splits,
// per-channel normalization to Float, and mini-batches in NHWC layout with optional random
// shifts.
//
// Shape legend (used throughout):
//   N   number of samples            H, W  rows, cols (28, 28 for Fashion-MNIST)
//   B   batch size                   C     channels: 1 gray, 3 RGB (1...4 accepted)
//   images  [UInt8]  N·H·W·C  channels interleaved: sample i, row y, col x, channel c at
//                             ((i·H + y)·W + x)·C + c
//   batch   [Float]  B·H·W·C  NHWC, the same interleaving; with C = 1 identical to NHW
//   table   [Float]  256·C    normalized value of byte v in channel c at v·C + c
//
// On disk (IDX, see IDX.swift) an images file is ndim 3 (N, H, W) for C = 1 and ndim 4
// (N, H, W, C) otherwise; labels are ndim 1 (N).

/// A labelled set of images of `channels` interleaved channels, stored as bytes.
public struct Dataset: Equatable, Sendable {
    /// `count × rows × cols × channels` bytes, row-major with channels innermost, 0 = background.
    public private(set) var images: [UInt8]
    /// One label per image.
    public private(set) var labels: [UInt8]
    /// Image height.
    public let rows: Int
    /// Image width.
    public let cols: Int
    /// Values per pixel: 1 for gray, 3 for RGB.
    public let channels: Int

    /// The channel counts a data set may have.
    public static let channelRange = 1...4

    /// The names of the axes of an images file, outermost first (for IDX error messages).
    static let imageAxes = ["N", "H", "W", "C"]

    /// Number of samples.
    public var count: Int { labels.count }
    /// Bytes per image (`rows × cols × channels`).
    public var valuesPerImage: Int { rows * cols * channels }
    /// The shape of one image, `[rows, cols, channels]` (HWC).
    public var shape: [Int] { [rows, cols, channels] }

    /// ```swift
    /// // Two 1×2 RGB images: red|green and blue|white.
    /// let data = try Dataset(images: [255, 0, 0,  0, 255, 0,   0, 0, 255,  255, 255, 255],
    ///                        labels: [0, 1], rows: 1, cols: 2, channels: 3)
    /// data.valuesPerImage  // 6
    /// ```
    ///
    /// - Parameter images: `labels.count × rows × cols × channels` bytes, channels interleaved.
    /// - Throws: `DataError.invalidArgument` if `rows` or `cols` is not positive, `channels`
    ///   is outside `1...4`, or `images.count != labels.count × rows × cols × channels`.
    public init(images: [UInt8], labels: [UInt8], rows: Int, cols: Int, channels: Int = 1) throws {
        guard rows > 0, cols > 0 else {
            throw DataError.invalidArgument(name: "image size", value: "\(rows)×\(cols)", expected: "positive rows and cols")
        }
        guard Dataset.channelRange.contains(channels) else {
            throw DataError.invalidArgument(name: "channels", value: "\(channels)",
                                            expected: "\(Dataset.channelRange) (1 gray, 3 RGB)")
        }
        let (pixels, o1) = rows.multipliedReportingOverflow(by: cols)
        let (values, o2) = pixels.multipliedReportingOverflow(by: channels)
        let (total, o3) = values.multipliedReportingOverflow(by: labels.count)
        guard !o1, !o2, !o3, images.count == total else {
            throw DataError.invalidArgument(name: "image byte count", value: "\(images.count)",
                                            expected: "\(labels.count) labels × \(rows) × \(cols) × \(channels)")
        }
        self.init(unchecked: images, labels: labels, rows: rows, cols: cols, channels: channels)
    }

    /// Loads an images file and a labels file (IDX ndim 1), raw or gzip'd.
    ///
    /// The images file is IDX ndim 3, `(N, H, W)`, for gray images (C = 1), or ndim 4,
    /// `(N, H, W, C)`, with `C` in `1...4` interleaved channels.
    ///
    /// - Throws: the `IDX.read` errors (an ndim other than 3 or 4 is `DataError.idx` with
    ///   field `.dimensionCount`), `DataError.countMismatch` naming both files when they hold
    ///   different numbers of samples, and `DataError.idx` naming the images file and the
    ///   dimension for a file of 0 images (nothing can be trained, calibrated or scored on
    ///   it), 0 rows or cols, or a channel count outside `1...4` (field `.dimension(3)`).
    public static func load(imagesPath: String, labelsPath: String) throws -> Dataset {
        let images = try IDX.read(path: imagesPath, dimensionCounts: [3, 4], axisNames: imageAxes)
        let labels = try IDX.read(path: labelsPath, dimensionCounts: [1], axisNames: ["N"])
        let d = images.dimensions
        let (n, rows, cols, channels) = (d[0], d[1], d[2], d.count == 4 ? d[3] : 1)
        guard n == labels.dimensions[0] else {
            throw DataError.countMismatch(imagesPath: imagesPath, images: n,
                                          labelsPath: labelsPath, labels: labels.dimensions[0])
        }
        guard n > 0 else { throw DataError.idx(path: imagesPath, field: .dimension(0), found: "0", expected: "at least one image") }
        guard rows > 0 else { throw DataError.idx(path: imagesPath, field: .dimension(1), found: "0", expected: "> 0") }
        guard cols > 0 else { throw DataError.idx(path: imagesPath, field: .dimension(2), found: "0", expected: "> 0") }
        guard channelRange.contains(channels) else {
            throw DataError.idx(path: imagesPath, field: .dimension(3), found: "\(channels)",
                                expected: "\(channelRange) channels (C of N, H, W, C)")
        }
        return try Dataset(images: images.data, labels: labels.data, rows: rows, cols: cols, channels: channels)
    }

    /// Writes the images and labels as two IDX files (gzip'd if the name ends in `.gz`),
    /// each atomically. Used for fixtures and for the device's shot files.
    ///
    /// The images file has 3 dimensions `(N, H, W)` when `channels == 1` — so a gray set
    /// is written byte for byte as Fashion-MNIST is — and 4 `(N, H, W, C)` otherwise.
    public func write(imagesPath: String, labelsPath: String) throws {
        let dims = channels == 1 ? [count, rows, cols] : [count, rows, cols, channels]
        try IDX.write(IDXArray(dimensions: dims, data: images), to: imagesPath)
        try IDX.write(IDXArray(dimensions: [count], data: labels), to: labelsPath)
    }

    /// The `valuesPerImage` bytes of sample `index`, HWC.
    public func image(_ index: Int) -> ArraySlice<UInt8> {
        images[(index * valuesPerImage)..<((index + 1) * valuesPerImage)]
    }

    // MARK: Classes

    /// The distinct labels, ascending.
    public var labelsPresent: [Int] {
        let counts = classCounts
        return counts.indices.filter { counts[$0] > 0 }
    }

    /// `classCounts[c]` = number of samples labelled `c`; 256 entries.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: 256)
        for l in labels { counts[Int(l)] += 1 }
        return counts
    }

    /// Keeps only the samples of `classes` and relabels them by position: the sample of
    /// `classes[i]` gets label `i`. File order is preserved.
    ///
    /// ```swift
    /// let target = try data.filtered(classes: [5, 6, 7, 8, 9])  // labels 5...9 → 0...4
    /// ```
    ///
    /// - Throws: `DataError.classSpec` for an empty or duplicated list,
    ///   `DataError.classNotPresent` naming the class and the labels present.
    public func filtered(classes: [Int]) throws -> Dataset {
        let spec = classes.map(String.init).joined(separator: ",")
        guard !classes.isEmpty else { throw DataError.classSpec(spec: spec, detail: "no classes given") }
        let present = labelsPresent
        var newLabel = [Int](repeating: -1, count: 256)
        for (i, c) in classes.enumerated() {
            guard (0...255).contains(c), present.contains(c) else {
                throw DataError.classNotPresent(class: c, present: present)
            }
            guard newLabel[c] < 0 else { throw DataError.classSpec(spec: spec, detail: "class \(c) listed twice") }
            newLabel[c] = i
        }
        var keep: [Int] = []
        for (i, l) in labels.enumerated() where newLabel[Int(l)] >= 0 { keep.append(i) }
        var result = subset(keep)
        result.labels = result.labels.map { UInt8(newLabel[Int($0)]) }
        return result
    }

    /// The samples at `indices`, in that order (indices may repeat).
    ///
    /// - Precondition: every index is in `0..<count`.
    public func subset(_ indices: [Int]) -> Dataset {
        let p = valuesPerImage
        var newImages = [UInt8](repeating: 0, count: indices.count * p)
        var newLabels = [UInt8](repeating: 0, count: indices.count)
        images.withUnsafeBufferPointer { src in
            newImages.withUnsafeMutableBufferPointer { dst in
                for (j, i) in indices.enumerated() {
                    precondition(i >= 0 && i < labels.count, "Dataset.subset: index \(i) out of 0..<\(labels.count)")
                    (dst.baseAddress! + j * p).update(from: src.baseAddress! + i * p, count: p)
                    newLabels[j] = labels[i]
                }
            }
        }
        return Dataset(unchecked: newImages, labels: newLabels, rows: rows, cols: cols, channels: channels)
    }

    // MARK: Shuffling and splitting

    /// A seeded permutation of `0..<count`: the same seed gives the same order everywhere.
    public static func permutation(count: Int, seed: UInt64) -> [Int] {
        var order = Array(0..<count)
        var rng = DataRNG(seed: seed)
        rng.shuffle(&order)
        return order
    }

    /// The samples in a seeded random order.
    public func shuffled(seed: UInt64) -> Dataset {
        subset(Dataset.permutation(count: count, seed: seed))
    }

    /// Splits into disjoint parts: a seeded shuffle, then the first `count − validationCount`
    /// samples are `train` and the rest `validation`.
    ///
    /// - Parameter stratified: if true, each class contributes to validation in proportion to
    ///   its size (rounded down per class, then topped up from the largest remainders), so the
    ///   class balance of both parts matches the whole.
    /// - Throws: `DataError.invalidArgument` unless `0 <= validationCount <= count`.
    public func split(validationCount: Int, seed: UInt64, stratified: Bool = false)
        throws -> (train: Dataset, validation: Dataset) {
        guard validationCount >= 0 && validationCount <= count else {
            throw DataError.invalidArgument(name: "validation count", value: "\(validationCount)", expected: "0...\(count)")
        }
        let order = Dataset.permutation(count: count, seed: seed)
        guard stratified else {
            return (subset(Array(order[..<(count - validationCount)])), subset(Array(order[(count - validationCount)...])))
        }
        // Largest-remainder quota per class, then the first `quota` of each class in shuffled order.
        let counts = classCounts
        var quota = counts.map { $0 * validationCount / max(count, 1) }
        var missing = validationCount - quota.reduce(0, +)
        let byRemainder = (0..<256).filter { counts[$0] > 0 }
            .sorted { (counts[$0] * validationCount % max(count, 1), -$0) > (counts[$1] * validationCount % max(count, 1), -$1) }
        for c in byRemainder where missing > 0 && quota[c] < counts[c] { quota[c] += 1; missing -= 1 }
        var taken = [Int](repeating: 0, count: 256)
        var train: [Int] = [], validation: [Int] = []
        for i in order {
            let c = Int(labels[i])
            if taken[c] < quota[c] { taken[c] += 1; validation.append(i) } else { train.append(i) }
        }
        return (subset(train), subset(validation))
    }

    /// Splits with a fraction in `0...1` of the samples (rounded to nearest) for validation.
    public func split(validationFraction: Double, seed: UInt64, stratified: Bool = false)
        throws -> (train: Dataset, validation: Dataset) {
        guard validationFraction >= 0 && validationFraction <= 1 else {
            throw DataError.invalidArgument(name: "validation fraction", value: "\(validationFraction)", expected: "0...1")
        }
        return try split(validationCount: Int((Double(count) * validationFraction).rounded()), seed: seed,
                         stratified: stratified)
    }

    // MARK: Batches

    /// The samples at `indices` as one NHWC Float batch `[B][H][W][C]`, normalized per
    /// channel, optionally shifted.
    ///
    /// ```swift
    /// let rgb = try Dataset(images: [0, 51, 255,  255, 51, 0], labels: [0], rows: 1, cols: 2, channels: 3)
    /// let n = Normalization(mean: [0, 0.2, 0.5], std: [1, 1, 0.5])
    /// rgb.makeBatch(indices: [0], normalization: n).images  // [0, 0, 1,  1, 0, -1]
    /// ```
    ///
    /// - Parameters:
    ///   - normalization: one value per channel, or one value for every channel.
    ///   - augmentation: random shifts to apply, drawn from `augmentationSeed`; all channels
    ///     of a pixel move together, and a pixel shifted in from outside gets, in each
    ///     channel, that channel's normalized value of byte 0.
    /// - Precondition: every index is in `0..<count`, and `normalization` has 1 or
    ///   `channels` values (check with `Normalization.expanded(toChannels:)`, which throws).
    public func makeBatch(indices: [Int], normalization: Normalization = .fashionMNIST,
                          augmentation: Augmentation = .none, augmentationSeed: UInt64 = 0) -> Batch {
        var rng = DataRNG(seed: augmentationSeed)
        return makeBatch(indices: indices, table: normalization.lookupTable(channels: channels),
                         augmentation: augmentation, rng: &rng)
    }

    /// `table` is `Normalization.lookupTable(channels: channels)`: 256·C values, byte v of
    /// channel c at v·C + c.
    func makeBatch(indices: [Int], table: [Float], augmentation: Augmentation, rng: inout DataRNG) -> Batch {
        let (h, w, c, p, maxShift) = (rows, cols, channels, valuesPerImage, augmentation.maxShift)
        precondition(table.count == 256 * c, "Dataset.makeBatch: lookup table of \(table.count) values, \(256 * c) needed")
        var out = [Float](repeating: 0, count: indices.count * p)
        var outLabels = [Int](repeating: 0, count: indices.count)
        images.withUnsafeBufferPointer { src in
            table.withUnsafeBufferPointer { lut in
                out.withUnsafeMutableBufferPointer { dst in
                    for (j, i) in indices.enumerated() {
                        precondition(i >= 0 && i < labels.count, "Dataset.makeBatch: index \(i) out of 0..<\(labels.count)")
                        outLabels[j] = Int(labels[i])
                        let image = src.baseAddress! + i * p
                        let target = dst.baseAddress! + j * p
                        var dy = 0, dx = 0
                        if maxShift > 0 {
                            dy = rng.next(in: -maxShift...maxShift)
                            dx = rng.next(in: -maxShift...maxShift)
                        }
                        // 1. Background: byte 0 of each channel, lut[0·C + k].
                        if dy != 0 || dx != 0 {
                            for q in 0..<(h * w) {
                                for k in 0..<c { target[q * c + k] = lut[k] }
                            }
                        }
                        // 2. out[y][x][k] = in[y − dy][x − dx][k] where the source is inside.
                        let (y0, y1, x0, x1) = (max(0, dy), min(h, h + dy), max(0, dx), min(w, w + dx))
                        guard y0 < y1, x0 < x1 else { continue }
                        for y in y0..<y1 {
                            let sourceRow = image + (y - dy) * w * c
                            let targetRow = target + y * w * c
                            for x in x0..<x1 {
                                let s = (x - dx) * c, t = x * c
                                for k in 0..<c { targetRow[t + k] = lut[Int(sourceRow[s + k]) * c + k] }
                            }
                        }
                    }
                }
            }
        }
        return Batch(images: out, labels: outLabels, rows: rows, cols: cols, channels: channels)
    }

    /// Mini-batches over the whole set, in a seeded random order (or file order).
    ///
    /// ```swift
    /// for epoch in 0..<epochs {
    ///     for batch in train.batches(size: 64, shuffleSeed: seed &+ UInt64(epoch),
    ///                                augmentation: .shift(2)) { ... }
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - size: samples per batch (the last one may be smaller unless `dropLast`).
    ///   - normalization: one value per channel, or one value for every channel.
    ///   - shuffleSeed: `nil` keeps file order.
    ///   - augmentation: random shifts; their random numbers derive from `shuffleSeed`
    ///     (or 0) through a separate stream.
    /// - Precondition: `size > 0`; `normalization` has 1 or `channels` values.
    public func batches(size: Int, normalization: Normalization = .fashionMNIST, shuffleSeed: UInt64? = nil,
                        augmentation: Augmentation = .none, dropLast: Bool = false) -> BatchSequence {
        precondition(size > 0, "batch size must be positive")
        let order = shuffleSeed.map { Dataset.permutation(count: count, seed: $0) } ?? Array(0..<count)
        return BatchSequence(dataset: self, order: order, batchSize: size, table: normalization.lookupTable(channels: channels),
                             augmentation: augmentation, augmentationSeed: deriveDataSeed(shuffleSeed ?? 0, 0xA6),
                             dropLast: dropLast)
    }

    private init(unchecked images: [UInt8], labels: [UInt8], rows: Int, cols: Int, channels: Int) {
        self.images = images
        self.labels = labels
        self.rows = rows
        self.cols = cols
        self.channels = channels
    }
}

/// Parsing of `--classes` arguments.
public enum ClassSelection {
    /// Parses `"all"`, `"0-4"`, `"5-9"`, `"0,2,4"` or mixtures like `"0-2,7"` into an
    /// ascending list of distinct classes, each of which must be present in `present`.
    ///
    /// - Parameter present: the labels found in the data (e.g. `Dataset.labelsPresent`).
    /// - Throws: `DataError.classSpec` for syntax errors, reversed ranges, duplicates and
    ///   numbers outside 0...255; `DataError.classNotPresent` naming the class and the labels
    ///   present.
    public static func parse(_ spec: String, present: [Int]) throws -> [Int] {
        let trimmed = spec.trimmedForClassSpec()
        if trimmed.lowercased() == "all" {
            guard !present.isEmpty else { throw DataError.classSpec(spec: spec, detail: "the data has no labels") }
            return present.sorted()
        }
        guard !trimmed.isEmpty else { throw DataError.classSpec(spec: spec, detail: "empty; use e.g. 0-4, 0,2,4 or all") }
        var seen = Set<Int>()
        for item in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let part = String(item).trimmedForClassSpec()
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false).map { String($0).trimmedForClassSpec() }
            guard !part.isEmpty, bounds.count <= 2 else {
                throw DataError.classSpec(spec: spec, detail: "'\(part)' is not a class or a range a-b")
            }
            var values: [Int] = []
            for b in bounds {
                guard !b.isEmpty, b.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let v = Int(b) else {
                    throw DataError.classSpec(spec: spec, detail: "'\(part)' is not a class or a range a-b")
                }
                guard v <= 255 else {
                    throw DataError.classSpec(spec: spec, detail: "class \(b) is out of range 0...255")
                }
                values.append(v)
            }
            let lo = values[0], hi = values[values.count - 1]
            guard lo <= hi else { throw DataError.classSpec(spec: spec, detail: "range \(part) is reversed") }
            for c in lo...hi {
                guard seen.insert(c).inserted else { throw DataError.classSpec(spec: spec, detail: "class \(c) listed twice") }
            }
        }
        let present = Set(present)
        for c in seen.sorted() where !present.contains(c) {
            throw DataError.classNotPresent(class: c, present: present.sorted())
        }
        return seen.sorted()
    }
}

/// Per-channel pixel normalization `x ↦ (x/255 − mean[c]) / std[c]` for a byte `x` of channel `c`.
///
/// A normalization of one value applies to every channel (broadcast), so `.fashionMNIST`
/// and `.unit` work for gray and RGB data alike.
///
/// ```swift
/// let n = Normalization(mean: [0.5, 0.4, 0.3], std: [0.25, 0.5, 1])
/// n.apply(255, channel: 0)  // (1 − 0.5) / 0.25 = 2
/// n.apply(0, channel: 2)    // (0 − 0.3) / 1 = −0.3
/// ```
public struct Normalization: Equatable, Sendable {
    /// Mean of `x/255`, one per channel (or one for all).
    public private(set) var mean: [Float]
    /// Standard deviation of `x/255`, one per channel (or one for all); each positive.
    public private(set) var std: [Float]

    /// Number of channels described: 1 (broadcast to any channel count) or C.
    public var channelCount: Int { mean.count }

    /// - Precondition: as `validated(mean:std:)`. Use that for values from users or files.
    public init(mean: [Float], std: [Float]) {
        if let problem = Normalization.problem(mean: mean, std: std) { preconditionFailure("\(problem)") }
        self.mean = mean
        self.std = std
    }

    /// One channel, or the same statistics for every channel.
    ///
    /// - Precondition: `std > 0` and both finite.
    public init(mean: Float, std: Float) {
        self.init(mean: [mean], std: [std])
    }

    /// A normalization checked before it is built.
    ///
    /// - Throws: `DataError.invalidArgument` naming the field (`normalization mean`,
    ///   `normalization std`, `normalization std[c]`, ...) and the value, when the lists are
    ///   empty, differ in length, hold more than 4 values, or a value is not finite or a std
    ///   is not positive.
    public static func validated(mean: [Float], std: [Float]) throws -> Normalization {
        if let problem = problem(mean: mean, std: std) { throw problem }
        return Normalization(mean: mean, std: std)
    }

    /// The first thing wrong with `mean` and `std`, or nil.
    static func problem(mean: [Float], std: [Float]) -> DataError? {
        guard (1...Dataset.channelRange.upperBound).contains(mean.count) else {
            return .invalidArgument(name: "normalization mean", value: "\(mean.count) values",
                                    expected: "1...\(Dataset.channelRange.upperBound) (one per channel)")
        }
        guard std.count == mean.count else {
            return .invalidArgument(name: "normalization std", value: "\(std.count) values",
                                    expected: "\(mean.count), as many as the means")
        }
        for (c, m) in mean.enumerated() where !m.isFinite {
            return .invalidArgument(name: "normalization mean[\(c)]", value: "\(m)", expected: "a finite number")
        }
        for (c, s) in std.enumerated() where !(s.isFinite && s > 0) {
            return .invalidArgument(name: "normalization std[\(c)]", value: "\(s)", expected: "finite and > 0")
        }
        return nil
    }

    /// The usual Fashion-MNIST training-set statistics: mean 0.2860, std 0.3530 (of x/255
    /// over all 60,000 training images). The default throughout Sprig.
    public static let fashionMNIST = Normalization(mean: 0.2860, std: 0.3530)

    /// `x/255` only, in every channel.
    public static let unit = Normalization(mean: 0, std: 1)

    /// This normalization with one value per channel for `channels` channels: a 1-value
    /// normalization is repeated, one of `channels` values is returned as it is.
    ///
    /// ```swift
    /// Normalization.unit.expanded(toChannels: 3).mean  // [0, 0, 0]
    /// ```
    ///
    /// - Throws: `DataError.invalidArgument` naming both counts when this normalization has
    ///   neither 1 nor `channels` values, or `channels` is outside `1...4`.
    public func expanded(toChannels channels: Int) throws -> Normalization {
        guard Dataset.channelRange.contains(channels) else {
            throw DataError.invalidArgument(name: "channels", value: "\(channels)", expected: "\(Dataset.channelRange)")
        }
        if channelCount == channels { return self }
        guard channelCount == 1 else {
            throw DataError.invalidArgument(name: "normalization channels", value: "\(channelCount)",
                                            expected: channels == 1 ? "1, the channels of the data"
                                                : "1 or \(channels), the channels of the data")
        }
        return Normalization(mean: [Float](repeating: mean[0], count: channels),
                             std: [Float](repeating: std[0], count: channels))
    }

    /// Mean and (population) standard deviation of `x/255` per channel over every pixel of
    /// `dataset`, computed in Double from a 256-bin histogram per channel. Use on the
    /// training split only. A constant channel (std 0) falls back to std 1.
    ///
    /// - Returns: `dataset.channels` values (one for a gray set).
    /// - Complexity: O(N·H·W·C), one pass over the bytes.
    public static func computed(from dataset: Dataset) -> Normalization {
        let c = dataset.channels
        // histogram[k·256 + v] = how many bytes of channel k equal v.
        var histogram = [Int](repeating: 0, count: 256 * c)
        dataset.images.withUnsafeBufferPointer { px in
            histogram.withUnsafeMutableBufferPointer { hist in
                var q = 0
                while q < px.count {
                    for k in 0..<c { hist[k * 256 + Int(px[q + k])] += 1 }
                    q += c
                }
            }
        }
        var means: [Float] = [], stds: [Float] = []
        for k in 0..<c {
            var n = 0.0, sum = 0.0, sumSquares = 0.0
            for v in 0..<256 where histogram[k * 256 + v] > 0 {
                let count = Double(histogram[k * 256 + v]), x = Double(v) / 255
                n += count
                sum += count * x
                sumSquares += count * x * x
            }
            let mean = sum / max(n, 1)
            let std = max(sumSquares / max(n, 1) - mean * mean, 0).squareRoot()
            means.append(Float(mean))
            stds.append(std > 1e-12 ? Float(std) : 1)
        }
        return Normalization(mean: means, std: stds)
    }

    /// The normalized value of one byte of `channel` (any channel for a 1-value normalization).
    ///
    /// - Precondition: `channel` is in `0..<channelCount` unless `channelCount == 1`.
    @inlinable
    public func apply(_ pixel: UInt8, channel: Int = 0) -> Float {
        let k = mean.count == 1 ? 0 : channel
        return (Float(pixel) / 255 - mean[k]) / std[k]
    }

    /// All 256 normalized values of each of `channels` channels: byte `v` of channel `c`
    /// at `v·channels + c` (one row of C values per byte, the order of interleaved pixels).
    ///
    /// - Precondition: `channelCount` is 1 or `channels`.
    public func lookupTable(channels: Int) -> [Float] {
        precondition(channelCount == 1 || channelCount == channels,
                     "normalization has \(channelCount) channels, the data \(channels)")
        var table = [Float](repeating: 0, count: 256 * channels)
        for v in 0..<256 {
            for k in 0..<channels { table[v * channels + k] = apply(UInt8(v), channel: k) }
        }
        return table
    }

    /// Normalizes a run of interleaved HWC bytes: byte `i` belongs to channel
    /// `i mod channelCount` (every byte to the one channel of a 1-value normalization).
    ///
    /// - Precondition: for more than one channel, `pixels.count` is a multiple of `channelCount`.
    public func normalize(_ pixels: [UInt8]) -> [Float] {
        let c = channelCount
        precondition(pixels.count % c == 0, "normalize: \(pixels.count) bytes are not whole pixels of \(c) channels")
        let table = lookupTable(channels: c)
        var out = [Float](repeating: 0, count: pixels.count)
        for i in pixels.indices { out[i] = table[Int(pixels[i]) * c + i % c] }
        return out
    }
}

/// Light training-time augmentation.
public struct Augmentation: Equatable, Sendable {
    /// Each image is shifted by `dy, dx` drawn uniformly from `-maxShift...maxShift`, all
    /// channels of a pixel together, filling uncovered pixels with background (raw 0 in
    /// every channel before normalization).
    public var maxShift: Int

    public init(maxShift: Int) {
        precondition(maxShift >= 0, "maxShift must be non-negative")
        self.maxShift = maxShift
    }

    /// No augmentation.
    public static let none = Augmentation(maxShift: 0)
    /// Random shift by up to `pixels` in each direction.
    public static func shift(_ pixels: Int) -> Augmentation { Augmentation(maxShift: pixels) }
}

/// One mini-batch: NHWC Float images `[B][H][W][C]` and integer labels.
public struct Batch: Equatable, Sendable {
    /// `count × rows × cols × channels` values, channels innermost.
    public var images: [Float]
    /// `count` labels.
    public var labels: [Int]
    /// Image height H.
    public var rows: Int
    /// Image width W.
    public var cols: Int
    /// Channels C of each pixel.
    public var channels: Int
    /// Samples in this batch.
    public var count: Int { labels.count }
    /// `[count, rows, cols, channels]`, the shape of the input tensor.
    public var shape: [Int] { [count, rows, cols, channels] }
}

/// The batches of one pass over a data set; see `Dataset.batches`.
public struct BatchSequence: Sequence, IteratorProtocol, Sendable {
    let dataset: Dataset
    let order: [Int]
    let batchSize: Int
    /// `Normalization.lookupTable(channels:)` for the data set's channels.
    let table: [Float]
    let augmentation: Augmentation
    var rng: DataRNG
    let dropLast: Bool
    var position = 0

    init(dataset: Dataset, order: [Int], batchSize: Int, table: [Float], augmentation: Augmentation,
         augmentationSeed: UInt64, dropLast: Bool) {
        self.dataset = dataset
        self.order = order
        self.batchSize = batchSize
        self.table = table
        self.augmentation = augmentation
        self.rng = DataRNG(seed: augmentationSeed)
        self.dropLast = dropLast
    }

    /// Batches this sequence yields in total.
    public var batchCount: Int { dropLast ? order.count / batchSize : (order.count + batchSize - 1) / batchSize }

    public mutating func next() -> Batch? {
        let remaining = order.count - position
        guard remaining > 0, !(dropLast && remaining < batchSize) else { return nil }
        let n = Swift.min(batchSize, remaining)
        let indices = Array(order[position..<(position + n)])
        position += n
        return dataset.makeBatch(indices: indices, table: table, augmentation: augmentation, rng: &rng)
    }
}

fileprivate extension String {
    func trimmedForClassSpec() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
