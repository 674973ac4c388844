// Where the training and test data come from: `--data builtin | fashion-mnist | DIR`.
//
//   builtin        (default) the committed 10,000/2,000-image Fashion-MNIST subset in
//                  Sources/SprigTrain/Resources/fashion-mnist-subset, shipped as a SwiftPM
//                  resource and found through Bundle.module or next to the executable
//   fashion-mnist  the full 60,000/10,000 set of the Debian package dataset-fashion-mnist,
//                  /usr/share/datasets/fashion-mnist/*.gz
//   DIR            any directory holding the four files, raw or .gz
//
// The four files always carry the official names:
//   train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte

import Foundation

/// A training set and a test set loaded together.
public struct DataSplits: Equatable, Sendable {
    public var train: Dataset
    public var test: Dataset
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
    /// The four files in a directory.
    case directory(String)

    /// The default `--data`.
    public static let `default` = DataSource.builtin

    /// Where `dataset-fashion-mnist` installs the files.
    public static let fashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"

    /// The directory inside the resource bundle (and the source tree) holding the subset.
    public static let builtinSubdirectory = "fashion-mnist-subset"

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
        default: self = .directory(argument)
        }
    }

    public var description: String {
        switch self {
        case .builtin: return "builtin"
        case .fashionMNIST: return "fashion-mnist"
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
        case .directory(let path):
            return try DataSource.findFiles(in: path, hint: DataSource.directoryHint)
        }
    }

    static let builtinHint = "the built-in subset is incomplete; regenerate it with tools/make-default-data"
    static let fashionMNISTHint = "install it with: apt-get install dataset-fashion-mnist (or pass --data DIR)"
    static let directoryHint = "the directory must hold train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        + "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each raw or .gz)"

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
    public func load() throws -> DataSplits {
        let f = try files()
        return DataSplits(train: try Dataset.load(imagesPath: f.trainImages, labelsPath: f.trainLabels),
                          test: try Dataset.load(imagesPath: f.testImages, labelsPath: f.testLabels))
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
    public static func builtinDirectory() throws -> String {
        var tried: [String] = []
        func found(_ path: String) -> Bool {
            tried.append(path)
            return isRegularFile((path as NSString).appendingPathComponent(fileNames.trainLabels + ".gz"))
        }
        if let override = ProcessInfo.processInfo.environment[builtinEnvironmentVariable], !override.isEmpty {
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
