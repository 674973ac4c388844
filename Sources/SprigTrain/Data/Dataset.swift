// In-memory image classification data: uint8 images plus uint8 labels, and the operations
// the trainer needs on them — class selection with relabelling, seeded shuffles and splits,
// normalization to Float, and mini-batches in NHWC layout with optional random shifts.
//
// Shape legend (used throughout):
//   N   number of samples            H, W  rows, cols (28, 28 for Fashion-MNIST)
//   B   batch size                   C     channels (always 1 here)
//   images  [UInt8]  N·H·W    sample i, row y, col x at  i·H·W + y·W + x
//   batch   [Float]  B·H·W·C  NHWC; with C = 1 identical to NHW

/// A labelled set of grayscale images, stored as bytes.
public struct Dataset: Equatable, Sendable {
    /// `count × rows × cols` pixels, row-major, 0 = background.
    public private(set) var images: [UInt8]
    /// One label per image.
    public private(set) var labels: [UInt8]
    /// Image height.
    public let rows: Int
    /// Image width.
    public let cols: Int

    /// Number of samples.
    public var count: Int { labels.count }
    /// Pixels per image (`rows × cols`).
    public var pixelsPerImage: Int { rows * cols }

    /// - Throws: `DataError.invalidArgument` if `rows` or `cols` is not positive or
    ///   `images.count != labels.count × rows × cols`.
    public init(images: [UInt8], labels: [UInt8], rows: Int, cols: Int) throws {
        guard rows > 0, cols > 0 else {
            throw DataError.invalidArgument(name: "image size", value: "\(rows)×\(cols)", expected: "positive rows and cols")
        }
        let (pixels, o1) = rows.multipliedReportingOverflow(by: cols)
        let (total, o2) = pixels.multipliedReportingOverflow(by: labels.count)
        guard !o1, !o2, images.count == total else {
            throw DataError.invalidArgument(name: "image byte count", value: "\(images.count)",
                                            expected: "\(labels.count) labels × \(rows) × \(cols)")
        }
        self.images = images
        self.labels = labels
        self.rows = rows
        self.cols = cols
    }

    /// Loads an images file (IDX ndim 3) and a labels file (IDX ndim 1), raw or gzip'd.
    ///
    /// - Throws: the `IDX.read` errors, `DataError.countMismatch` naming both files
    ///   when they hold different numbers of samples, and `DataError.idx` for a file of
    ///   0 images (nothing can be trained, calibrated or scored on it).
    public static func load(imagesPath: String, labelsPath: String) throws -> Dataset {
        let images = try IDX.read(path: imagesPath, dimensionCount: 3)
        let labels = try IDX.read(path: labelsPath, dimensionCount: 1)
        let (n, rows, cols) = (images.dimensions[0], images.dimensions[1], images.dimensions[2])
        guard n == labels.dimensions[0] else {
            throw DataError.countMismatch(imagesPath: imagesPath, images: n,
                                          labelsPath: labelsPath, labels: labels.dimensions[0])
        }
        guard n > 0 else { throw DataError.idx(path: imagesPath, field: .dimension(0), found: "0", expected: "at least one image") }
        guard rows > 0 else { throw DataError.idx(path: imagesPath, field: .dimension(1), found: "0", expected: "> 0") }
        guard cols > 0 else { throw DataError.idx(path: imagesPath, field: .dimension(2), found: "0", expected: "> 0") }
        return try Dataset(images: images.data, labels: labels.data, rows: rows, cols: cols)
    }

    /// Writes the images and labels as two IDX files (gzip'd if the name ends in `.gz`),
    /// each atomically. Used for fixtures and for the device's shot files.
    public func write(imagesPath: String, labelsPath: String) throws {
        try IDX.write(IDXArray(dimensions: [count, rows, cols], data: images), to: imagesPath)
        try IDX.write(IDXArray(dimensions: [count], data: labels), to: labelsPath)
    }

    /// The pixels of sample `index`.
    public func image(_ index: Int) -> ArraySlice<UInt8> {
        images[(index * pixelsPerImage)..<((index + 1) * pixelsPerImage)]
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
        let p = pixelsPerImage
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
        return Dataset(unchecked: newImages, labels: newLabels, rows: rows, cols: cols)
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

    /// The samples at `indices` as one NHWC Float batch, normalized, optionally shifted.
    ///
    /// - Parameters:
    ///   - augmentation: random shifts to apply, drawn from `augmentationSeed`.
    /// - Precondition: every index is in `0..<count`.
    public func makeBatch(indices: [Int], normalization: Normalization = .fashionMNIST,
                          augmentation: Augmentation = .none, augmentationSeed: UInt64 = 0) -> Batch {
        var rng = DataRNG(seed: augmentationSeed)
        return makeBatch(indices: indices, table: normalization.lookupTable, augmentation: augmentation, rng: &rng)
    }

    func makeBatch(indices: [Int], table: [Float], augmentation: Augmentation, rng: inout DataRNG) -> Batch {
        let p = pixelsPerImage
        var out = [Float](repeating: table[0], count: indices.count * p)
        var outLabels = [Int](repeating: 0, count: indices.count)
        let (h, w, maxShift) = (rows, cols, augmentation.maxShift)
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
                        // out[y][x] = in[y − dy][x − dx]; pixels shifted in from outside stay table[0].
                        let (y0, y1, x0, x1) = (max(0, dy), min(h, h + dy), max(0, dx), min(w, w + dx))
                        guard y0 < y1, x0 < x1 else { continue }
                        for y in y0..<y1 {
                            let sy = y - dy
                            for x in x0..<x1 {
                                target[y * w + x] = lut[Int(image[sy * w + x - dx])]
                            }
                        }
                    }
                }
            }
        }
        return Batch(images: out, labels: outLabels, rows: rows, cols: cols)
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
    ///   - shuffleSeed: `nil` keeps file order.
    ///   - augmentation: random shifts; their random numbers derive from `shuffleSeed`
    ///     (or 0) through a separate stream.
    /// - Precondition: `size > 0`.
    public func batches(size: Int, normalization: Normalization = .fashionMNIST, shuffleSeed: UInt64? = nil,
                        augmentation: Augmentation = .none, dropLast: Bool = false) -> BatchSequence {
        precondition(size > 0, "batch size must be positive")
        let order = shuffleSeed.map { Dataset.permutation(count: count, seed: $0) } ?? Array(0..<count)
        return BatchSequence(dataset: self, order: order, batchSize: size, table: normalization.lookupTable,
                             augmentation: augmentation, augmentationSeed: deriveDataSeed(shuffleSeed ?? 0, 0xA6),
                             dropLast: dropLast)
    }

    private init(unchecked images: [UInt8], labels: [UInt8], rows: Int, cols: Int) {
        self.images = images
        self.labels = labels
        self.rows = rows
        self.cols = cols
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

/// Pixel normalization `x ↦ (x/255 − mean) / std`.
public struct Normalization: Equatable, Sendable {
    public var mean: Float
    public var std: Float

    /// - Precondition: `std > 0` and both finite.
    public init(mean: Float, std: Float) {
        precondition(std > 0 && std.isFinite && mean.isFinite, "normalization needs finite mean and positive std")
        self.mean = mean
        self.std = std
    }

    /// The usual Fashion-MNIST training-set statistics: mean 0.2860, std 0.3530 (of x/255
    /// over all 60,000 training images). The default throughout Sprig.
    public static let fashionMNIST = Normalization(mean: 0.2860, std: 0.3530)

    /// `x/255` only.
    public static let unit = Normalization(mean: 0, std: 1)

    /// Mean and (population) standard deviation of `x/255` over every pixel of `dataset`,
    /// computed in Double from a 256-bin histogram. Use on the training split only.
    /// A constant image set (std 0) falls back to std 1.
    public static func computed(from dataset: Dataset) -> Normalization {
        var histogram = [Int](repeating: 0, count: 256)
        dataset.images.withUnsafeBufferPointer { px in
            for v in px { histogram[Int(v)] += 1 }
        }
        let n = Double(max(dataset.images.count, 1))
        var sum = 0.0, sumSquares = 0.0
        for (v, c) in histogram.enumerated() where c > 0 {
            let x = Double(v) / 255
            sum += Double(c) * x
            sumSquares += Double(c) * x * x
        }
        let mean = sum / n
        let std = max(sumSquares / n - mean * mean, 0).squareRoot()
        return Normalization(mean: Float(mean), std: std > 1e-12 ? Float(std) : 1)
    }

    /// The normalized value of one pixel.
    @inlinable
    public func apply(_ pixel: UInt8) -> Float { (Float(pixel) / 255 - mean) / std }

    /// All 256 normalized values, indexed by pixel byte.
    public var lookupTable: [Float] { (0...255).map { apply(UInt8($0)) } }

    /// Normalizes a run of pixels.
    public func normalize(_ pixels: [UInt8]) -> [Float] {
        let table = lookupTable
        return pixels.map { table[Int($0)] }
    }
}

/// Light training-time augmentation.
public struct Augmentation: Equatable, Sendable {
    /// Each image is shifted by `dy, dx` drawn uniformly from `-maxShift...maxShift`,
    /// filling uncovered pixels with background (raw 0 before normalization).
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

/// One mini-batch: NHWC Float images (C = 1) and integer labels.
public struct Batch: Equatable, Sendable {
    /// `count × rows × cols × 1` values.
    public var images: [Float]
    /// `count` labels.
    public var labels: [Int]
    public var rows: Int
    public var cols: Int
    /// Samples in this batch.
    public var count: Int { labels.count }
    /// `[count, rows, cols, 1]`.
    public var shape: [Int] { [count, rows, cols, 1] }
}

/// The batches of one pass over a data set; see `Dataset.batches`.
public struct BatchSequence: Sequence, IteratorProtocol, Sendable {
    let dataset: Dataset
    let order: [Int]
    let batchSize: Int
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
