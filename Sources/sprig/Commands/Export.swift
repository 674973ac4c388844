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
// int8 ops go out as a QDQ graph of the blob's own int8 tensors, the form that
// ONNX Runtime fuses into its int8 kernels (QLinearConv, QGemm, QLinearAdd, …):
//
//   Quantize op          x ─QuantizeLinear(s, z)→ q
//   int8 op              each int8 activation input ─DequantizeLinear(s, z)→ float
//                        W int8 ─DequantizeLinear(s_w[c], 0, axis 0)→ float   (OIHW, or [Out][In] for Gemm)
//                        bias int32 ─DequantizeLinear(s_x · s_w[c], 0, axis 0)→ float
//                        the float op, its fused Relu/Clip, then QuantizeLinear(s_y, z_y)
//   Dequantize op        q ─DequantizeLinear(s, z)→ y
//   Reshape (int8)       Transpose/Flatten on the int8 tensor itself
//
// Every DequantizeLinear has one consumer (a fresh node per use), as ORT's QDQ
// selectors expect. The blob's requantization multipliers and shifts are not
// exported: ORT derives its own from the scales, and rounds once in float where
// Sprig rounds twice, so outputs may differ by 1 LSB (docs/blob-format.md).
//
// ONNX fields used (onnx.proto): ModelProto ir_version 1, producer_name 2,
// graph 7, opset_import 8 (OperatorSetIdProto version 2); GraphProto node 1,
// name 2, initializer 5, input 11, output 12; NodeProto input 1, output 2,
// name 3, op_type 4, attribute 5; AttributeProto name 1, i 3, ints 8, type 20
// (INT 2, INTS 7); TensorProto dims 1, data_type 2 (FLOAT 1, INT8 3, INT32 6,
// INT64 7), name 8, raw_data 9; ValueInfoProto name 1, type 2; TypeProto
// tensor_type 1; TypeProto.Tensor elem_type 1, shape 2; TensorShapeProto dim 1;
// dim_value 1.

import Foundation
import SprigRuntime
import SprigTrain

let exportCommand = Command(
    name: "export",
    summary: "Write a .sprig blob as an ONNX model with the blob's own weights (f32, or int8 as a QDQ graph).",
    usage: "sprig export MODEL.sprig --onnx OUT.onnx",
    positionals: 1...1,
    options: [OptionSpec(name: "onnx", value: "OUT.onnx",
                         help: "The ONNX file to write (opset 13, NCHW, from the normalised f32 input; int8 ops as QuantizeLinear/DequantizeLinear around float ops).")],
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

/// ONNX TensorProto.DataType codes used here.
enum ONNXType: Int64 {
    case float = 1, int8 = 3, int32 = 6, int64 = 7
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
    var quantNames: Set<Int> = []

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

    /// An initializer of `type` with shape `dims` (empty for a scalar) and little-endian `raw` bytes.
    mutating func initializer(_ name: String, _ type: ONNXType, _ dims: [Int], _ raw: [UInt8]) {
        var t = ProtobufWriter()
        t.packedInt64(1, dims.map(Int64.init))
        t.int64(2, type.rawValue)
        t.string(8, name)
        t.bytes(9, raw)
        initializers.append(t)
    }

    mutating func floats(_ name: String, _ dims: [Int], _ values: [Float]) {
        initializer(name, .float, dims, littleEndian(values.map(\.bitPattern)))
    }

    mutating func int64s(_ name: String, _ values: [Int64]) {
        initializer(name, .int64, [values.count], littleEndian(values))
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

    func valueInfo(_ name: String, _ t: Int) -> ProtobufWriter {
        var shapeMsg = ProtobufWriter()
        for d in onnxShape(t) { var dim = ProtobufWriter(); dim.int64(1, Int64(d)); shapeMsg.message(1, dim) }
        var tensor = ProtobufWriter()
        tensor.int64(1, (m.tensor(t).dtype == .i8 ? ONNXType.int8 : .float).rawValue)
        tensor.message(2, shapeMsg)
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

    // MARK: int8 (QDQ)

    /// The names of the scalar scale and zero-point initializers of per-tensor
    /// quantized tensor `t`, written on first use.
    mutating func quantParams(_ t: Int) -> (scale: String, zero: String) {
        let names = (scale: "q\(t)_scale", zero: "q\(t)_zero")
        if quantNames.insert(t).inserted {
            let q = m.quant(m.tensor(t), 0)
            floats(names.scale, [], [q.scale])
            initializer(names.zero, .int8, [], [UInt8(bitPattern: Int8(truncatingIfNeeded: q.zeroPoint))])
        }
        return names
    }

    /// A fresh DequantizeLinear of the int8 activation `t` (named `name` in the graph).
    mutating func dequantized(_ t: Int, _ name: String) -> String {
        let q = quantParams(t), out = fresh(name + "_dq")
        node("DequantizeLinear", [name, q.scale, q.zero], out)
        return out
    }

    /// The float value an op reads from blob tensor `t`: its own name when
    /// f32, a DequantizeLinear of it when int8.
    mutating func operand(_ t: Int, _ name: String) -> String {
        m.tensor(t).dtype == .i8 ? dequantized(t, name) : name
    }

    /// Ends an op whose float result is `pre`: the fused activation, then, for
    /// an int8 output, QuantizeLinear with the output's scale and zero point.
    mutating func finish(_ act: Activation, _ pre: String, output y: Int, _ yName: String) {
        guard m.tensor(y).dtype == .i8 else { activation(act, pre, yName); return }
        var value = pre
        if act != .none { value = fresh(yName + "_act"); activation(act, pre, value) }
        let q = quantParams(y)
        node("QuantizeLinear", [value, q.scale, q.zero], yName)
    }

    /// Weights of op `i` (blob tensor `w`, already in ONNX order as `raw`) as
    /// an initializer, dequantized per output channel (axis 0) when int8, and
    /// its bias (blob tensor `b`, or -1) with scale `s_x · s_w[c]`. Returns the
    /// names the float op reads.
    mutating func weightInputs(_ i: Int, x: Int, w: Int, b: Int, dims: [Int], raw: [UInt8]) -> [String] {
        let wInfo = m.tensor(w), wName = "w\(i)", bName = "b\(i)"
        guard wInfo.dtype == .i8 else {
            initializer(wName, .float, dims, raw)
            if b < 0 { return [wName] }
            floats(bName, [m.tensor(b).elementCount], constant(b))
            return [wName, bName]
        }
        let channels = dims[0]
        let scales = (0..<channels).map { m.quant(wInfo, wInfo.quantCount == 1 ? 0 : $0).scale }
        initializer(wName, .int8, dims, raw)
        floats(wName + "_scale", [channels], scales)
        initializer(wName + "_zero", .int8, [channels], [UInt8](repeating: 0, count: channels))
        node("DequantizeLinear", [wName, wName + "_scale", wName + "_zero"], wName + "_dq", int: [("axis", 0)])
        if b < 0 { return [wName + "_dq"] }
        let sx = m.quant(m.tensor(x), 0).scale
        initializer(bName, .int32, [channels], Array(m.constantBytes(m.tensor(b))))
        floats(bName + "_scale", [channels], scales.map { sx * $0 })
        initializer(bName + "_zero", .int32, [channels], [UInt8](repeating: 0, count: 4 * channels))
        node("DequantizeLinear", [bName, bName + "_scale", bName + "_zero"], bName + "_dq", int: [("axis", 0)])
        return [wName + "_dq", bName + "_dq"]
    }

    /// The bytes of convolution weights `w` in ONNX's OIHW order: HWIO
    /// `[KH][KW][Cin][Cout]` → `[Cout][Cin][KH][KW]`, or depthwise `[KH][KW][C]`
    /// → `[C][1][KH][KW]`, moving whole elements of either dtype.
    func oihw(_ w: Int, depthwise: Bool) -> (dims: [Int], raw: [UInt8]) {
        let info = m.tensor(w), src = m.constantBytes(info)
        let kh = info.dim(0), kw = info.dim(1)
        let ci = depthwise ? 1 : info.dim(2), co = depthwise ? info.dim(2) : info.dim(3)
        let size = info.dtype.size
        var out = [UInt8](repeating: 0, count: src.count)
        for h in 0..<kh { for ww in 0..<kw { for c in 0..<ci { for k in 0..<co {
            let from = (((h * kw + ww) * ci + c) * co + k) * size
            let to = (((k * ci + c) * kh + h) * kw + ww) * size
            for e in 0..<size { out[to + e] = src[from + e] }
        } } } }
        return ([co, ci, kh, kw], out)
    }

    mutating func model() throws -> [UInt8] {
        guard let input = m.input(0), let output = m.output(0) else {
            throw CommandError(description: "\(blob.path): no input or output record")
        }
        guard m.tensor(input.tensor).dtype == .f32 else {
            throw CommandError(description: "\(blob.path): int8 graph input; only blobs that start from f32 (a q8 blob's Quantize op included) are exported")
        }
        names[input.tensor] = "input"
        for i in 0..<m.opCount {
            let op = m.op(i)
            let x = op.input(0)
            guard let xName = names[x] else { throw fail(i, "input tensor \(x) is not computed before this op") }
            let q8 = m.tensor(x).dtype == .i8
            let y = op.output
            let yName = "t\(y)_" + blob.name(y).map { $0.isLetter || $0.isNumber ? $0 : "_" }.map(String.init).joined()
            let pre = yName + "_pre"
            let p = (0..<8).map { Int64(op.param($0)) }
            let bias = op.inputCount > 2 ? op.input(2) : -1
            switch op.opcode {
            case .conv2d, .depthwiseConv2d:
                let w = oihw(op.input(1), depthwise: op.opcode == .depthwiseConv2d)
                let xIn = operand(x, xName)
                let inputs = [xIn] + weightInputs(i, x: x, w: op.input(1), b: bias, dims: w.dims, raw: w.raw)
                var attrs: [(String, Int64)] = []
                if op.opcode == .depthwiseConv2d { attrs.append(("group", Int64(w.dims[0]))) }
                node("Conv", inputs, pre, ints: [("kernel_shape", [Int64(w.dims[2]), Int64(w.dims[3])]), ("strides", [p[0], p[1]]), ("pads", [p[2], p[3], p[4], p[5]])], int: attrs)
                finish(op.activation, pre, output: y, yName)
            case .dense:
                var xIn = xName
                if spatial[x] == true || m.tensor(x).rank == 3 { xIn = flatten(x, xName) }
                xIn = operand(x, xIn)
                let w = m.tensor(op.input(1))
                let inputs = [xIn] + weightInputs(i, x: x, w: op.input(1), b: bias, dims: [w.dim(0), w.dim(1)],
                                                  raw: Array(m.constantBytes(w)))
                node("Gemm", inputs, pre, int: [("transB", 1)])
                finish(op.activation, pre, output: y, yName)
            case .maxPool2d, .avgPool2d:
                node(op.opcode == .maxPool2d ? "MaxPool" : "AveragePool", [operand(x, xName)], pre,
                     ints: [("kernel_shape", [p[0], p[1]]), ("strides", [p[2], p[3]]), ("pads", [p[4], p[5], p[6], p[7]])])
                finish(op.activation, pre, output: y, yName)
            case .globalAveragePool:
                let g = fresh("gap")
                node("GlobalAveragePool", [operand(x, xName)], g)
                if q8 {
                    // DQ → GlobalAveragePool → Q is the pattern ORT fuses; flatten the int8 result.
                    let pooled = fresh(yName + "_nchw")
                    finish(op.activation, g, output: y, pooled)
                    node("Flatten", [pooled], yName)
                } else {
                    node("Flatten", [g], pre)
                    activation(op.activation, pre, yName)
                }
            case .add:
                guard let bName = names[op.input(1)] else { throw fail(i, "second input is not computed before this op") }
                node("Add", [operand(x, xName), operand(op.input(1), bName)], pre)
                finish(op.activation, pre, output: y, yName)
            case .reshape:
                let yInfo = m.tensor(y)
                if yInfo.rank == 3 { throw fail(i, "a reshape to a spatial tensor is not exported") }
                node("Identity", [m.tensor(x).rank == 3 ? flatten(x, xName) : xName], yName)
            case .softmax:
                if q8 {
                    node("Softmax", [operand(x, xName)], pre, int: [("axis", -1)])
                    finish(.none, pre, output: y, yName)
                } else {
                    node("Softmax", [xName], yName, int: [("axis", -1)])
                }
            case .l2Normalize:
                node("LpNormalization", [xName], yName, int: [("axis", -1), ("p", 2)])
            case .quantize:
                let q = quantParams(y)
                node("QuantizeLinear", [xName, q.scale, q.zero], yName)
            case .dequantize:
                let q = quantParams(x)
                node("DequantizeLinear", [xName, q.scale, q.zero], yName)
            }
            names[y] = yName
        }
        guard let outName = names[output] else { throw CommandError(description: "\(blob.path): the output tensor is never written") }
        var graph = ProtobufWriter()
        for n in nodes { graph.message(1, n) }
        graph.string(2, blob.metadata("name").isEmpty ? "sprig" : blob.metadata("name"))
        for t in initializers { graph.message(5, t) }
        graph.message(11, valueInfo("input", input.tensor))
        graph.message(12, valueInfo(outName, output))
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

/// The little-endian bytes of fixed-width integers, one after another.
func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    var raw: [UInt8] = []
    raw.reserveCapacity(values.count * T.bitWidth / 8)
    for v in values { withUnsafeBytes(of: v.littleEndian) { raw.append(contentsOf: $0) } }
    return raw
}
