// What a checkpoint records about its training data (issue 15, "no silent defaults"):
// `__metadata__["data"]` of a checkpoint, and the blob metadata key "data", hold this as
// JSON, so that `compile`, `run` and `eval` can load the same data when no `--data` is
// given, and warn when the data given differs.
//
//   {"source": "digits", "kind": "digits", "shape": [8, 8, 1], "labels": 10,
//    "class_names": ["0", …], "resize": true, "test_fraction": 0.2, "split_seed": 1}
//
// `source` is a name (builtin, fashion-mnist, digits) or an absolute directory. `labels`
// is how many classes the source has (the checkpoint's own classes are in its
// architecture). `test_fraction` and `split_seed` are there when Sprig made the split.
// Normalisation (mean, std) lives in the architecture's input description.

import Foundation

public struct DataRecord: Codable, Equatable, Sendable {
    /// The metadata key in checkpoints and blobs.
    public static let metadataKey = "data"

    public var source: String
    public var kind: String
    /// `[H, W, C]` of the images as trained on.
    public var shape: [Int]
    /// Number of classes of the source.
    public var labels: Int
    public var classNames: [String]?
    public var resize: Bool
    public var testFraction: Double?
    public var splitSeed: UInt64?

    enum CodingKeys: String, CodingKey {
        case source, kind, shape, labels, resize
        case classNames = "class_names"
        case testFraction = "test_fraction"
        case splitSeed = "split_seed"
    }

    /// The record of `splits`, loaded from `source` with `options`.
    public init(source: DataSource, splits: DataSplits, options: ImageFolderOptions) {
        self.source = source.recordedName
        self.kind = source.kind
        self.shape = splits.train.shape
        self.labels = max(splits.train.labelsPresent.last.map { $0 + 1 } ?? 0, splits.classNames?.count ?? 0)
        self.classNames = splits.classNames
        self.resize = options.resize
        self.testFraction = splits.split?.testFraction
        self.splitSeed = splits.split?.seed
    }

    /// The source to load again.
    public var dataSource: DataSource { DataSource(argument: source) }

    /// The image options that give the same images again (size and channels as trained).
    public var imageOptions: ImageFolderOptions {
        ImageFolderOptions(height: shape.count == 3 ? shape[0] : nil, width: shape.count == 3 ? shape[1] : nil,
                           channels: shape.count == 3 ? shape[2] : nil, resize: resize,
                           testFraction: testFraction ?? ImageFolderOptions.defaultTestFraction,
                           splitSeed: splitSeed ?? ImageFolderOptions.defaultSplitSeed)
    }

    /// The JSON stored (keys sorted).
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// Decodes a record; nil for nil or text that is not one (older files have none).
    public static func decode(_ json: String?) -> DataRecord? {
        guard let json else { return nil }
        return try? JSONDecoder().decode(DataRecord.self, from: Data(json.utf8))
    }

    /// The record in a checkpoint's metadata, or nil when it has none.
    public static func read(checkpoint path: String) throws -> DataRecord? {
        decode(try SafetensorsFile.read(path: path).metadata[metadataKey])
    }

    /// The ways `other` (data about to be used with a model trained on this record) differs,
    /// as phrases for a warning; empty when it is the same source, shape and class count.
    public func differences(from other: DataRecord) -> [String] {
        var d: [String] = []
        if other.source != source { d.append("source \(other.source), trained on \(source)") }
        if other.shape != shape { d.append("images \(other.shape.map(String.init).joined(separator: "×")), trained on "
            + shape.map(String.init).joined(separator: "×")) }
        if other.labels != labels { d.append("\(other.labels) classes, trained on a source of \(labels)") }
        if other.testFraction != testFraction || other.splitSeed != splitSeed {
            d.append("another train/test split")
        }
        return d
    }
}

/// The names of the files `writeDeviceFiles` writes.
public struct DeviceFileNames: Sendable {
    public var shots: String
    public var shotLabels: String
    public var images: String
    public var labels: String
    public var classes: String

    /// `sprig data --device-files DIR`: shots.idx, shots-labels.idx, images.idx, labels.idx, classes.txt.
    public static let plain = DeviceFileNames(shots: "shots.idx", shotLabels: "shots-labels.idx", images: "images.idx",
                                              labels: "labels.idx", classes: "classes.txt")
    /// `sprig demo`: device-shots.idx, device-shots-labels.idx, device-test.idx, device-test-labels.idx, device-classes.txt.
    public static let demo = DeviceFileNames(shots: "device-shots.idx", shotLabels: "device-shots-labels.idx",
                                             images: "device-test.idx", labels: "device-test-labels.idx",
                                             classes: "device-classes.txt")
}

/// What `writeDeviceFiles` wrote.
public struct DeviceFilesSummary: Sendable {
    public var shotCount: Int
    public var imageCount: Int
    public var paths: [String]
}

/// Writes the files `sprig-edge finetune` and `sprig-edge run` take: `shots` images per
/// class of `classes` from `train` (episode 0 of `EpisodeSampler` with `seed`), their
/// labels `0..<classes.count` in the order of `classes`, every image of those classes in
/// `test` with the same relabelling, and the class names (one line, comma-separated) for
/// `sprig-edge finetune --names`. All uncompressed IDX (the board has no gzip), each
/// written atomically.
///
/// - Throws: `DataError.classNotPresent` / `notEnoughSamples` when a class lacks images.
@discardableResult
public func writeDeviceFiles(train: Dataset, test: Dataset, classes: [Int], names: [String], shots: Int, seed: UInt64,
                             directory: String, fileNames: DeviceFileNames) throws -> DeviceFilesSummary {
    let targetTrain = try train.filtered(classes: classes)
    let targetTest = try test.filtered(classes: classes)
    let episode = try EpisodeSampler(dataset: targetTrain).sample(nWay: classes.count, kShot: shots, query: .perClass(0), seed: seed)
    func imageArray(_ data: Dataset, _ indices: [Int]) -> IDXArray {
        IDXArray(dimensions: [indices.count, data.rows, data.cols] + (data.channels == 1 ? [] : [data.channels]),
                 data: indices.flatMap { Array(data.image($0)) })
    }
    func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
    try IDX.write(imageArray(targetTrain, episode.supportIndices), to: path(fileNames.shots), gzip: false)
    try IDX.write(IDXArray(dimensions: [episode.supportLabels.count], data: episode.supportLabels.map { UInt8($0) }),
                  to: path(fileNames.shotLabels), gzip: false)
    try IDX.write(imageArray(targetTest, Array(0..<targetTest.count)), to: path(fileNames.images), gzip: false)
    try IDX.write(IDXArray(dimensions: [targetTest.count], data: Array(targetTest.labels)), to: path(fileNames.labels), gzip: false)
    try writeFileAtomically(Array((names.joined(separator: ",") + "\n").utf8), to: path(fileNames.classes))
    return DeviceFilesSummary(shotCount: episode.supportIndices.count, imageCount: targetTest.count,
                              paths: [fileNames.shots, fileNames.shotLabels, fileNames.images, fileNames.labels, fileNames.classes].map(path))
}
