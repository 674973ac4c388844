// Where the training and test data come from: `--data builtin | fashion-mnist | digits | DIR`.
//
//   builtin        (default) the committed 10,000/2,000-image Fashion-MNIST subset in
//                  Sources/SprigTrain/Resources/fashion-mnist-subset, shipped as a SwiftPM
//                  resource and found through Bundle.module or next to the executable
//   fashion-mnist  the full 60,000/10,000 set of the Debian package dataset-fashion-mnist,
//                  /usr/share/datasets/fashion-mnist/*.gz
//   digits         the UCI handwritten digits (8×8, 1,797 images, 10 classes), committed in
//                  Sources/SprigTrain/Resources/digits by tools/make-digits; found like builtin
//   DIR            a directory holding the four IDX files (raw or .gz), or else an image
//                  folder: one subfolder per class, or train/ and test/ each with class
//                  subfolders (ImageFolder.swift). What the directory holds decides.
//
// The four IDX files always carry the official names:
//   train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte

import Foundation

/// A training set and a test set loaded together.
public struct DataSplits: Equatable, Sendable {
    public var train: Dataset
    public var test: Dataset
    /// The name of each label (index = label), when the source has names (Fashion-MNIST's, an
    /// image folder's class folders, the digits "0"..."9").
    public var classNames: [String]? = nil
    /// How Sprig split the data, when the source had no split of its own.
    public var split: SplitRecord? = nil

    public init(train: Dataset, test: Dataset, classNames: [String]? = nil, split: SplitRecord? = nil) {
        self.train = train
        self.test = test
        self.classNames = classNames
        self.split = split
    }

    /// The names of `classes`: the source's own (Fashion-MNIST's, an image folder's), else "class N".
    public func names(of classes: [Int]) -> [String] {
        classes.map { c in classNames.flatMap { c >= 0 && c < $0.count ? $0[c] : nil } ?? "class \(c)" }
    }
}

/// A seeded, stratified train/test split that Sprig made (`ImageFolder.stratifiedSplit`).
public struct SplitRecord: Equatable, Sendable {
    public var testFraction: Double
    public var seed: UInt64
}

/// The paths of the four IDX files of a source.
public struct DataFiles: Equatable, Sendable {
    public var trainImages: String
    public var trainLabels: String
    public var testImages: String
    public var testLabels: String
}

/// A `--data` argument.
public enum DataSource: Equatable, Sendable, CustomStringConvertible {
    /// The committed subset (1,000 train + 200 test images per class). The default.
    case builtin
    /// The full Fashion-MNIST of the Debian package `dataset-fashion-mnist`.
    case fashionMNIST
    /// The UCI handwritten digits, 8×8, committed as IDX (tools/make-digits).
    case digits
    /// The four files in a directory, or an image folder.
    case directory(String)

    /// The default `--data`.
    public static let `default` = DataSource.builtin

    /// Fashion-MNIST's class names, by label (Xiao, Rasul and Vollgraf, 2017).
    public static let fashionMNISTClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    /// Where `dataset-fashion-mnist` installs the files.
    public static let fashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"

    /// The directory inside the resource bundle (and the source tree) holding the subset.
    public static let builtinSubdirectory = "fashion-mnist-subset"

    /// The directory inside the resource bundle (and the source tree) holding the digits.
    public static let digitsSubdirectory = "digits"

    /// Environment variable that, when set, overrides where the built-in subset is looked for.
    public static let builtinEnvironmentVariable = "SPRIG_BUILTIN_DATA"

    /// File names without the `.gz` suffix.
    public static let fileNames = (trainImages: "train-images-idx3-ubyte", trainLabels: "train-labels-idx1-ubyte",
                                   testImages: "t10k-images-idx3-ubyte", testLabels: "t10k-labels-idx1-ubyte")

    /// `"builtin"` → `.builtin`, `"fashion-mnist"` → `.fashionMNIST`, anything else is a directory.
    public init(argument: String) {
        switch argument {
        case "builtin": self = .builtin
        case "fashion-mnist": self = .fashionMNIST
        case "digits": self = .digits
        default: self = .directory(argument)
        }
    }

    public var description: String {
        switch self {
        case .builtin: return "builtin"
        case .fashionMNIST: return "fashion-mnist"
        case .digits: return "digits"
        case .directory(let path): return path
        }
    }

    /// Resolves the four file paths (each `name` or `name.gz`, the first that exists).
    ///
    /// - Throws: `DataError.sourceMissing` naming the missing path, with the hint
    ///   `apt-get install dataset-fashion-mnist` for `.fashionMNIST`.
    public func files() throws -> DataFiles {
        switch self {
        case .builtin:
            return try DataSource.findFiles(in: try DataSource.builtinDirectory(), hint: DataSource.builtinHint)
        case .fashionMNIST:
            return try DataSource.findFiles(in: DataSource.fashionMNISTDirectory, hint: DataSource.fashionMNISTHint)
        case .digits:
            return try DataSource.findFiles(in: try DataSource.builtinDirectory(DataSource.digitsSubdirectory), hint: DataSource.digitsHint)
        case .directory(let path):
            guard isDirectory(path) else { throw DataError.sourceMissing(path: path, hint: DataSource.notADirectoryHint) }
            return try DataSource.findFiles(in: path, hint: DataSource.directoryHint)
        }
    }

    static let builtinHint = "the built-in subset is incomplete; regenerate it with tools/make-default-data"
    static let digitsHint = "the committed digits are incomplete; regenerate them with tools/make-digits"
    static let fashionMNISTHint = "install it with: apt-get install dataset-fashion-mnist (or pass --data DIR)"
    static let notADirectoryHint = "it is not a directory; --data takes builtin, fashion-mnist, digits, "
        + "a directory of the four IDX files, or an image folder"
    static let directoryHint = "the directory must hold train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        + "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each raw or .gz), or be an image folder "
        + "with one subfolder per class (or train/ and test/ each with class subfolders)"

    /// Each of the four names, raw or `.gz` (raw preferred), in `directory`.
    static func findFiles(in directory: String, hint: String) throws -> DataFiles {
        func find(_ name: String) throws -> String {
            let base = (directory as NSString).appendingPathComponent(name)
            for candidate in [base, base + ".gz"] where isRegularFile(candidate) { return candidate }
            throw DataError.sourceMissing(path: base + "[.gz]", hint: hint)
        }
        let n = fileNames
        return DataFiles(trainImages: try find(n.trainImages), trainLabels: try find(n.trainLabels),
                         testImages: try find(n.testImages), testLabels: try find(n.testLabels))
    }

    /// Loads the training and test sets.
    ///
    /// ```swift
    /// let data = try DataSource(argument: "builtin").load()
    /// data.train.count  // 10000
    /// ```
    ///
    /// - Throws: the errors of `files()` and `Dataset.load`.
    public func load(images: ImageFolderOptions = ImageFolderOptions()) throws -> DataSplits {
        if let folder = imageFolder { return try ImageFolder.load(folder, options: images) }
        let f = try files()
        var splits = DataSplits(train: try Dataset.load(imagesPath: f.trainImages, labelsPath: f.trainLabels),
                                test: try Dataset.load(imagesPath: f.testImages, labelsPath: f.testLabels))
        switch self {
        case .digits: splits.classNames = (0...9).map(String.init)
        case .builtin, .fashionMNIST: splits.classNames = DataSource.fashionMNISTClassNames
        case .directory: break
        }
        return splits
    }

    /// The directory, when this source is a directory that holds no IDX files but has
    /// subfolders (an image folder); nil otherwise (a directory with neither is reported by
    /// `files()` with both layouts in the hint).
    public var imageFolder: String? {
        guard case .directory(let path) = self else { return nil }
        if (try? DataSource.findFiles(in: path, hint: "")) != nil { return nil }
        return ImageFolder.looksLikeImageFolder(path) ? path : nil
    }

    /// "idx", "images" (an image folder) or the source's own name, for reports.
    public var kind: String {
        switch self {
        case .builtin, .fashionMNIST, .digits: return description
        case .directory: return imageFolder == nil ? "idx" : "images"
        }
    }

    /// How this source is recorded in a checkpoint: its name, or a directory made absolute
    /// (so that a later command run elsewhere finds it).
    public var recordedName: String {
        guard case .directory(let path) = self else { return description }
        return URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// The directory of the built-in subset. Looked for, in order:
    ///
    /// 1. `$SPRIG_BUILTIN_DATA`, if set;
    /// 2. `Bundle.module` (the SwiftPM resource bundle `Sprig_SprigTrain.resources` beside the
    ///    main executable) — consulted only when that bundle exists, because the generated
    ///    accessor traps when it does not;
    /// 3. relative to the executable (symlinks resolved): `Sprig_SprigTrain.resources/Resources/…`
    ///    and `../share/sprig/fashion-mnist-subset` (an installed layout);
    /// 4. the source tree this file was compiled from.
    ///
    /// - Throws: `DataError.sourceMissing` listing every place tried.
    public static func builtinDirectory(_ subdirectory: String = builtinSubdirectory) throws -> String {
        let builtinSubdirectory = subdirectory
        var tried: [String] = []
        func found(_ path: String) -> Bool {
            tried.append(path)
            return isRegularFile((path as NSString).appendingPathComponent(fileNames.trainLabels + ".gz"))
        }
        if subdirectory == DataSource.builtinSubdirectory,
           let override = ProcessInfo.processInfo.environment[builtinEnvironmentVariable], !override.isEmpty {
            if found(override) { return override }
            throw DataError.sourceMissing(path: override, hint: "\(builtinEnvironmentVariable) points to a directory without the subset")
        }
        let bundleName = "Sprig_SprigTrain.resources"
        let mainBundlePath = Bundle.main.bundleURL.appendingPathComponent(bundleName).path
        if isDirectory(mainBundlePath),
           let url = Bundle.module.resourceURL?.appendingPathComponent("Resources")
               .appendingPathComponent(builtinSubdirectory),
           found(url.path) {
            return url.path
        }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let exeDirectory = executable.deletingLastPathComponent()
        let candidates = [
            exeDirectory.appendingPathComponent(bundleName).appendingPathComponent("Resources")
                .appendingPathComponent(builtinSubdirectory).path,
            exeDirectory.deletingLastPathComponent().appendingPathComponent("share/sprig")
                .appendingPathComponent(builtinSubdirectory).path,
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Resources").appendingPathComponent(builtinSubdirectory).path,
        ]
        for candidate in candidates where found(candidate) { return candidate }
        throw DataError.sourceMissing(path: tried.joined(separator: ", "),
                                      hint: "copy \(bundleName) next to the executable, set \(builtinEnvironmentVariable), "
                                          + "or use --data fashion-mnist / --data DIR")
    }
}

private func isRegularFile(_ path: String) -> Bool {
    var isDir: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && !isDir.boolValue
}

private func isDirectory(_ path: String) -> Bool {
    var isDir: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
}
