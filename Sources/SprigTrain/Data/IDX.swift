// IDX files (the MNIST / Fashion-MNIST container), raw or gzip'd.
//
// Layout, all integers big-endian:
//
//   offset  size     field
//   0       2        magic: 0x00 0x00
//   2       1        dtype: 0x08 uint8 (0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
//                    0x0E float64 exist in the format; Sprig accepts only 0x08)
//   3       1        ndim
//   4       4·ndim   dims[0] ... dims[ndim-1], UInt32 each
//   4+4·ndim  Π dims  data, row-major, one byte per element for uint8
//
// Images files are ndim 3 (count, rows, cols) for gray images or ndim 4 (count, rows, cols,
// channels) for interleaved channels; labels files are ndim 1 (count).
// The data must be exactly Π dims bytes: a short file is truncated, a long one has trailing
// bytes, and both are errors. A file is treated as gzip when its name ends in `.gz` or it
// starts with the gzip magic 0x1F 0x8B. Gzip'd files are decompressed in a stream straight
// into a buffer of the size the header implies, so a gzip bomb cannot make the reader
// allocate more than that (plus a 64 KiB scratch used to detect trailing data).

/// An n-dimensional uint8 array as stored in an IDX file.
public struct IDXArray: Equatable, Sendable {
    /// The dimensions, outermost first, e.g. `[60000, 28, 28]`.
    public var dimensions: [Int]
    /// Row-major elements; `data.count` equals the product of `dimensions`.
    public var data: [UInt8]

    public init(dimensions: [Int], data: [UInt8]) {
        self.dimensions = dimensions
        self.data = data
    }
}

/// Reader and writer for IDX files. All functions are pure with respect to global state.
public enum IDX {
    /// The only element type Sprig reads or writes.
    public static let uint8DType: UInt8 = 0x08

    /// Upper bound on the data size of one file (4 GiB), far above Fashion-MNIST's 47 MB.
    public static let defaultMaxDataBytes = 1 << 32

    /// Reads an IDX file of uint8 elements, raw or gzip'd.
    ///
    /// ```swift
    /// let images = try IDX.read(path: "train-images-idx3-ubyte.gz", dimensionCounts: [3, 4],
    ///                           axisNames: ["N", "H", "W", "C"])
    /// images.dimensions  // [60000, 28, 28]
    /// ```
    ///
    /// - Parameters:
    ///   - path: the file; gzip when it ends in `.gz` or starts with 0x1F 0x8B.
    ///   - dimensionCounts: if given, the `ndim` values accepted (`[3, 4]` for images, `[1]`
    ///     for labels).
    ///   - axisNames: names of the axes, outermost first, used only in the message of a wrong
    ///     `ndim`: with `["N", "H", "W", "C"]` it reads
    ///     `IDX ndim: found 5, expected 3 (N, H, W) or 4 (N, H, W, C)`.
    ///   - maxDataBytes: refuse headers that imply more data than this.
    /// - Throws: `DataError.io` if the file cannot be read, `DataError.gzip` for corrupt
    ///   compressed data, `DataError.idx` naming the path, the field and found vs expected
    ///   values for a bad magic, dtype, ndim, dimension, element count or data length.
    public static func read(path: String, dimensionCounts: [Int]? = nil, axisNames: [String] = [],
                            maxDataBytes: Int = defaultMaxDataBytes) throws -> IDXArray {
        let file: [UInt8]
        do {
            file = try readFileBytes(atPath: path)
        } catch let error as FileIOError {
            throw DataError.io(error)
        }
        let gzipped = path.hasSuffix(".gz") || (file.count >= 2 && file[0] == gzipMagic.0 && file[1] == gzipMagic.1)
        return try decode(file, path: path, gzipped: gzipped, dimensionCounts: dimensionCounts,
                          axisNames: axisNames, maxDataBytes: maxDataBytes)
    }

    /// Decodes IDX bytes already in memory. `path` is used only in error messages.
    ///
    /// - Complexity: O(n) in the decompressed size; allocates exactly the data size.
    /// `dimensionCounts` and `axisNames` are as in `read(path:dimensionCounts:axisNames:)`.
    public static func decode(_ file: [UInt8], path: String, gzipped: Bool, dimensionCounts: [Int]? = nil,
                              axisNames: [String] = [], maxDataBytes: Int = defaultMaxDataBytes) throws -> IDXArray {
        let source: ByteSource = gzipped ? .gzip(try GzipInflater(compressed: file, path: path)) : .raw(file)
        var rawOffset = 0

        /// Reads up to `count` bytes into `buffer` starting at `at`; returns how many were read.
        func pull(into buffer: inout [UInt8], at: Int, count: Int) throws -> Int {
            switch source {
            case .raw(let bytes):
                let n = min(count, bytes.count - rawOffset)
                buffer.withUnsafeMutableBufferPointer { dst in
                    bytes.withUnsafeBufferPointer { src in
                        if n > 0 { (dst.baseAddress! + at).update(from: src.baseAddress! + rawOffset, count: n) }
                    }
                }
                rawOffset += n
                return n
            case .gzip(let inflater):
                return try buffer.withUnsafeMutableBytes { dst in
                    try inflater.read(into: UnsafeMutableRawBufferPointer(rebasing: dst[at..<(at + count)]))
                }
            }
        }

        // 1. Magic, dtype, ndim.
        var head = [UInt8](repeating: 0, count: 4)
        let gotHead = try pull(into: &head, at: 0, count: 4)
        if gotHead < 4 {
            throw DataError.idx(path: path, field: .header, found: "\(gotHead) bytes",
                                expected: "at least 4 bytes (magic, dtype, ndim)")
        }
        if head[0] != 0 || head[1] != 0 {
            throw DataError.idx(path: path, field: .magic, found: hex(head[0], head[1]), expected: "0x0000")
        }
        if head[2] != uint8DType {
            throw DataError.idx(path: path, field: .dtype, found: "\(hex(head[2])) (\(dtypeName(head[2])))",
                                expected: "0x08 (uint8)")
        }
        let ndim = Int(head[3])
        if let accepted = dimensionCounts, !accepted.contains(ndim) {
            throw DataError.idx(path: path, field: .dimensionCount, found: "\(ndim)",
                                expected: describeDimensionCounts(accepted, axisNames: axisNames))
        }
        if ndim == 0 {
            throw DataError.idx(path: path, field: .dimensionCount, found: "0", expected: "at least 1")
        }

        // 2. Dimensions, product overflow-checked.
        var dimBytes = [UInt8](repeating: 0, count: 4 * ndim)
        let gotDims = try pull(into: &dimBytes, at: 0, count: 4 * ndim)
        if gotDims < 4 * ndim {
            throw DataError.idx(path: path, field: .header, found: "\(4 + gotDims) bytes",
                                expected: "\(4 + 4 * ndim) bytes (magic, dtype, ndim, \(ndim) dims)")
        }
        var dims: [Int] = []
        var product = 1
        var overflow = false
        for k in 0..<ndim {
            let d = Int(dimBytes[4 * k]) << 24 | Int(dimBytes[4 * k + 1]) << 16
                  | Int(dimBytes[4 * k + 2]) << 8 | Int(dimBytes[4 * k + 3])
            dims.append(d)
            let (p, o) = product.multipliedReportingOverflow(by: d)
            product = p
            overflow = overflow || o
        }
        let dimsText = dims.map(String.init).joined(separator: "×")
        if overflow || product > maxDataBytes {
            throw DataError.idx(path: path, field: .elementCount, found: "\(dimsText) = \(overflow ? "overflow" : "\(product)")",
                                expected: "at most \(maxDataBytes) elements")
        }
        let headerBytes = 4 + 4 * ndim
        let expected = "\(product) bytes (\(dimsText))"

        // 3. Data: exactly `product` bytes, then end of data.
        switch source {
        case .raw(let bytes):
            let have = bytes.count - headerBytes
            if have != product {
                throw DataError.idx(path: path, field: .dataLength, found: "\(have) bytes", expected: expected)
            }
            return IDXArray(dimensions: dims, data: Array(bytes[headerBytes...]))
        case .gzip:
            // Before allocating: a deflate stream cannot expand beyond ~1032:1.
            let ceiling = file.count.multipliedReportingOverflow(by: maxDeflateRatio)
            if !ceiling.overflow && product > ceiling.partialValue {
                throw DataError.idx(path: path, field: .dataLength,
                                    found: "at most \(ceiling.partialValue) bytes (a \(file.count)-byte gzip file cannot hold more)",
                                    expected: expected)
            }
            var data = [UInt8](repeating: 0, count: product)
            let got = product == 0 ? 0 : try pull(into: &data, at: 0, count: product)
            if got < product {
                throw DataError.idx(path: path, field: .dataLength, found: "\(got) bytes", expected: expected)
            }
            // Anything more is trailing data; count up to 1 MiB of it for the message.
            var scratch = [UInt8](repeating: 0, count: 1 << 16)
            var extra = 0
            while extra <= 1 << 20 {
                let n = try pull(into: &scratch, at: 0, count: scratch.count)
                if n == 0 { break }
                extra += n
            }
            if extra > 0 {
                let found = extra > 1 << 20 ? "more than \(product + (1 << 20)) bytes" : "\(product + extra) bytes"
                throw DataError.idx(path: path, field: .dataLength, found: found, expected: expected)
            }
            return IDXArray(dimensions: dims, data: data)
        }
    }

    /// Serialises an array as raw IDX bytes (uint8).
    ///
    /// - Throws: `DataError.invalidArgument` if there are no dimensions or more than 255, a
    ///   dimension is outside `0...UInt32.max`, or `data.count` differs from their product.
    public static func encode(_ array: IDXArray) throws -> [UInt8] {
        let dims = array.dimensions
        guard (1...255).contains(dims.count) else {
            throw DataError.invalidArgument(name: "IDX dimension count", value: "\(dims.count)", expected: "1...255")
        }
        var product = 1
        for (k, d) in dims.enumerated() {
            guard d >= 0 && d <= Int(UInt32.max) else {
                throw DataError.invalidArgument(name: "IDX dims[\(k)]", value: "\(d)", expected: "0...\(UInt32.max)")
            }
            let (p, o) = product.multipliedReportingOverflow(by: d)
            guard !o else {
                throw DataError.invalidArgument(name: "IDX element count", value: "overflow", expected: "fits in Int")
            }
            product = p
        }
        guard array.data.count == product else {
            throw DataError.invalidArgument(name: "IDX data length", value: "\(array.data.count)",
                                            expected: "\(product) (the product of the dimensions)")
        }
        var out: [UInt8] = [0, 0, uint8DType, UInt8(dims.count)]
        out.reserveCapacity(4 + 4 * dims.count + product)
        for d in dims {
            let u = UInt32(d)
            out += [UInt8(u >> 24), UInt8((u >> 16) & 0xFF), UInt8((u >> 8) & 0xFF), UInt8(u & 0xFF)]
        }
        out += array.data
        return out
    }

    /// Writes an array as an IDX file, atomically (see `writeFileAtomically`).
    ///
    /// - Parameters:
    ///   - gzip: compress with gzip; `nil` (default) compresses when `path` ends in `.gz`.
    ///   - level: zlib level when compressing (deterministic output for a given level).
    /// - Throws: `DataError.invalidArgument` for an inconsistent array, `DataError.io` if the
    ///   file cannot be written; the previous file at `path`, if any, is then untouched.
    public static func write(_ array: IDXArray, to path: String, gzip: Bool? = nil, level: Int32 = 6) throws {
        var bytes = try encode(array)
        if gzip ?? path.hasSuffix(".gz") {
            bytes = try gzipCompress(bytes, level: level, path: path)
        }
        do {
            try writeFileAtomically(bytes, to: path)
        } catch let error as FileIOError {
            throw DataError.io(error)
        }
    }

    /// `[3, 4]` with axes `N H W C` → `"3 (N, H, W) or 4 (N, H, W, C)"`; without axis
    /// names (or for more dimensions than names) just the numbers: `"1"`, `"2, 3 or 4"`.
    static func describeDimensionCounts(_ counts: [Int], axisNames: [String]) -> String {
        let items = counts.map { k in
            k >= 1 && k <= axisNames.count ? "\(k) (\(axisNames.prefix(k).joined(separator: ", ")))" : "\(k)"
        }
        guard items.count > 1 else { return items.first ?? "none" }
        return items.dropLast().joined(separator: ", ") + " or " + items[items.count - 1]
    }

    private enum ByteSource {
        case raw([UInt8])
        case gzip(GzipInflater)
    }

    private static func hex(_ bytes: UInt8...) -> String {
        "0x" + bytes.map { b in
            let s = String(b, radix: 16, uppercase: true)
            return s.count == 1 ? "0" + s : s
        }.joined()
    }

    private static func dtypeName(_ code: UInt8) -> String {
        switch code {
        case 0x08: return "uint8"
        case 0x09: return "int8"
        case 0x0B: return "int16"
        case 0x0C: return "int32"
        case 0x0D: return "float32"
        case 0x0E: return "float64"
        default: return "not an IDX type"
        }
    }
}
