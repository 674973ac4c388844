// A minimal protobuf (proto3 wire format) encoder, enough to write ONNX models
// without a protobuf library.
//
// Wire format, per field: a key varint `(fieldNumber << 3) | wireType`, then
//   wire type 0 (varint):            the value, 7 bits per byte, low first, high bit = more
//   wire type 2 (length-delimited):  a varint byte count, then the bytes
//                                    (strings, bytes, nested messages, packed repeated)
//   wire type 5 (32-bit):            4 bytes little-endian (float)
// Negative int32/int64 values go out as 10-byte two's-complement varints
// (protobuf's `int64` encoding; ONNX uses no zigzag `sint` fields).

/// One message being written. Nested messages are written into their own
/// `ProtobufWriter` and appended with `message(_:_:)`.
///
/// ```
/// var dim = ProtobufWriter()
/// dim.int64(1, 28)            // bytes 08 1c
/// var shape = ProtobufWriter()
/// shape.message(1, dim)       // bytes 0a 02 08 1c
/// ```
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    enum WireType: UInt8 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case fixed32 = 5
    }

    /// Appends `value` as a base-128 varint. Example: 300 → `ac 02`.
    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func key(_ field: Int, _ wire: WireType) {
        varint(UInt64(field) << 3 | UInt64(wire.rawValue))
    }

    /// An `int64`/`int32`/enum field (negative values as 10-byte varints).
    mutating func int64(_ field: Int, _ value: Int64) {
        key(field, .varint)
        varint(UInt64(bitPattern: value))
    }

    /// A `float` field: wire type 5, IEEE 754 little-endian.
    mutating func float(_ field: Int, _ value: Float) {
        key(field, .fixed32)
        let b = value.bitPattern
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: b >> (8 * UInt32(i)))) }
    }

    /// A `bytes` field.
    mutating func bytes(_ field: Int, _ value: [UInt8]) {
        key(field, .lengthDelimited)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// A `string` field (UTF-8).
    mutating func string(_ field: Int, _ value: String) {
        bytes(field, Array(value.utf8))
    }

    /// An embedded message field.
    mutating func message(_ field: Int, _ value: ProtobufWriter) {
        bytes(field, value.bytes)
    }

    /// A packed `repeated int64` field (one length-delimited run of varints).
    mutating func packedInt64(_ field: Int, _ values: [Int64]) {
        var run = ProtobufWriter()
        for v in values { run.varint(UInt64(bitPattern: v)) }
        bytes(field, run.bytes)
    }

    /// A packed `repeated float` field (one length-delimited run of 4-byte floats).
    mutating func packedFloat(_ field: Int, _ values: [Float]) {
        var run: [UInt8] = []
        run.reserveCapacity(values.count * 4)
        for v in values {
            let b = v.bitPattern
            for i in 0..<4 { run.append(UInt8(truncatingIfNeeded: b >> (8 * UInt32(i)))) }
        }
        bytes(field, run)
    }
}
