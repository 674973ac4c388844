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
    /// The top-level fields of `sprig export FIXTURE --onnx` (a committed fixture).
    func exportedModel(_ fixture: String) throws -> [WireField] {
        guard let exe = sprigExecutable() else { throw XCTSkip("sprig is not built") }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("sprig-onnx-\(UUID().uuidString).onnx")
        defer { try? FileManager.default.removeItem(at: out) }
        let p = Process()
        p.executableURL = exe
        p.arguments = ["export", packageRoot.appendingPathComponent("Tests/Fixtures/\(fixture)").path, "--onnx", out.path]
        try p.run(); p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        return try wireFields(Array(try Data(contentsOf: out)))
    }

    func testExportOfTheReferenceCNNParsesAsTheIntendedONNXModel() throws {
        let model = try exportedModel("ref-cnn-f32.sprig")

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

    /// The q8 reference CNN goes out as a QDQ graph: QuantizeLinear on the input, then per
    /// int8 op DequantizeLinear of its inputs, the float op and QuantizeLinear of its output,
    /// and a DequantizeLinear at the end. The int8 weights are the blob's bytes in OIHW order,
    /// dequantized per output channel (axis 0); the int32 biases are the blob's bytes, with
    /// scale s_x · s_w[c]. Blob fields are read straight from the file (docs/blob-format.md).
    func testQ8ExportIsAQDQGraphOfTheBlobsOwnInt8Tensors() throws {
        let blob = RawBlob(bytes: [UInt8](try Data(contentsOf: packageRoot.appendingPathComponent("Tests/Fixtures/ref-cnn-q8.sprig"))))
        let graph = try wireFields(try XCTUnwrap(try exportedModel("ref-cnn-q8.sprig").first { $0.number == 7 }).payload)
        let nodes = try graph.filter { $0.number == 1 }.map { try ONNXNode($0.payload) }
        XCTAssertEqual(nodes.map(\.type), [
            "QuantizeLinear",
            "DequantizeLinear", "DequantizeLinear", "DequantizeLinear", "Conv", "Relu", "QuantizeLinear",
            "DequantizeLinear", "MaxPool", "QuantizeLinear",
            "DequantizeLinear", "DequantizeLinear", "DequantizeLinear", "Conv", "Relu", "QuantizeLinear",
            "DequantizeLinear", "MaxPool", "QuantizeLinear",
            "DequantizeLinear", "DequantizeLinear", "DequantizeLinear", "Conv", "Relu", "QuantizeLinear",
            "DequantizeLinear", "GlobalAveragePool", "QuantizeLinear", "Flatten",
            "DequantizeLinear", "DequantizeLinear", "DequantizeLinear", "Gemm", "QuantizeLinear",
            "DequantizeLinear"])
        var tensors: [String: ONNXTensor] = [:]
        for f in graph where f.number == 5 { let t = try ONNXTensor(f.payload); tensors[t.name] = t }

        // The input's QuantizeLinear uses the Quantize op's output record (tensor 1 of the blob).
        XCTAssertEqual(nodes[0].inputs[0], "input")
        let inputQuant = blob.quant(blob.tensorField(1, 36), 0)
        XCTAssertEqual(try XCTUnwrap(tensors[nodes[0].inputs[1]]).floats, [inputQuant.scale])
        XCTAssertEqual(try XCTUnwrap(tensors[nodes[0].inputs[2]]).raw, [UInt8(bitPattern: Int8(inputQuant.zero))])

        // Weights and biases of the int8 ops (op index in the blob → ONNX initializer names w<i>, b<i>).
        for op in [1, 3, 5, 7] {
            let x = blob.opInput(op, 0), w = blob.opInput(op, 1), b = blob.opInput(op, 2)
            let wShape = (0..<4).map { blob.tensorField(w, 4 + 4 * $0) }
            let wq = try XCTUnwrap(tensors["w\(op)"]), bq = try XCTUnwrap(tensors["b\(op)"])
            XCTAssertEqual(wq.dataType, 3, "w\(op) is INT8")
            XCTAssertEqual(bq.dataType, 6, "b\(op) is INT32")
            let blobW = blob.constant(w), blobB = blob.constant(b)
            XCTAssertEqual(bq.raw, blobB, "b\(op): the blob's int32 bias bytes")
            let outChannels: Int
            if op == 7 {
                // Dense: [Out][In] as stored; Gemm reads it with transB = 1.
                outChannels = wShape[0]
                XCTAssertEqual(wq.dims, [wShape[0], wShape[1]])
                XCTAssertEqual(wq.raw, blobW)
            } else {
                // Conv2D: the ONNX element (o, i, h, w) is the blob's HWIO element (h, w, i, o).
                let (kh, kw, ci, co) = (wShape[0], wShape[1], wShape[2], wShape[3])
                outChannels = co
                XCTAssertEqual(wq.dims, [co, ci, kh, kw])
                var expected: [UInt8] = []
                for o in 0..<co { for i in 0..<ci { for h in 0..<kh { for ww in 0..<kw {
                    expected.append(blobW[((h * kw + ww) * ci + i) * co + o])
                } } } }
                XCTAssertEqual(wq.raw, expected, "w\(op): the blob's int8 weights in OIHW order")
            }
            let sx = blob.quant(blob.tensorField(x, 36), 0).scale
            let sw = (0..<outChannels).map { blob.quant(blob.tensorField(w, 36), $0).scale }
            XCTAssertEqual(blob.tensorField(w, 28), outChannels, "per-channel weight scales")
            XCTAssertEqual(try XCTUnwrap(tensors["w\(op)_scale"]).floats, sw)
            XCTAssertEqual(try XCTUnwrap(tensors["w\(op)_zero"]).raw, [UInt8](repeating: 0, count: outChannels))
            XCTAssertEqual(try XCTUnwrap(tensors["b\(op)_scale"]).floats, sw.map { sx * $0 })
            XCTAssertEqual(try XCTUnwrap(tensors["b\(op)_zero"]).raw, [UInt8](repeating: 0, count: 4 * outChannels))
            for name in ["w\(op)", "b\(op)"] {
                let dq = try XCTUnwrap(nodes.first { $0.inputs.first == name })
                XCTAssertEqual(dq.type, "DequantizeLinear")
                XCTAssertEqual(dq.ints["axis"], 0, "\(name) dequantized along the output channels")
            }
        }

        // Every QuantizeLinear after an int8 op uses that op's output record; the last node
        // dequantizes the Dense output (blob tensor 24, the Dequantize op's input).
        let outQuant = blob.quant(blob.tensorField(blob.opInput(8, 0), 36), 0)
        let last = try XCTUnwrap(nodes.last)
        XCTAssertEqual(try XCTUnwrap(tensors[last.inputs[1]]).floats, [outQuant.scale])
        XCTAssertEqual(try XCTUnwrap(tensors[last.inputs[2]]).raw, [UInt8(bitPattern: Int8(outQuant.zero))])
    }
}

/// A NodeProto's op_type (4), inputs (1) and INT attributes (5: name 1, i 3).
struct ONNXNode {
    var type = "", inputs: [String] = [], ints: [String: Int64] = [:]

    init(_ payload: [UInt8]) throws {
        for f in try wireFields(payload) {
            switch f.number {
            case 1: inputs.append(String(decoding: f.payload, as: UTF8.self))
            case 4: type = String(decoding: f.payload, as: UTF8.self)
            case 5:
                let at = try wireFields(f.payload)
                if let name = at.first(where: { $0.number == 1 }), let i = at.first(where: { $0.number == 3 }) {
                    ints[String(decoding: name.payload, as: UTF8.self)] = Int64(bitPattern: i.varint)
                }
            default: break
            }
        }
    }
}

/// A TensorProto's name (8), dims (1, packed), data_type (2) and raw_data (9).
struct ONNXTensor {
    var name = "", dims: [Int] = [], dataType = 0, raw: [UInt8] = []

    init(_ payload: [UInt8]) throws {
        for f in try wireFields(payload) {
            switch f.number {
            case 1: dims = packedVarints(f.payload).map(Int.init)
            case 2: dataType = Int(f.varint)
            case 8: name = String(decoding: f.payload, as: UTF8.self)
            case 9: raw = f.payload
            default: break
            }
        }
    }

    /// raw_data as little-endian binary32 values.
    var floats: [Float] {
        stride(from: 0, to: raw.count, by: 4).map { i in
            Float(bitPattern: UInt32(raw[i]) | UInt32(raw[i + 1]) << 8 | UInt32(raw[i + 2]) << 16 | UInt32(raw[i + 3]) << 24)
        }
    }
}

extension RawBlob {
    /// The u32 at byte `field` of tensor record `t`.
    func tensorField(_ t: Int, _ field: Int) -> Int { u32((section(1)?.offset ?? 0) + 64 * t + field) }

    /// Input slot `slot` of op record `op`.
    func opInput(_ op: Int, _ slot: Int) -> Int { u32((section(2)?.offset ?? 0) + 64 * op + 4 + 4 * slot) }

    /// A constant tensor's bytes (data_offset 20, data_bytes 24).
    func constant(_ t: Int) -> [UInt8] {
        let at = tensorField(t, 20)
        return Array(bytes[at..<at + tensorField(t, 24)])
    }

    /// Quantization record `k` (f32 scale, i32 zero point) at DATA offset `at`.
    func quant(_ at: Int, _ k: Int) -> (scale: Float, zero: Int32) {
        (Float(bitPattern: UInt32(u32(at + 8 * k))), Int32(bitPattern: UInt32(u32(at + 8 * k + 4))))
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
