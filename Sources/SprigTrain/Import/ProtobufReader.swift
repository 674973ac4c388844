// A bounded protobuf (proto2/proto3 wire format) reader: the decoding side of
// Sources/sprig/ProtobufWriter.swift, written for untrusted files.
//
// Wire format, per field: a key varint `(fieldNumber << 3) | wireType`, then
//   wire type 0 (varint):            the value, 7 bits per byte, low first, high bit = more (≤ 10 bytes)
//   wire type 1 (64-bit):            8 bytes little-endian
//   wire type 2 (length-delimited):  a varint byte count, then the bytes
//                                    (strings, bytes, nested messages, packed repeated)
//   wire type 5 (32-bit):            4 bytes little-endian
// Wire types 3 and 4 (groups) and 6, 7 are refused.
//
// Discipline (as the blob reader's): every varint is at most 10 bytes and fits
// 64 bits; every length and offset is checked against the end of the enclosing
// message before it is used; field numbers are 1 … 2^29 − 1; nested messages are
// at most `maxDepth` deep. Every error names the field's path
// ("graph.node[3].attribute[1].ints") and the byte offset in the file.

/// A malformed or unsupported ONNX file, naming the field or node at fault.
public struct ONNXError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Where: a field path ("graph.node[3].attribute[1].ints"), or a node ("node 3 'Conv_3' (Conv)").
    public var place: String
    public var detail: String

    public init(_ place: String, _ detail: String) {
        self.place = place
        self.detail = detail
    }

    public var description: String { place.isEmpty ? detail : "\(place): \(detail)" }
}

/// One field read from the wire. For wire type 2, `range` is the payload's bytes.
public struct ProtobufField: Sendable {
    public enum WireType: UInt8, Sendable {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5

        var name: String {
            switch self {
            case .varint: return "varint (0)"
            case .fixed64: return "64-bit (1)"
            case .lengthDelimited: return "length-delimited (2)"
            case .fixed32: return "32-bit (5)"
            }
        }
    }

    public var number: Int
    public var wireType: WireType
    /// The varint, or the 32/64 bits of a fixed field.
    public var value: UInt64
    /// The payload of a length-delimited field (empty otherwise).
    public var range: Range<Int>
    /// Offset of the field's key in the file.
    public var offset: Int
}

/// Reads the fields of one message, `bytes[range]`, in order.
///
/// ```
/// var r = ProtobufReader(bytes: [0x08, 0x96, 0x01], path: "model")
/// let f = try r.next()   // field 1, varint 150
/// ```
public struct ProtobufReader {
    /// The deepest nesting of messages a reader accepts.
    public static let maxDepth = 32

    public let bytes: [UInt8]
    public private(set) var position: Int
    public let end: Int
    /// The path of the message being read ("graph.node[3]").
    public let path: String
    public let depth: Int

    /// A reader over the whole of `bytes`.
    public init(bytes: [UInt8], path: String) {
        self.bytes = bytes
        self.position = 0
        self.end = bytes.count
        self.path = path
        self.depth = 0
    }

    private init(bytes: [UInt8], range: Range<Int>, path: String, depth: Int) {
        self.bytes = bytes
        self.position = range.lowerBound
        self.end = range.upperBound
        self.path = path
        self.depth = depth
    }

    func error(_ field: String, _ detail: String) -> ONNXError {
        ONNXError(field.isEmpty ? path : path.isEmpty ? field : "\(path).\(field)", detail)
    }

    /// A base-128 varint at `position`, at most 10 bytes and within `end`.
    mutating func varint(_ field: String) throws(ONNXError) -> UInt64 {
        let start = position
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else {
                throw error(field, "truncated varint at byte \(start) (the message ends at byte \(end))")
            }
            let b = bytes[position]
            position += 1
            if shift == 63, b > 1 {
                throw error(field, "varint at byte \(start) does not fit 64 bits")
            }
            value |= UInt64(b & 0x7f) << shift
            if b < 0x80 { return value }
            shift += 7
            guard shift < 64 else { throw error(field, "varint at byte \(start) is longer than 10 bytes") }
        }
    }

    /// The next field, or nil at the end of the message.
    ///
    /// - Throws: ``ONNXError`` for a truncated key, a field number outside 1 … 2^29 − 1,
    ///   a group or unknown wire type, or a length or fixed field that runs past the message.
    public mutating func next() throws(ONNXError) -> ProtobufField? {
        guard position < end else { return nil }
        let offset = position
        let key = try varint("")
        let number = key >> 3
        guard number >= 1, number <= (1 << 29) - 1 else {
            throw error("", "field number \(number) at byte \(offset) is not in 1…536870911")
        }
        guard let wire = ProtobufField.WireType(rawValue: UInt8(key & 7)) else {
            throw error("field \(number)", "wire type \(key & 7) at byte \(offset) is not supported (groups and types 6, 7 are refused)")
        }
        switch wire {
        case .varint:
            let v = try varint("field \(number)")
            return ProtobufField(number: Int(number), wireType: wire, value: v, range: position..<position, offset: offset)
        case .fixed64, .fixed32:
            let n = wire == .fixed64 ? 8 : 4
            guard end - position >= n else {
                throw error("field \(number)", "\(n)-byte value at byte \(position) runs past the message end at byte \(end)")
            }
            var v: UInt64 = 0
            for i in 0..<n { v |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
            position += n
            return ProtobufField(number: Int(number), wireType: wire, value: v, range: position..<position, offset: offset)
        case .lengthDelimited:
            let at = position
            let length = try varint("field \(number)")
            guard length <= UInt64(end - position) else {
                throw error("field \(number)", "length \(length) at byte \(at) runs past the message end at byte \(end)")
            }
            let start = position
            position += Int(length)
            return ProtobufField(number: Int(number), wireType: wire, value: length, range: start..<position, offset: offset)
        }
    }

    /// A reader for the nested message in `field` (wire type 2), whose path is `path`.
    ///
    /// - Throws: ``ONNXError`` when messages nest deeper than ``maxDepth``.
    public func message(_ field: ProtobufField, path: String) throws(ONNXError) -> ProtobufReader {
        guard depth + 1 <= ProtobufReader.maxDepth else {
            throw ONNXError(path, "messages nest deeper than \(ProtobufReader.maxDepth)")
        }
        return ProtobufReader(bytes: bytes, range: field.range, path: path, depth: depth + 1)
    }

    /// Requires `field` to have wire type `wire`, naming it as `name`.
    public func expect(_ field: ProtobufField, _ wire: ProtobufField.WireType, _ name: String) throws(ONNXError) {
        guard field.wireType == wire else {
            throw error(name, "wire type \(field.wireType.name) at byte \(field.offset), expected \(wire.name)")
        }
    }

    /// A string field (UTF-8; invalid sequences become U+FFFD), at most `limit` bytes.
    public func string(_ field: ProtobufField, _ name: String, limit: Int = 1 << 16) throws(ONNXError) -> String {
        try expect(field, .lengthDelimited, name)
        guard field.range.count <= limit else {
            throw error(name, "string of \(field.range.count) bytes is longer than \(limit)")
        }
        return String(decoding: bytes[field.range], as: UTF8.self)
    }

    /// An int64 field (two's complement varint).
    public func int64(_ field: ProtobufField, _ name: String) throws(ONNXError) -> Int64 {
        try expect(field, .varint, name)
        return Int64(bitPattern: field.value)
    }

    /// A float field (wire type 5).
    public func float(_ field: ProtobufField, _ name: String) throws(ONNXError) -> Float {
        try expect(field, .fixed32, name)
        return Float(bitPattern: UInt32(truncatingIfNeeded: field.value))
    }

    /// Appends a repeated int64 field, packed (wire type 2) or not (wire type 0), keeping at most `limit` values.
    public func appendInt64s(_ field: ProtobufField, _ name: String, to out: inout [Int64], limit: Int) throws(ONNXError) {
        switch field.wireType {
        case .varint:
            guard out.count < limit else { throw error(name, "more than \(limit) values") }
            out.append(Int64(bitPattern: field.value))
        case .lengthDelimited:
            var run = ProtobufReader(bytes: bytes, range: field.range, path: path, depth: depth)
            while run.position < run.end {
                guard out.count < limit else { throw error(name, "more than \(limit) values") }
                out.append(Int64(bitPattern: try run.varint(name)))
            }
        default:
            throw error(name, "wire type \(field.wireType.name) at byte \(field.offset), expected varint (0) or packed (2)")
        }
    }

    /// Appends a repeated float field, packed (wire type 2) or not (wire type 5), keeping at most `limit` values.
    public func appendFloats(_ field: ProtobufField, _ name: String, to out: inout [Float], limit: Int) throws(ONNXError) {
        switch field.wireType {
        case .fixed32:
            guard out.count < limit else { throw error(name, "more than \(limit) values") }
            out.append(Float(bitPattern: UInt32(truncatingIfNeeded: field.value)))
        case .lengthDelimited:
            guard field.range.count % 4 == 0 else {
                throw error(name, "packed floats of \(field.range.count) bytes, not a multiple of 4")
            }
            guard field.range.count / 4 <= limit - out.count else { throw error(name, "more than \(limit) values") }
            var i = field.range.lowerBound
            while i < field.range.upperBound {
                let b = UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
                out.append(Float(bitPattern: b))
                i += 4
            }
        default:
            throw error(name, "wire type \(field.wireType.name) at byte \(field.offset), expected 32-bit (5) or packed (2)")
        }
    }
}
