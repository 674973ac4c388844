// The `--data` options shared by the commands that read a data source, and the checks of
// "no silent defaults": a model records its data (DataRecord), and commands given other
// data say so on standard error.

import Foundation
import SprigTrain

/// `--data`'s help text.
let dataSourceHelp = "builtin, fashion-mnist, digits, a directory of IDX files, or an image folder (one subfolder per class, or train/ and test/)."

/// How an image folder is read: size, channels, resizing, the split.
let imageFolderOptionSpecs: [OptionSpec] = [
    OptionSpec(name: "size", value: "HxW", help: "Image folders: resize every image to H×W (area averaging).", defaultValue: "the images' own size, which must then be the same for all"),
    OptionSpec(name: "channels", value: "1|3", help: "Image folders: 1 gray (BT.601 luma) or 3 RGB (gray copied).", defaultValue: "3 if any image is in colour, else 1"),
    OptionSpec(name: "no-resize", value: nil, help: "Image folders: an image of another size than --size is an error, not resized."),
    OptionSpec(name: "test-fraction", value: "X", help: "Image folders without train/ and test/: the fraction of each class held out for testing.", defaultValue: "\(ImageFolderOptions.defaultTestFraction)"),
    OptionSpec(name: "split-seed", value: "S", help: "Image folders without train/ and test/: seed of the stratified split.", defaultValue: "\(ImageFolderOptions.defaultSplitSeed)"),
]

/// The image-folder options of `a`, over `base` (e.g. a model's input size).
func imageFolderOptions(_ a: ParsedArguments, base: ImageFolderOptions = ImageFolderOptions()) throws -> ImageFolderOptions {
    var o = base
    if let size = a.string("size") {
        let parts = size.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 2, let h = parts[0], let w = parts[1], (1...4096).contains(h), (1...4096).contains(w) else {
            throw UsageError(description: "--size: '\(size)' is not HxW with H and W in 1...4096 (e.g. 48x48)")
        }
        o.height = h
        o.width = w
    }
    if a.string("channels") != nil { o.channels = try a.int("channels", default: 1, range: 1...3) }
    if let c = o.channels, c == 2 { throw UsageError(description: "--channels: 2 is neither 1 (gray) nor 3 (RGB)") }
    if a.flag("no-resize") { o.resize = false }
    if a.string("test-fraction") != nil { o.testFraction = try a.double("test-fraction", default: 0.2, range: 0.001...0.999) }
    if a.string("split-seed") != nil { o.splitSeed = UInt64(try a.int("split-seed", default: 1, range: 0...Int.max)) }
    return o
}

/// Loads `--data` (default `fallback`) with the image-folder options of `a`, and the record
/// a checkpoint would keep of it.
func loadDataSource(_ a: ParsedArguments, option: String = "data", fallback: String = "builtin",
                    base: ImageFolderOptions = ImageFolderOptions()) throws -> (source: DataSource, splits: DataSplits, record: DataRecord) {
    let source = DataSource(argument: a.string(option, default: fallback))
    let options = try imageFolderOptions(a, base: base)
    let splits = try source.load(images: options)
    return (source, splits, DataRecord(source: source, splits: splits, options: options))
}

/// The data a model should be run, evaluated or calibrated on: `--data` (option `option`)
/// when given — with a warning on standard error for each way it differs from what the
/// model was trained on — or else the model's recorded source (said on standard error), or
/// else `builtin` for a model without a record.
func loadDataForModel(_ a: ParsedArguments, option: String = "data", recorded: DataRecord?, input: InputSpec?,
                      command: String, model: String, quiet: Bool = false) throws -> (source: DataSource, splits: DataSplits) {
    func warn(_ s: String) { if !quiet { printError("sprig \(command): " + s) } }
    // The model fixes size and channels of an image folder.
    var base = recorded?.imageOptions ?? ImageFolderOptions()
    if let input {
        base.height = input.height
        base.width = input.width
        base.channels = input.channels
    }
    if a.string(option) == nil {
        guard let recorded else {
            warn("\(model) does not record its training data; using builtin (pass --\(option) to choose)")
            let source = DataSource.builtin
            return (source, try source.load(images: base))
        }
        warn("no --\(option): using \(recorded.source), the data \(model) was trained on")
        let source = recorded.dataSource
        do {
            return (source, try source.load(images: base))
        } catch {
            throw CommandError(description: "\(model) was trained on \(recorded.source), which does not load (\(plainDescription(error))); pass --\(option)")
        }
    }
    let (source, splits, record) = try loadDataSource(a, option: option, base: base)
    if let recorded {
        let differences = recorded.differences(from: record)
        if !differences.isEmpty {
            warn("warning: --\(option) \(source) differs from the data \(model) was trained on: " + differences.joined(separator: "; "))
        }
    }
    return (source, splits)
}

extension BlobFile {
    /// The data record the blob was compiled with (metadata "data"), or nil.
    var dataRecord: DataRecord? { DataRecord.decode(metadata("data")) }
}
