// safetensors checkpoints (https://github.com/huggingface/safetensors), readable by PyTorch.
//
// File layout:
//
//   offset   size   field
//   0        8      N: header length, UInt64 little-endian
//   8        N      header: UTF-8 JSON object, padded with spaces (0x20) so 8 + N is a multiple of 8
//   8 + N    rest   data: the raw little-endian bytes of every tensor, back to back
//
// Header:
//
//   {"__metadata__": {"key": "value", ...},                       optional, string → string
//    "conv1.weight": {"dtype": "F32", "shape": [32, 1, 3, 3], "data_offsets": [0, 1152]},
//    ...}
//
//   data_offsets = [begin, end) in bytes, relative to the first data byte (8 + N).
//   end − begin = product(shape) × width(dtype); shape [] is a scalar (one element).
//
// What this writer does (so output is byte-identical for equal input):
//   - "__metadata__" first (omitted when empty), its keys sorted by UTF-8 bytes;
//   - tensors sorted by the UTF-8 bytes of their names, stored contiguously in that order;
//   - JSON written by hand, no whitespace, keys in the order dtype, shape, data_offsets.
//
// What this reader checks (each failure is its own `SafetensorsError` case naming the file,
// the tensor and the field): the 8-byte length exists and the header fits in the file and
// under 100 MB; the header is a JSON object starting with '{'; names are unique; every entry
// has exactly dtype, shape and data_offsets; the dtype is known; the shape product and byte
// size do not overflow; offsets are in range, match the size, do not overlap, and cover the
// data exactly (no gaps, no trailing bytes); metadata values are strings.

/// Element types of the safetensors format.
public enum SafetensorsDType: String, CaseIterable, Equatable, Sendable {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Bytes per element.
    public var byteWidth: Int {
        switch self {
        case .bool, .u8, .i8: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .i64, .u64: return 8
        }
    }
}

/// One tensor: dtype, shape and its raw little-endian bytes.
public struct SafetensorsTensor: Equatable, Sendable {
    public let dtype: SafetensorsDType
    public let shape: [Int]
    /// `elementCount × dtype.byteWidth` bytes, little-endian. Equality is bit-exact.
    public let bytes: [UInt8]

    /// Number of elements (`1` for shape `[]`).
    public var elementCount: Int { bytes.count / dtype.byteWidth }

    /// - Throws: `SafetensorsError.valueCountMismatch` if `bytes.count` is not
    ///   `product(shape) × dtype.byteWidth`, `.shapeOverflow` if that product overflows,
    ///   `.invalidShape` for a negative dimension.
    public init(dtype: SafetensorsDType, shape: [Int], bytes: [UInt8]) throws {
        let count = try SafetensorsTensor.byteCount(dtype: dtype, shape: shape, path: "", tensor: "")
        guard count == bytes.count else {
            throw SafetensorsError.valueCountMismatch(tensor: "", shape: shape, dtype: dtype.rawValue,
                                                      expectedBytes: count, foundBytes: bytes.count)
        }
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// An F32 tensor. `floats.count` must equal the product of `shape`.
    public init(shape: [Int], floats: [Float]) throws {
        #if _endian(little)
        let bytes = floats.withUnsafeBytes { Array($0) }
        #else
        var bytes = [UInt8](repeating: 0, count: floats.count * 4)
        for (i, f) in floats.enumerated() { storeLE(f.bitPattern, &bytes, at: i * 4) }
        #endif
        try self.init(dtype: .f32, shape: shape, bytes: bytes)
    }

    /// An I64 tensor. `values.count` must equal the product of `shape`.
    public init(shape: [Int], int64s values: [Int64]) throws {
        var bytes = [UInt8](repeating: 0, count: values.count * 8)
        for (i, v) in values.enumerated() { storeLE(UInt64(bitPattern: v), &bytes, at: i * 8) }
        try self.init(dtype: .i64, shape: shape, bytes: bytes)
    }

    /// A U8 tensor. `values.count` must equal the product of `shape`.
    public init(shape: [Int], uint8s values: [UInt8]) throws {
        try self.init(dtype: .u8, shape: shape, bytes: values)
    }

    /// The values of an F32 tensor, bit-exact (NaN payloads and −0.0 preserved).
    /// - Throws: `SafetensorsError.wrongDType` for any other dtype.
    public func floats() throws -> [Float] {
        try require(.f32)
        #if _endian(little)
        return [Float](unsafeUninitializedCapacity: elementCount) { buffer, initialized in
            bytes.withUnsafeBytes { src in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: src)
            }
            initialized = elementCount
        }
        #else
        return (0..<elementCount).map { Float(bitPattern: loadLE(bytes, at: $0 * 4, as: UInt32.self)) }
        #endif
    }

    /// The values of an I64 tensor.
    /// - Throws: `SafetensorsError.wrongDType` for any other dtype.
    public func int64s() throws -> [Int64] {
        try require(.i64)
        return (0..<elementCount).map { Int64(bitPattern: loadLE(bytes, at: $0 * 8, as: UInt64.self)) }
    }

    /// The values of a U8 tensor.
    /// - Throws: `SafetensorsError.wrongDType` for any other dtype.
    public func uint8s() throws -> [UInt8] {
        try require(.u8)
        return bytes
    }

    private func require(_ wanted: SafetensorsDType) throws {
        guard dtype == wanted else {
            throw SafetensorsError.wrongDType(path: "", tensor: "", found: dtype.rawValue, expected: wanted.rawValue)
        }
    }

    /// `product(shape) × width`, overflow-checked.
    static func byteCount(dtype: SafetensorsDType, shape: [Int], path: String, tensor: String) throws -> Int {
        var product = dtype.byteWidth
        for d in shape {
            guard d >= 0 else { throw SafetensorsError.invalidShape(path: path, tensor: tensor, shape: shape) }
            let (p, o) = product.multipliedReportingOverflow(by: d)
            guard !o else { throw SafetensorsError.shapeOverflow(path: path, tensor: tensor, shape: shape) }
            product = p
        }
        return product
    }
}

/// Everything that can be wrong with a safetensors file or its use.
///
/// Read errors carry the file path and, where one is involved, the tensor name.
public enum SafetensorsError: Error, Equatable, Sendable, CustomStringConvertible {
    case io(FileIOError)
    /// Fewer than 8 bytes: no header length.
    case missingHeaderLength(path: String, fileSize: Int)
    /// The header length points past the end of the file.
    case headerBeyondFile(path: String, headerLength: UInt64, fileSize: Int)
    /// The header length exceeds the 100 MB limit.
    case headerTooLarge(path: String, headerLength: UInt64, limit: Int)
    /// The header is not valid JSON (offset is from the start of the file).
    case invalidJSON(path: String, offset: Int, detail: String)
    /// The same tensor name (or `__metadata__`) appears twice.
    case duplicateName(path: String, name: String)
    /// A tensor entry is not an object, lacks a field, has an unknown field or a field of the wrong kind.
    case invalidTensorField(path: String, tensor: String, field: String, detail: String)
    /// The dtype string is not one of `SafetensorsDType`.
    case unknownDType(path: String, tensor: String, dtype: String)
    /// A shape has a negative dimension.
    case invalidShape(path: String, tensor: String, shape: [Int])
    /// The shape's element or byte count overflows.
    case shapeOverflow(path: String, tensor: String, shape: [Int])
    /// `end − begin` differs from `product(shape) × width`.
    case sizeMismatch(path: String, tensor: String, shape: [Int], dtype: String, expectedBytes: Int, offsetsBytes: Int)
    /// `data_offsets` extend beyond the data section (a truncated file, typically).
    case offsetsOutOfRange(path: String, tensor: String, begin: Int, end: Int, dataLength: Int)
    /// Two tensors share bytes.
    case offsetsOverlap(path: String, tensor: String, other: String)
    /// Bytes of the data section that belong to no tensor (a gap or trailing bytes).
    case dataNotCovered(path: String, from: Int, to: Int)
    /// `__metadata__` is not an object of strings.
    case invalidMetadata(path: String, key: String, detail: String)
    /// A tensor name the writer cannot store (`__metadata__`, or empty).
    case invalidName(name: String)
    /// Constructing a tensor with the wrong number of bytes or values.
    case valueCountMismatch(tensor: String, shape: [Int], dtype: String, expectedBytes: Int, foundBytes: Int)
    /// Reading values as the wrong type (`path` is empty for a tensor not read from a file).
    case wrongDType(path: String, tensor: String, found: String, expected: String)
    /// A tensor that is not in the file.
    case missingTensor(path: String, tensor: String)

    public var description: String {
        switch self {
        case .io(let e): return e.description
        case .missingHeaderLength(let p, let size):
            return "\(p): not a safetensors file: it has \(size) bytes, fewer than the 8 of a header length"
        case .headerBeyondFile(let p, let n, let size):
            return "\(p): not a safetensors file, or a truncated one: its first 8 bytes give a header of \(n) bytes, "
                + "but the file has \(size)"
        case .headerTooLarge(let p, let n, let limit):
            return "\(p): not a safetensors file: its first 8 bytes, read as a header length, give \(String(n)) bytes, "
                + "more than the \(limit) a header may have"
        case .invalidJSON(let p, let offset, let detail):
            return "\(p): safetensors header is not valid JSON at byte \(offset): \(detail)"
        case .duplicateName(let p, let name):
            return "\(p): tensor name '\(name)' appears more than once"
        case .invalidTensorField(let p, let t, let field, let detail):
            return "\(p): tensor '\(t)' field \(field): \(detail)"
        case .unknownDType(let p, let t, let dtype):
            return "\(p): tensor '\(t)' dtype: unknown dtype \"\(dtype)\", expected one of "
                + SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
        case .invalidShape(let p, let t, let shape):
            return "\(p): tensor '\(t)' shape \(shape): negative dimension"
        case .shapeOverflow(let p, let t, let shape):
            return "\(p): tensor '\(t)' shape \(shape): element count overflows"
        case .sizeMismatch(let p, let t, let shape, let dtype, let expected, let found):
            return "\(p): tensor '\(t)' data_offsets: span \(found) bytes, but shape \(shape) of \(dtype) needs \(expected)"
        case .offsetsOutOfRange(let p, let t, let b, let e, let length):
            return "\(p): tensor '\(t)' data_offsets [\(b), \(e)] beyond the \(length)-byte data section (truncated?)"
        case .offsetsOverlap(let p, let t, let other):
            return "\(p): tensor '\(t)' data_offsets overlap those of '\(other)'"
        case .dataNotCovered(let p, let from, let to):
            return "\(p): data bytes \(from)..<\(to) belong to no tensor"
        case .invalidMetadata(let p, let key, let detail):
            return "\(p): __metadata__ '\(key)': \(detail)"
        case .invalidName(let name):
            return "cannot store a tensor named '\(name)'"
        case .valueCountMismatch(let t, let shape, let dtype, let expected, let found):
            return "\(t.isEmpty ? "tensor" : "tensor '\(t)'"): shape \(shape) of \(dtype) needs \(expected) bytes, got \(found)"
        case .wrongDType(let p, let t, let found, let expected):
            return "\(p.isEmpty ? "" : "\(p): ")\(t.isEmpty ? "tensor" : "tensor '\(t)'") is \(found), not \(expected)"
        case .missingTensor(let p, let t):
            return "\(p): no tensor named '\(t)'"
        }
    }
}

/// A whole safetensors file in memory.
///
/// ```swift
/// var file = SafetensorsFile()
/// file.tensors["fc.weight"] = try SafetensorsTensor(shape: [10, 64], floats: weights)
/// file.metadata["architecture"] = "cnn 32-64-128-128"
/// try file.write(path: "supernet.safetensors")
/// let back = try SafetensorsFile.read(path: "supernet.safetensors")
/// ```
public struct SafetensorsFile: Equatable, Sendable {
    public var tensors: [String: SafetensorsTensor]
    public var metadata: [String: String]

    /// Largest header accepted (the reference implementation's limit).
    public static let maxHeaderLength = 100_000_000

    public init(tensors: [String: SafetensorsTensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor called `name`. `path` only labels the error.
    /// - Throws: `SafetensorsError.missingTensor`.
    public func tensor(_ name: String, path: String = "<checkpoint>") throws -> SafetensorsTensor {
        guard let t = tensors[name] else { throw SafetensorsError.missingTensor(path: path, tensor: name) }
        return t
    }

    /// Shape and values of an F32 tensor. `path` only labels the error.
    /// - Throws: `.missingTensor`, or `.wrongDType` naming the file and the tensor.
    public func floats(_ name: String, path: String = "<checkpoint>") throws -> (shape: [Int], values: [Float]) {
        let t = try tensor(name, path: path)
        do {
            return (t.shape, try t.floats())
        } catch SafetensorsError.wrongDType(_, _, let found, let expected) {
            throw SafetensorsError.wrongDType(path: path, tensor: name, found: found, expected: expected)
        }
    }

    // MARK: Writing

    /// The file's bytes; deterministic (same tensors and metadata → same bytes).
    /// - Throws: `SafetensorsError.invalidName` for a tensor named `__metadata__` or `""`.
    public func encoded() throws -> [UInt8] {
        let names = tensors.keys.sorted(by: utf8Less)
        var header: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        func separator() {
            if !first { header.append(UInt8(ascii: ",")) }
            first = false
        }
        if !metadata.isEmpty {
            separator()
            appendHeaderJSONString("__metadata__", to: &header)
            header += Array(":{".utf8)
            for (i, key) in metadata.keys.sorted(by: utf8Less).enumerated() {
                if i > 0 { header.append(UInt8(ascii: ",")) }
                appendHeaderJSONString(key, to: &header)
                header.append(UInt8(ascii: ":"))
                appendHeaderJSONString(metadata[key]!, to: &header)
            }
            header.append(UInt8(ascii: "}"))
        }
        var offset = 0
        for name in names {
            guard !name.isEmpty, name != "__metadata__" else { throw SafetensorsError.invalidName(name: name) }
            let t = tensors[name]!
            separator()
            appendHeaderJSONString(name, to: &header)
            let shape = t.shape.map(String.init).joined(separator: ",")
            header += Array(":{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.bytes.count)]}".utf8)
            offset += t.bytes.count
        }
        header.append(UInt8(ascii: "}"))
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }

        var out = [UInt8](repeating: 0, count: 8)
        storeLE(UInt64(header.count), &out, at: 0)
        out.reserveCapacity(8 + header.count + offset)
        out += header
        for name in names { out += tensors[name]!.bytes }
        return out
    }

    /// Writes the file atomically (temp file, fsync, rename; see `writeFileAtomically`).
    /// - Throws: `.invalidName`, or `.io` naming the path and errno; the old file then survives.
    public func write(path: String) throws {
        let bytes = try encoded()
        do {
            try writeFileAtomically(bytes, to: path)
        } catch let e as FileIOError {
            throw SafetensorsError.io(e)
        }
    }

    // MARK: Reading

    /// Reads and validates a file.
    /// - Throws: `SafetensorsError` naming `path`, and the tensor and field at fault.
    public static func read(path: String) throws -> SafetensorsFile {
        let bytes: [UInt8]
        do {
            bytes = try readFileBytes(atPath: path)
        } catch let e as FileIOError {
            throw SafetensorsError.io(e)
        }
        return try decode(bytes, path: path)
    }

    /// Parses and validates file bytes already in memory; `path` labels errors.
    public static func decode(_ file: [UInt8], path: String = "<memory>") throws -> SafetensorsFile {
        // 1. Header length and bounds.
        guard file.count >= 8 else { throw SafetensorsError.missingHeaderLength(path: path, fileSize: file.count) }
        let n = loadLE(file, at: 0, as: UInt64.self)
        guard n <= UInt64(maxHeaderLength) else {
            throw SafetensorsError.headerTooLarge(path: path, headerLength: n, limit: maxHeaderLength)
        }
        guard n <= UInt64(file.count - 8) else {
            throw SafetensorsError.headerBeyondFile(path: path, headerLength: n, fileSize: file.count)
        }
        let headerEnd = 8 + Int(n)
        let dataLength = file.count - headerEnd

        // 2. JSON.
        guard n > 0, file[8] == UInt8(ascii: "{") else {
            throw SafetensorsError.invalidJSON(path: path, offset: 8, detail: "a safetensors header starts with '{' (is this a safetensors file?)")
        }
        let root: HeaderJSONValue
        do {
            root = try HeaderJSONParser.parse(Array(file[8..<headerEnd]))
        } catch {
            throw SafetensorsError.invalidJSON(path: path, offset: 8 + error.offset, detail: error.message)
        }
        guard case .object(let members) = root else {
            throw SafetensorsError.invalidJSON(path: path, offset: 8, detail: "header is not a JSON object")
        }

        // 3. Entries.
        struct Entry { var name: String; var begin: Int; var end: Int; var dtype: SafetensorsDType; var shape: [Int] }
        var entries: [Entry] = []
        var seen = Set<String>()
        var metadata: [String: String] = [:]
        for (name, value) in members {
            guard seen.insert(name).inserted else { throw SafetensorsError.duplicateName(path: path, name: name) }
            if name == "__metadata__" {
                metadata = try parseMetadata(value, path: path)
                continue
            }
            func bad(_ field: String, _ detail: String) -> SafetensorsError {
                .invalidTensorField(path: path, tensor: name, field: field, detail: detail)
            }
            guard case .object(let fields) = value else { throw bad("(entry)", "expected an object, found \(value.kind)") }
            var dtypeValue: HeaderJSONValue?, shapeValue: HeaderJSONValue?, offsetsValue: HeaderJSONValue?
            for (key, v) in fields {
                switch key {
                case "dtype": if dtypeValue != nil { throw bad(key, "appears twice") }; dtypeValue = v
                case "shape": if shapeValue != nil { throw bad(key, "appears twice") }; shapeValue = v
                case "data_offsets": if offsetsValue != nil { throw bad(key, "appears twice") }; offsetsValue = v
                default: throw bad(key, "unknown field")
                }
            }
            guard let dtypeValue else { throw bad("dtype", "missing") }
            guard let shapeValue else { throw bad("shape", "missing") }
            guard let offsetsValue else { throw bad("data_offsets", "missing") }

            guard case .string(let dtypeName) = dtypeValue else { throw bad("dtype", "expected a string, found \(dtypeValue.kind)") }
            guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
                throw SafetensorsError.unknownDType(path: path, tensor: name, dtype: dtypeName)
            }
            let shape = try integers(shapeValue, field: "shape", bad: bad)
            let offsets = try integers(offsetsValue, field: "data_offsets", bad: bad)
            guard offsets.count == 2 else { throw bad("data_offsets", "expected [begin, end], found \(offsets.count) numbers") }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin <= end else { throw bad("data_offsets", "begin \(begin) is after end \(end)") }
            let bytes = try SafetensorsTensor.byteCount(dtype: dtype, shape: shape, path: path, tensor: name)
            guard end <= dataLength else {
                throw SafetensorsError.offsetsOutOfRange(path: path, tensor: name, begin: begin, end: end, dataLength: dataLength)
            }
            guard bytes == end - begin else {
                throw SafetensorsError.sizeMismatch(path: path, tensor: name, shape: shape, dtype: dtypeName,
                                                    expectedBytes: bytes, offsetsBytes: end - begin)
            }
            entries.append(Entry(name: name, begin: begin, end: end, dtype: dtype, shape: shape))
        }

        // 4. Coverage: sorted by position, each tensor starts where the previous one ended.
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var covered = 0
        var previous = ""
        for e in entries {
            if e.begin < covered { throw SafetensorsError.offsetsOverlap(path: path, tensor: e.name, other: previous) }
            if e.begin > covered { throw SafetensorsError.dataNotCovered(path: path, from: covered, to: e.begin) }
            covered = e.end
            previous = e.name
        }
        if covered != dataLength { throw SafetensorsError.dataNotCovered(path: path, from: covered, to: dataLength) }

        // 5. Copy out.
        var tensors: [String: SafetensorsTensor] = [:]
        for e in entries {
            tensors[e.name] = try SafetensorsTensor(dtype: e.dtype, shape: e.shape,
                                                    bytes: Array(file[(headerEnd + e.begin)..<(headerEnd + e.end)]))
        }
        return SafetensorsFile(tensors: tensors, metadata: metadata)
    }

    private static func parseMetadata(_ value: HeaderJSONValue, path: String) throws -> [String: String] {
        if case .null = value { return [:] }
        guard case .object(let members) = value else {
            throw SafetensorsError.invalidMetadata(path: path, key: "__metadata__", detail: "expected an object, found \(value.kind)")
        }
        var out: [String: String] = [:]
        for (key, v) in members {
            guard case .string(let s) = v else {
                throw SafetensorsError.invalidMetadata(path: path, key: key, detail: "expected a string, found \(v.kind)")
            }
            guard out.updateValue(s, forKey: key) == nil else {
                throw SafetensorsError.invalidMetadata(path: path, key: key, detail: "key appears twice")
            }
        }
        return out
    }

    private static func integers(_ value: HeaderJSONValue, field: String,
                                 bad: (String, String) -> SafetensorsError) throws -> [Int] {
        guard case .array(let elements) = value else { throw bad(field, "expected an array, found \(value.kind)") }
        return try elements.map { element in
            guard case .number(let text, let integer) = element else {
                throw bad(field, "expected integers, found \(element.kind)")
            }
            guard let integer, integer >= 0 else {
                throw bad(field, "\(text) is not a non-negative integer that fits in 64 bits")
            }
            return integer
        }
    }
}

/// Orders strings by their UTF-8 bytes (locale- and normalization-independent).
private func utf8Less(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

private func storeLE<T: FixedWidthInteger>(_ value: T, _ bytes: inout [UInt8], at offset: Int) {
    var v = value.littleEndian
    withUnsafeBytes(of: &v) { raw in
        for i in 0..<MemoryLayout<T>.size { bytes[offset + i] = raw[i] }
    }
}

private func loadLE<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int, as: T.Type) -> T {
    var v: T = 0
    for i in (0..<MemoryLayout<T>.size).reversed() { v = v << 8 | T(bytes[offset + i]) }
    return v
}
