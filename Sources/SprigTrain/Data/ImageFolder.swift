// A folder of images as a data set.
//
//   DIR/CLASS/*.png|jpg|jpeg|pgm|ppm                one folder per class; Sprig makes a
//                                                   seeded, stratified train/test split
//   DIR/train/CLASS/…  and  DIR/test/CLASS/…        the user's own split
//
// Classes are the folder names sorted by their UTF-8 bytes; class k is label k. Files are
// read in sorted order. Hidden entries (a name starting with ".") are skipped; any other
// file that is not an image is an error, so that nothing is dropped silently.
//
// Every image is decoded (ImageDecoding.swift), converted to the chosen channels, and
// resized by area averaging to the chosen size, unless resizing is forbidden.

import Foundation

/// How an image folder becomes a data set.
public struct ImageFolderOptions: Equatable, Sendable {
    /// Target rows and cols; nil: the images' own size (which must then be the same for all).
    public var height: Int?
    public var width: Int?
    /// 1 (gray) or 3 (RGB); nil: 3 if any image is in colour, else 1.
    public var channels: Int?
    /// False: an image of another size than the target is an error instead of being resized.
    public var resize = true
    /// The fraction of each class held out for the test split when the folder has no
    /// `train/` and `test/` (rounded to nearest; at least 1 and at most n − 1 per class).
    public var testFraction = 0.2
    /// Seed of the split's per-class shuffles.
    public var splitSeed: UInt64 = 1

    public static let defaultTestFraction = 0.2
    public static let defaultSplitSeed: UInt64 = 1

    public init(height: Int? = nil, width: Int? = nil, channels: Int? = nil, resize: Bool = true,
                testFraction: Double = ImageFolderOptions.defaultTestFraction,
                splitSeed: UInt64 = ImageFolderOptions.defaultSplitSeed) {
        self.height = height
        self.width = width
        self.channels = channels
        self.resize = resize
        self.testFraction = testFraction
        self.splitSeed = splitSeed
    }
}

/// The files of an image folder, found before any is decoded.
public struct ImageFolderLayout: Equatable, Sendable {
    public var root: String
    /// Folder names, sorted; index = label.
    public var classNames: [String]
    /// Image paths per class of `train/` (or of the whole folder when `test` is nil).
    public var train: [[String]]
    /// Image paths per class of `test/`, or nil when Sprig makes the split.
    public var test: [[String]]?
}

public enum ImageFolder {
    /// True when `path` is a directory holding at least one non-hidden subdirectory and
    /// none of the IDX files of `--data DIR`.
    public static func looksLikeImageFolder(_ path: String) -> Bool {
        (try? subdirectories(of: path))?.isEmpty == false
    }

    /// Lists the classes and files of `root`.
    ///
    /// - Throws: `DataError.folder` naming the folder and saying what to do for: a folder
    ///   with no class subfolders, a single class, an empty class, a file that is not an
    ///   image, a nested folder, `train/` without `test/` (or the reverse), a class of
    ///   `test/` missing from `train/`, more than 256 classes.
    public static func scan(_ root: String) throws -> ImageFolderLayout {
        let top = try subdirectories(of: root)
        if top.contains("train") || top.contains("test") {
            guard top.contains("train"), top.contains("test") else {
                throw DataError.folder(path: root, detail: "has \(top.contains("train") ? "train/" : "test/") but not "
                    + "\(top.contains("train") ? "test/" : "train/"); give both (each with one folder per class) or neither")
            }
            let trainRoot = join(root, "train"), testRoot = join(root, "test")
            let trainClasses = try classFolders(trainRoot), testClasses = try classFolders(testRoot)
            for name in testClasses where !trainClasses.contains(name) {
                throw DataError.folder(path: join(testRoot, name), detail: "class '\(name)' is in test/ but not in train/; "
                    + "add its training images to \(join(trainRoot, name)) or remove it")
            }
            for name in trainClasses where !testClasses.contains(name) {
                throw DataError.folder(path: join(testRoot, name), detail: "class '\(name)' has no test folder; "
                    + "add test images to \(join(testRoot, name))")
            }
            return ImageFolderLayout(root: root, classNames: trainClasses,
                                     train: try trainClasses.map { try imageFiles(join(trainRoot, $0)) },
                                     test: try trainClasses.map { try imageFiles(join(testRoot, $0)) })
        }
        let classes = try classFolders(root)
        return ImageFolderLayout(root: root, classNames: classes, train: try classes.map { try imageFiles(join(root, $0)) }, test: nil)
    }

    /// Decodes, converts and resizes every image of `root`, and splits when the folder has
    /// no split of its own.
    ///
    /// - Throws: the errors of `scan`; `DataError.image` naming the file for an image that
    ///   does not decode, or (under `resize == false`) has another size than the target;
    ///   `DataError.folder` for images of mixed sizes when no target size is given, and
    ///   for a class too small to split.
    public static func load(_ root: String, options: ImageFolderOptions = ImageFolderOptions()) throws -> DataSplits {
        let layout = try scan(root)
        guard options.testFraction > 0 && options.testFraction < 1 else {
            throw DataError.invalidArgument(name: "test fraction", value: "\(options.testFraction)", expected: "between 0 and 1 (exclusive)")
        }
        if let c = options.channels, c != 1 && c != 3 {
            throw DataError.invalidArgument(name: "channels", value: "\(c)", expected: "1 (gray) or 3 (RGB)")
        }
        // Decode everything first: the size and channels may depend on all images.
        func decodeAll(_ files: [[String]]) throws -> [[(String, DecodedImage)]] {
            try files.map { try $0.map { ($0, try ImageCodec.decode(path: $0)) } }
        }
        let trainImages = try decodeAll(layout.train)
        let testImages = try layout.test.map(decodeAll) ?? []
        let all = (trainImages + testImages).joined()
        guard let first = all.first else { throw DataError.folder(path: root, detail: "holds no images") }
        let channels = options.channels ?? (all.contains { $0.1.channels == 3 } ? 3 : 1)
        let height: Int, width: Int
        if let h = options.height, let w = options.width {
            (height, width) = (h, w)
        } else {
            (height, width) = (first.1.height, first.1.width)
            if let other = all.first(where: { $0.1.height != height || $0.1.width != width }) {
                throw DataError.folder(path: root, detail: "images of mixed sizes: \(first.0) is \(height)×\(width), \(other.0) is "
                    + "\(other.1.height)×\(other.1.width); give a size to resize them to (e.g. --size \(height)x\(width)) or make them alike")
            }
        }
        func dataset(_ classes: [[(String, DecodedImage)]]) throws -> Dataset {
            var pixels: [UInt8] = [], labels: [UInt8] = []
            for (label, images) in classes.enumerated() {
                for (path, image) in images {
                    if image.height != height || image.width != width {
                        guard options.resize else {
                            throw DataError.image(path: path, detail: "is \(image.height)×\(image.width), not the \(height)×\(width) asked for (the model's input or --size), "
                                + "and resizing is off (--no-resize); resize the image or drop --no-resize")
                        }
                    }
                    let converted = ImageCodec.convert(image, toChannels: channels)
                    pixels += ImageCodec.resizeArea(converted, height: height, width: width).pixels
                    labels.append(UInt8(label))
                }
            }
            return try Dataset(images: pixels, labels: labels, rows: height, cols: width, channels: channels)
        }
        let whole = try dataset(trainImages)
        var splits: DataSplits
        if layout.test != nil {
            splits = DataSplits(train: whole, test: try dataset(testImages))
        } else {
            for (k, files) in layout.train.enumerated() where files.count < 2 {
                throw DataError.folder(path: join(root, layout.classNames[k]), detail: "has \(files.count) image; a train/test split "
                    + "needs at least 2 per class (add images, or give train/ and test/ folders)")
            }
            let parts = stratifiedSplit(labels: whole.labels.map(Int.init), testFraction: options.testFraction, seed: options.splitSeed)
            splits = DataSplits(train: whole.subset(parts.train), test: whole.subset(parts.test))
            splits.split = SplitRecord(testFraction: options.testFraction, seed: options.splitSeed)
        }
        splits.classNames = layout.classNames
        return splits
    }

    /// A seeded, stratified split of sample indices: class `c` with `n` samples gives
    /// `round(n · testFraction)` of them, clamped to `1...n−1`, to the test part, chosen by a
    /// seeded shuffle of that class's indices (seed `seed`, stream `c`). Both parts keep
    /// the file order.
    ///
    /// ```swift
    /// // labels: 10 of class 0, 3 of class 1, fraction 0.2 → test gets 2 of class 0, 1 of class 1
    /// ```
    public static func stratifiedSplit(labels: [Int], testFraction: Double, seed: UInt64) -> (train: [Int], test: [Int]) {
        var byClass: [Int: [Int]] = [:]
        for (i, l) in labels.enumerated() { byClass[l, default: []].append(i) }
        var isTest = [Bool](repeating: false, count: labels.count)
        for (c, indices) in byClass {
            let n = indices.count
            var k = Int((Double(n) * testFraction).rounded())
            if n >= 2 { k = min(max(k, 1), n - 1) } else { k = 0 }
            let order = Dataset.permutation(count: n, seed: deriveDataSeed(seed, UInt64(c)))
            for j in order.prefix(k) { isTest[indices[j]] = true }
        }
        let all = Array(labels.indices)
        return (all.filter { !isTest[$0] }, all.filter { isTest[$0] })
    }

    // MARK: Listing

    static func join(_ a: String, _ b: String) -> String { (a as NSString).appendingPathComponent(b) }

    static func entries(of path: String) throws -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw DataError.sourceMissing(path: path, hint: "give builtin, fashion-mnist, digits, a folder of IDX files, "
                + "or a folder of images with one subfolder per class")
        }
        guard isDir.boolValue else {
            throw DataError.folder(path: path, detail: "is a file, not a folder; --data takes a folder of IDX files or of class folders")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: path)
        return names.filter { !$0.hasPrefix(".") }.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    static func subdirectories(of path: String) throws -> [String] {
        try entries(of: path).filter { isDirectory(join(path, $0)) }
    }

    /// The class folders of `path` (sorted), which must be at least two, at most 256, and
    /// be all that `path` holds.
    static func classFolders(_ path: String) throws -> [String] {
        let names = try entries(of: path)
        let folders = names.filter { isDirectory(join(path, $0)) }
        if let file = names.first(where: { !isDirectory(join(path, $0)) }) {
            throw DataError.folder(path: join(path, file), detail: "a file beside the class folders; put each image in its class's "
                + "folder (DIR/CLASS/image.png) and move other files out")
        }
        guard !folders.isEmpty else {
            throw DataError.folder(path: path, detail: "is empty; an image data set has one subfolder per class "
                + "(DIR/CLASS/*.png|jpg|pgm|ppm), or train/ and test/ each with class subfolders")
        }
        guard folders.count >= 2 else {
            throw DataError.folder(path: path, detail: "has a single class ('\(folders[0])'); a classifier needs at least 2 class folders")
        }
        if let bad = folders.first(where: { $0.contains(",") }) {
            throw DataError.folder(path: join(path, bad), detail: "a class folder name with a comma; the blob and the board "
                + "keep class names comma-separated, so rename it")
        }
        guard folders.count <= 256 else {
            throw DataError.folder(path: path, detail: "has \(folders.count) class folders; at most 256 are supported")
        }
        return folders
    }

    /// The image files of one class folder, sorted; at least one.
    static func imageFiles(_ path: String) throws -> [String] {
        var files: [String] = []
        for name in try entries(of: path) {
            let full = join(path, name)
            guard !isDirectory(full) else {
                throw DataError.folder(path: full, detail: "a folder inside a class folder; images must sit directly in their class's folder")
            }
            guard ImageCodec.fileExtensions.contains((name as NSString).pathExtension.lowercased()) else {
                throw DataError.folder(path: full, detail: "not an image file Sprig reads (.png, .jpg, .jpeg, .pgm, .ppm); move it out")
            }
            files.append(full)
        }
        guard !files.isEmpty else {
            throw DataError.folder(path: path, detail: "class folder holds no images; add images or remove the folder")
        }
        return files
    }
}
