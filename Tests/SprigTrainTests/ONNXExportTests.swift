// `sprig export --onnx`, read back with a protobuf reader written here apart
// from the encoder: wire types and field numbers of onnx.proto, the node op
// types in order, and the initializer shapes (OIHW convolution weights).

import Foundation
import XCTest

/// One protobuf field as read from the wire: number, wire type, and either a
/// varint value or the bytes of a length-delimited field.
struct WireField {
    let number: Int
    let wireType: Int
    let varint: UInt64
    let payload: [UInt8]
}

/// Splits `bytes` into its top-level fields; throws on a truncated or unknown wire type.
func wireFields(_ bytes: [UInt8]) throws -> [WireField] {
    struct Truncated: Error {}
    var i = 0
    func readVarint() throws -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard i < bytes.count, shift < 64 else { throw Truncated() }
            let b = bytes[i]; i += 1
            v |= UInt64(b & 0x7f) << shift
            if b < 0x80 { return v }
            shift += 7
        }
    }
    var out: [WireField] = []
    while i < bytes.count {
        let key = try readVarint()
        let number = Int(key >> 3), wire = Int(key & 7)
        switch wire {
        case 0: out.append(WireField(number: number, wireType: 0, varint: try readVarint(), payload: []))
        case 2:
            let n = Int(try readVarint())
            guard n >= 0, i + n <= bytes.count else { throw Truncated() }
            out.append(WireField(number: number, wireType: 2, varint: 0, payload: Array(bytes[i..<i + n]))); i += n
        case 5:
            guard i + 4 <= bytes.count else { throw Truncated() }
            out.append(WireField(number: number, wireType: 5, varint: 0, payload: Array(bytes[i..<i + 4]))); i += 4
        default: throw Truncated()
        }
    }
    return out
}

final class ONNXExportTests: XCTestCase {
    func testExportOfTheReferenceCNNParsesAsTheIntendedONNXModel() throws {
        guard let exe = sprigExecutable() else { throw XCTSkip("sprig is not built") }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("sprig-onnx-\(UUID().uuidString).onnx")
        defer { try? FileManager.default.removeItem(at: out) }
        let p = Process()
        p.executableURL = exe
        p.arguments = ["export", packageRoot.appendingPathComponent("Tests/Fixtures/ref-cnn-f32.sprig").path, "--onnx", out.path]
        try p.run(); p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let model = try wireFields(Array(try Data(contentsOf: out)))

        // ModelProto: ir_version (1, varint), graph (7, bytes), opset_import (8) with version (2) = 13.
        XCTAssertEqual(model.first { $0.number == 1 }?.wireType, 0)
        let opset = try wireFields(try XCTUnwrap(model.first { $0.number == 8 }).payload)
        XCTAssertEqual(opset.first { $0.number == 2 }?.varint, 13)
        let graph = try wireFields(try XCTUnwrap(model.first { $0.number == 7 && $0.wireType == 2 }).payload)

        // GraphProto.node (1): op_type (4) in order.
        let ops = try graph.filter { $0.number == 1 }.map { node -> String in
            String(decoding: try XCTUnwrap(try wireFields(node.payload).first { $0.number == 4 }).payload, as: UTF8.self)
        }
        XCTAssertEqual(ops, ["Conv", "Relu", "MaxPool", "Identity", "Conv", "Relu", "MaxPool", "Identity",
                             "Conv", "Relu", "GlobalAveragePool", "Flatten", "Identity", "Gemm", "Identity"])

        // GraphProto.initializer (5): TensorProto dims (1, packed) and data_type (2) = FLOAT.
        var shapes: [[Int]] = []
        for t in graph.filter({ $0.number == 5 }) {
            let f = try wireFields(t.payload)
            XCTAssertEqual(f.first { $0.number == 2 }?.varint, 1)
            shapes.append(packedVarints(try XCTUnwrap(f.first { $0.number == 1 }).payload).map(Int.init))
            let raw = try XCTUnwrap(f.first { $0.number == 9 }).payload
            XCTAssertEqual(raw.count, 4 * (shapes.last ?? []).reduce(1, *))
        }
        XCTAssertEqual(shapes, [[16, 1, 3, 3], [16], [32, 16, 3, 3], [32], [64, 32, 3, 3], [64], [10, 64], [10]])

        // GraphProto.input (11): ValueInfoProto "input", shape [1, 1, 28, 28].
        let input = try wireFields(try XCTUnwrap(graph.first { $0.number == 11 }).payload)
        XCTAssertEqual(String(decoding: try XCTUnwrap(input.first { $0.number == 1 }).payload, as: UTF8.self), "input")
        let tensorType = try wireFields(try XCTUnwrap(try wireFields(try XCTUnwrap(input.first { $0.number == 2 }).payload).first { $0.number == 1 }).payload)
        let dims = try wireFields(try XCTUnwrap(tensorType.first { $0.number == 2 }).payload).map { dim in
            try XCTUnwrap(try wireFields(dim.payload).first { $0.number == 1 }).varint
        }
        XCTAssertEqual(dims, [1, 1, 28, 28])
    }
}

/// The values of a packed run of varints.
func packedVarints(_ bytes: [UInt8]) -> [UInt64] {
    var out: [UInt64] = [], v: UInt64 = 0, shift: UInt64 = 0
    for b in bytes {
        v |= UInt64(b & 0x7f) << shift
        if b < 0x80 { out.append(v); v = 0; shift = 0 } else { shift += 7 }
    }
    return out
}
