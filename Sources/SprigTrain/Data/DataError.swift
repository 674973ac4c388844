// Errors of the data pipeline: IDX files, data sets, class lists, episodes, data sources.

/// A field of an IDX header or body, as named in error messages.
public enum IDXField: Equatable, Sendable, CustomStringConvertible {
    /// Bytes 0–1, which must be zero.
    case magic
    /// Byte 2, the element type (0x08 = uint8 is the only one Sprig accepts).
    case dtype
    /// Byte 3, the number of dimensions.
    case dimensionCount
    /// The k-th big-endian UInt32 dimension after the magic.
    case dimension(Int)
    /// The product of all dimensions (overflow or size limit).
    case elementCount
    /// The header as a whole (file shorter than the header).
    case header
    /// The bytes after the header, which must be exactly the element count.
    case dataLength

    public var description: String {
        switch self {
        case .magic: return "magic"
        case .dtype: return "dtype"
        case .dimensionCount: return "ndim"
        case .dimension(let k): return "dims[\(k)]"
        case .elementCount: return "element count"
        case .header: return "header"
        case .dataLength: return "data length"
        }
    }
}

/// Everything that can go wrong while loading, selecting or sampling data.
///
/// Each case names the file (or the argument) and, where there is one, the value found and
/// the value expected, so that `description` is a complete sentence for the CLI.
public enum DataError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The operating system refused to read or write a file.
    case io(FileIOError)
    /// A `.gz` file is not a valid gzip stream (bad header, CRC mismatch, truncated, trailing garbage).
    case gzip(path: String, detail: String)
    /// An IDX header or body field has the wrong value.
    case idx(path: String, field: IDXField, found: String, expected: String)
    /// The images file and the labels file disagree on the number of samples.
    case countMismatch(imagesPath: String, images: Int, labelsPath: String, labels: Int)
    /// A `--classes` specification could not be parsed.
    case classSpec(spec: String, detail: String)
    /// A requested class is not among the labels of the data.
    case classNotPresent(class: Int, present: [Int])
    /// A class has too few samples for the requested episode or split.
    case notEnoughSamples(class: Int, available: Int, required: Int)
    /// A data source's files are missing; `hint` says how to get them.
    case sourceMissing(path: String, hint: String)
    /// An argument is out of its valid range.
    case invalidArgument(name: String, value: String, expected: String)
    /// An image file cannot be decoded or used (corrupt, truncated, unsupported, wrong size).
    case image(path: String, detail: String)
    /// An image folder's layout is not usable; `detail` says what to do.
    case folder(path: String, detail: String)

    public var description: String {
        switch self {
        case .io(let e):
            return e.description
        case .gzip(let path, let detail):
            return "\(path): bad gzip data: \(detail)"
        case .idx(let path, let field, let found, let expected):
            return "\(path): IDX \(field): found \(found), expected \(expected)"
        case .countMismatch(let ip, let ni, let lp, let nl):
            return "images count \(ni) in \(ip) does not match labels count \(nl) in \(lp)"
        case .classSpec(let spec, let detail):
            return "invalid class list '\(spec)': \(detail)"
        case .classNotPresent(let c, let present):
            return "class \(c) is not in the data; labels present: \(formatClassList(present))"
        case .notEnoughSamples(let c, let available, let required):
            return "class \(c) has \(available) samples, \(required) needed"
        case .sourceMissing(let path, let hint):
            return "data not found at \(path); \(hint)"
        case .invalidArgument(let name, let value, let expected):
            return "invalid \(name): \(value), expected \(expected)"
        case .image(let path, let detail):
            return "\(path): \(detail)"
        case .folder(let path, let detail):
            return "\(path): \(detail)"
        }
    }
}

/// `[0,1,2,3,5,7,8,9]` → `"0-3,5,7-9"`.
func formatClassList(_ classes: [Int]) -> String {
    if classes.isEmpty { return "(none)" }
    var parts: [String] = []
    var start = classes[0]
    var previous = classes[0]
    for c in classes.dropFirst() + [Int.min] {
        if c == previous + 1 { previous = c; continue }
        parts.append(start == previous ? "\(start)" : "\(start)-\(previous)")
        start = c
        previous = c
    }
    return parts.joined(separator: ",")
}
