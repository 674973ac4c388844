// `sprig export`: a blob as an ONNX model with the blob's own weights, so that
// another runtime can check or benchmark it.
//
// Layout: the blob is NHWC; ONNX is NCHW. Activations go out as [1][C][H][W]
// (spatial) or [1][N] (flat); conv weights HWIO → OIHW, depthwise [KH][KW][C]
// → [C][1][KH][KW] with group = C. A Reshape from spatial to flat goes through
// Transpose(0,2,3,1) so the element order is the blob's. Fused activations
// become Relu or Clip(0, 6). The graph starts at the normalised f32 input
// ((p/255 − mean)/std, the blob's input record), not at pixels.
//
// ONNX fields used (onnx.proto): ModelProto ir_version 1, producer_name 2,
// graph 7, opset_import 8 (OperatorSetIdProto version 2); GraphProto node 1,
// name 2, initializer 5, input 11, output 12; NodeProto input 1, output 2,
// name 3, op_type 4, attribute 5; AttributeProto name 1, i 3, ints 8, type 20
// (INT 2, INTS 7); TensorProto dims 1, data_type 2 (FLOAT 1, INT64 7), name 8,
// raw_data 9; ValueInfoProto name 1, type 2; TypeProto tensor_type 1;
// TypeProto.Tensor elem_type 1, shape 2; TensorShapeProto dim 1; dim_value 1.

import Foundation
import SprigRuntime
import SprigTrain

let exportCommand = Command(
    name: "export",
    summary: "Write a .sprig blob as an ONNX model (f32 blobs) with the blob's own weights.",
    usage: "sprig export MODEL.sprig --onnx OUT.onnx",
    positionals: 1...1,
    options: [OptionSpec(name: "onnx", value: "OUT.onnx", help: "The ONNX file to write (opset 13, NCHW, from the normalised f32 input).")],
    run: runExport)

func runExport(_ a: ParsedArguments) throws {
    guard let out = a.string("onnx") else { throw UsageError(description: "--onnx OUT.onnx is required") }
    let blob = try BlobFile(a.positional[0])
    var export = ONNXExport(blob)
    let bytes = try export.model()
    do { try writeFileAtomically(bytes, to: out) } catch {
        throw CommandError(description: "\(out): cannot write (\(plainDescription(error)))")
    }
}

/// One blob turned into ONNX protobuf bytes; `model()` throws a `CommandError`
/// naming the file and the op for anything ONNX (or this exporter) cannot express.
struct ONNXExport {
    let blob: BlobFile
    var m: Model { blob.model }
    var nodes: [ProtobufWriter] = []
    var initializers: [ProtobufWriter] = []
    var names: [Int: String] = [:]
    var spatial: [Int: Bool] = [:]
    var counter = 0
    var clipAdded = false

    init(_ blob: BlobFile) { self.blob = blob }

    func fail(_ op: Int, _ why: String) -> CommandError {
        CommandError(description: "\(blob.path): op \(op) (\(m.op(op).opcode.name.description)): \(why)")
    }

    mutating func fresh(_ base: String) -> String { counter += 1; return "\(base)_\(counter)" }

    mutating func node(_ type: String, _ inputs: [String], _ output: String, ints: [(String, [Int64])] = [], int: [(String, Int64)] = []) {
        var n = ProtobufWriter()
        for i in inputs { n.string(1, i) }
        n.string(2, output)
        n.string(3, fresh(type))
        n.string(4, type)
        for (k, v) in ints {
            var at = ProtobufWriter(); at.string(1, k); at.packedInt64(8, v); at.int64(20, 7); n.message(5, at)
        }
        for (k, v) in int {
            var at = ProtobufWriter(); at.string(1, k); at.int64(3, v); at.int64(20, 2); n.message(5, at)
        }
        nodes.append(n)
    }

    mutating func floats(_ name: String, _ dims: [Int], _ values: [Float]) {
        var t = ProtobufWriter()
        t.packedInt64(1, dims.map(Int64.init))
        t.int64(2, 1)
        t.string(8, name)
        var raw: [UInt8] = []
        raw.reserveCapacity(values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { raw.append(contentsOf: $0) } }
        t.bytes(9, raw)
        initializers.append(t)
    }

    mutating func int64s(_ name: String, _ values: [Int64]) {
        var t = ProtobufWriter()
        t.packedInt64(1, [Int64(values.count)])
        t.int64(2, 7)
        t.string(8, name)
        var raw: [UInt8] = []
        for v in values { withUnsafeBytes(of: v.littleEndian) { raw.append(contentsOf: $0) } }
        t.bytes(9, raw)
        initializers.append(t)
    }

    func constant(_ t: Int) -> [Float] {
        let raw = m.constantBytes(m.tensor(t))
        return (0..<raw.count / 4).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
    }

    /// The ONNX shape of blob tensor `t`: [1,C,H,W] for rank 3, [1,N] otherwise.
    func onnxShape(_ t: Int) -> [Int] {
        let info = m.tensor(t)
        if info.rank == 3 { return [1, info.dim(2), info.dim(0), info.dim(1)] }
        return [1, info.elementCount]
    }

    func valueInfo(_ name: String, _ shape: [Int]) -> ProtobufWriter {
        var shapeMsg = ProtobufWriter()
        for d in shape { var dim = ProtobufWriter(); dim.int64(1, Int64(d)); shapeMsg.message(1, dim) }
        var tensor = ProtobufWriter(); tensor.int64(1, 1); tensor.message(2, shapeMsg)
        var type = ProtobufWriter(); type.message(1, tensor)
        var v = ProtobufWriter(); v.string(1, name); v.message(2, type)
        return v
    }

    mutating func activation(_ act: Activation, _ pre: String, _ out: String) {
        switch act {
        case .none: node("Identity", [pre], out)
        case .relu: node("Relu", [pre], out)
        case .relu6:
            if !clipAdded { clipAdded = true; floats("clip_min", [], [0]); floats("clip_max", [], [6]) }
            node("Clip", [pre, "clip_min", "clip_max"], out)
        }
    }

    mutating func model() throws -> [UInt8] {
        guard let input = m.input(0), let output = m.output(0) else {
            throw CommandError(description: "\(blob.path): no input or output record")
        }
        guard m.tensor(input.tensor).dtype == .f32 else {
            throw CommandError(description: "\(blob.path): int8 input; only f32 blobs can be exported so far (q8 QDQ export is not written yet)")
        }
        names[input.tensor] = "input"
        for i in 0..<m.opCount {
            let op = m.op(i)
            let x = op.input(0)
            guard let xName = names[x] else { throw fail(i, "input tensor \(x) is not computed before this op") }
            if m.tensor(x).dtype != .f32 { throw fail(i, "int8 op; only f32 blobs can be exported so far") }
            let y = op.output
            let yName = "t\(y)_" + blob.name(y).map { $0.isLetter || $0.isNumber ? $0 : "_" }.map(String.init).joined()
            let pre = yName + "_pre"
            let p = (0..<8).map { Int64(op.param($0)) }
            switch op.opcode {
            case .conv2d, .depthwiseConv2d:
                let w = m.tensor(op.input(1)), data = constant(op.input(1))
                let kh = w.dim(0), kw = w.dim(1)
                let wName = "w\(i)"
                var inputs = [xName, wName]
                if op.opcode == .conv2d {
                    let ci = w.dim(2), co = w.dim(3)
                    var o = [Float](repeating: 0, count: data.count)
                    for h in 0..<kh { for ww in 0..<kw { for c in 0..<ci { for k in 0..<co {
                        o[((k * ci + c) * kh + h) * kw + ww] = data[((h * kw + ww) * ci + c) * co + k]
                    } } } }
                    floats(wName, [co, ci, kh, kw], o)
                } else {
                    let c = w.dim(2)
                    var o = [Float](repeating: 0, count: data.count)
                    for h in 0..<kh { for ww in 0..<kw { for k in 0..<c { o[(k * kh + h) * kw + ww] = data[(h * kw + ww) * c + k] } } }
                    floats(wName, [c, 1, kh, kw], o)
                }
                if op.inputCount > 2, op.input(2) >= 0 { floats("b\(i)", [m.tensor(op.input(2)).elementCount], constant(op.input(2))); inputs.append("b\(i)") }
                var attrs: [(String, Int64)] = []
                if op.opcode == .depthwiseConv2d { attrs.append(("group", Int64(w.dim(2)))) }
                node("Conv", inputs, pre, ints: [("kernel_shape", [Int64(kh), Int64(kw)]), ("strides", [p[0], p[1]]), ("pads", [p[2], p[3], p[4], p[5]])], int: attrs)
                activation(op.activation, pre, yName)
            case .dense:
                var xIn = xName
                if spatial[x] == true || m.tensor(x).rank == 3 { xIn = flatten(x, xName) }
                let w = m.tensor(op.input(1))
                floats("w\(i)", [w.dim(0), w.dim(1)], constant(op.input(1)))
                var inputs = [xIn, "w\(i)"]
                if op.inputCount > 2, op.input(2) >= 0 { floats("b\(i)", [w.dim(0)], constant(op.input(2))); inputs.append("b\(i)") }
                node("Gemm", inputs, pre, int: [("transB", 1)])
                activation(op.activation, pre, yName)
            case .maxPool2d, .avgPool2d:
                node(op.opcode == .maxPool2d ? "MaxPool" : "AveragePool", [xName], pre,
                     ints: [("kernel_shape", [p[0], p[1]]), ("strides", [p[2], p[3]]), ("pads", [p[4], p[5], p[6], p[7]])])
                activation(op.activation, pre, yName)
            case .globalAveragePool:
                let g = fresh("gap")
                node("GlobalAveragePool", [xName], g)
                node("Flatten", [g], pre)
                activation(op.activation, pre, yName)
            case .add:
                guard let bName = names[op.input(1)] else { throw fail(i, "second input is not computed before this op") }
                node("Add", [xName, bName], pre)
                activation(op.activation, pre, yName)
            case .reshape:
                let yInfo = m.tensor(y)
                if yInfo.rank == 3 { throw fail(i, "a reshape to a spatial tensor is not exported") }
                node("Identity", [m.tensor(x).rank == 3 ? flatten(x, xName) : xName], yName)
            case .softmax:
                node("Softmax", [xName], yName, int: [("axis", -1)])
            case .l2Normalize:
                node("LpNormalization", [xName], yName, int: [("axis", -1), ("p", 2)])
            case .quantize, .dequantize:
                throw fail(i, "int8 op; only f32 blobs can be exported so far")
            }
            names[y] = yName
        }
        guard let outName = names[output] else { throw CommandError(description: "\(blob.path): the output tensor is never written") }
        var graph = ProtobufWriter()
        for n in nodes { graph.message(1, n) }
        graph.string(2, blob.metadata("name").isEmpty ? "sprig" : blob.metadata("name"))
        for t in initializers { graph.message(5, t) }
        graph.message(11, valueInfo("input", onnxShape(input.tensor)))
        graph.message(12, valueInfo(outName, onnxShape(output)))
        var model = ProtobufWriter()
        model.int64(1, 7)
        model.string(2, "sprig")
        model.message(7, graph)
        var opset = ProtobufWriter(); opset.string(1, ""); opset.int64(2, 13)
        model.message(8, opset)
        return model.bytes
    }

    /// Transposes NCHW back to NHWC and flattens to [1, N], so the element
    /// order is the blob's.
    mutating func flatten(_ t: Int, _ name: String) -> String {
        let tr = fresh("nhwc"), flat = fresh("flat")
        node("Transpose", [name], tr, ints: [("perm", [0, 2, 3, 1])])
        node("Flatten", [tr], flat)
        return flat
    }
}
