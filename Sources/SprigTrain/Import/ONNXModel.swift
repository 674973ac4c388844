// An ONNX model decoded from protobuf bytes: the parts an import reads.
//
// onnx.proto fields read (numbers as in the schema; anything else is skipped,
// but a known field with the wrong wire type is an error naming it):
//   ModelProto          ir_version 1, producer_name 2, graph 7, opset_import 8
//   OperatorSetIdProto  domain 1, version 2
//   GraphProto          node 1, name 2, initializer 5, input 11, output 12
//   NodeProto           input 1, output 2, name 3, op_type 4, attribute 5, domain 7
//   AttributeProto      name 1, f 2, i 3, s 4, t 5, g 6, floats 7, ints 8, strings 9,
//                       tensors 10, graphs 11, type 20
//   TensorProto         dims 1, data_type 2, float_data 4, int32_data 5, int64_data 7,
//                       name 8, raw_data 9, data_location 14 (EXTERNAL refused)
//   ValueInfoProto      name 1, type 2 → TypeProto tensor_type 1 →
//                       elem_type 1, shape 2 → TensorShapeProto dim 1 → dim_value 1, dim_param 2
// Data types decoded: FLOAT (1), INT64 (7), INT32 (6); other tensors keep their
// type and no values (an import that needs their values names them).
//
// Bounds: the counts below (`ONNXLimits`), tensor ranks ≤ 8, every dim in
// 0 … 2^31, element counts ≤ 2^28 and equal to the data given.

/// The largest counts a decoded model may hold.
public enum ONNXLimits {
    public static let nodes = 100_000
    public static let initializers = 100_000
    public static let valueInfos = 10_000
    public static let opsets = 64
    public static let nodeInputs = 64
    public static let nodeOutputs = 64
    public static let attributes = 256
    public static let attributeValues = 1 << 20
    public static let rank = 8
    public static let elements = 1 << 28
}

/// ONNX's TensorProto.DataType values the import names.
public enum ONNXDataType {
    public static let float: Int64 = 1, int32: Int64 = 6, int64: Int64 = 7

    /// A readable name ("FLOAT16 (10)").
    public static func name(_ t: Int64) -> String {
        let names: [Int64: String] = [0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32",
                                      7: "INT64", 8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32",
                                      13: "UINT64", 14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16"]
        return "\(names[t] ?? "type") (\(t))"
    }
}

/// A tensor: an initializer, a Constant's value or an attribute's tensor.
public struct ONNXTensor: Sendable, Equatable {
    public var name = ""
    public var dims: [Int] = []
    public var dataType: Int64 = 0
    /// The values of a FLOAT tensor.
    public var floats: [Float]?
    /// The values of an INT64 or INT32 tensor.
    public var ints: [Int64]?
    /// The field path it was read from, for errors ("graph.initializer[2]").
    public var place = ""

    public init() {}

    public var elementCount: Int { dims.reduce(1, *) }
}

/// A node attribute. `type` is AttributeProto.AttributeType (FLOAT 1, INT 2, STRING 3,
/// TENSOR 4, GRAPH 5, FLOATS 6, INTS 7, …).
public struct ONNXAttribute: Sendable, Equatable {
    public var name = ""
    public var type: Int64 = 0
    public var f: Float?
    public var i: Int64?
    public var s: String?
    public var t: ONNXTensor?
    public var floats: [Float] = []
    public var ints: [Int64] = []
    /// Whether the attribute holds graphs or lists of strings or tensors (never used by an import).
    public var hasOther = false

    public init() {}

    /// A readable type name.
    public var typeName: String {
        let names: [Int64: String] = [1: "FLOAT", 2: "INT", 3: "STRING", 4: "TENSOR", 5: "GRAPH", 6: "FLOATS", 7: "INTS",
                                      8: "STRINGS", 9: "TENSORS", 10: "GRAPHS", 11: "SPARSE_TENSOR", 12: "SPARSE_TENSORS"]
        return names[type] ?? "type \(type)"
    }
}

public struct ONNXNode: Sendable, Equatable {
    public var index = 0
    public var name = ""
    public var opType = ""
    public var domain = ""
    public var inputs: [String] = []
    public var outputs: [String] = []
    public var attributes: [ONNXAttribute] = []

    public init() {}

    /// "node 3 'Conv_3' (Conv)".
    public var label: String { "node \(index) '\(name)' (\(opType))" }
}

/// A graph input or output: its name, element type and dims (nil: symbolic, as the batch).
public struct ONNXValueInfo: Sendable, Equatable {
    public var name = ""
    public var elemType: Int64 = 0
    public var dims: [Int?]?

    public init() {}
}

public struct ONNXGraph: Sendable, Equatable {
    public var name = ""
    public var nodes: [ONNXNode] = []
    public var initializers: [ONNXTensor] = []
    public var inputs: [ONNXValueInfo] = []
    public var outputs: [ONNXValueInfo] = []

    public init() {}
}

public struct ONNXModel: Sendable, Equatable {
    public var irVersion: Int64 = 0
    public var producer = ""
    /// (domain, version); "" is the default ONNX domain.
    public var opsets: [(domain: String, version: Int64)] = []
    public var graph = ONNXGraph()

    public init() {}

    public static func == (a: ONNXModel, b: ONNXModel) -> Bool {
        a.irVersion == b.irVersion && a.producer == b.producer && a.graph == b.graph
            && a.opsets.map(\.domain) == b.opsets.map(\.domain) && a.opsets.map(\.version) == b.opsets.map(\.version)
    }

    /// The version of the default domain's operator set, or nil.
    public var defaultOpset: Int64? {
        opsets.first { $0.domain == "" || $0.domain == "ai.onnx" }?.version
    }

    /// Decodes a ModelProto.
    ///
    /// - Throws: ``ONNXError`` naming the field path for anything malformed or out of bounds.
    public static func decode(_ bytes: [UInt8]) throws(ONNXError) -> ONNXModel {
        var model = ONNXModel()
        var r = ProtobufReader(bytes: bytes, path: "")
        var sawGraph = false
        while let f = try r.next() {
            switch f.number {
            case 1: model.irVersion = try r.int64(f, "ir_version")
            case 2: model.producer = try r.string(f, "producer_name")
            case 7:
                try r.expect(f, .lengthDelimited, "graph")
                guard !sawGraph else { throw ONNXError("graph", "appears twice") }
                sawGraph = true
                model.graph = try decodeGraph(try r.message(f, path: "graph"))
            case 8:
                try r.expect(f, .lengthDelimited, "opset_import")
                guard model.opsets.count < ONNXLimits.opsets else { throw ONNXError("opset_import", "more than \(ONNXLimits.opsets) entries") }
                var m = try r.message(f, path: "opset_import[\(model.opsets.count)]")
                var domain = "", version: Int64 = 0
                while let g = try m.next() {
                    switch g.number {
                    case 1: domain = try m.string(g, "domain")
                    case 2: version = try m.int64(g, "version")
                    default: break
                    }
                }
                model.opsets.append((domain, version))
            default: break
            }
        }
        guard sawGraph else { throw ONNXError("graph", "missing (not an ONNX model, or an empty one)") }
        return model
    }

    static func decodeGraph(_ reader: ProtobufReader) throws(ONNXError) -> ONNXGraph {
        var r = reader
        var g = ONNXGraph()
        while let f = try r.next() {
            switch f.number {
            case 1:
                try r.expect(f, .lengthDelimited, "node")
                guard g.nodes.count < ONNXLimits.nodes else { throw r.error("node", "more than \(ONNXLimits.nodes) nodes") }
                var node = try decodeNode(try r.message(f, path: "graph.node[\(g.nodes.count)]"))
                node.index = g.nodes.count
                g.nodes.append(node)
            case 2: g.name = try r.string(f, "name")
            case 5:
                try r.expect(f, .lengthDelimited, "initializer")
                guard g.initializers.count < ONNXLimits.initializers else {
                    throw r.error("initializer", "more than \(ONNXLimits.initializers) initializers")
                }
                g.initializers.append(try decodeTensor(try r.message(f, path: "graph.initializer[\(g.initializers.count)]")))
            case 11, 12:
                let which = f.number == 11 ? "input" : "output"
                try r.expect(f, .lengthDelimited, which)
                let count = f.number == 11 ? g.inputs.count : g.outputs.count
                guard count < ONNXLimits.valueInfos else { throw r.error(which, "more than \(ONNXLimits.valueInfos) entries") }
                let v = try decodeValueInfo(try r.message(f, path: "graph.\(which)[\(count)]"))
                if f.number == 11 { g.inputs.append(v) } else { g.outputs.append(v) }
            default: break
            }
        }
        return g
    }

    static func decodeNode(_ reader: ProtobufReader) throws(ONNXError) -> ONNXNode {
        var r = reader
        var n = ONNXNode()
        while let f = try r.next() {
            switch f.number {
            case 1:
                guard n.inputs.count < ONNXLimits.nodeInputs else { throw r.error("input", "more than \(ONNXLimits.nodeInputs) inputs") }
                n.inputs.append(try r.string(f, "input"))
            case 2:
                guard n.outputs.count < ONNXLimits.nodeOutputs else { throw r.error("output", "more than \(ONNXLimits.nodeOutputs) outputs") }
                n.outputs.append(try r.string(f, "output"))
            case 3: n.name = try r.string(f, "name")
            case 4: n.opType = try r.string(f, "op_type")
            case 7: n.domain = try r.string(f, "domain")
            case 5:
                try r.expect(f, .lengthDelimited, "attribute")
                guard n.attributes.count < ONNXLimits.attributes else {
                    throw r.error("attribute", "more than \(ONNXLimits.attributes) attributes")
                }
                n.attributes.append(try decodeAttribute(try r.message(f, path: "\(r.path).attribute[\(n.attributes.count)]")))
            default: break
            }
        }
        return n
    }

    static func decodeAttribute(_ reader: ProtobufReader) throws(ONNXError) -> ONNXAttribute {
        var r = reader
        var a = ONNXAttribute()
        while let f = try r.next() {
            switch f.number {
            case 1: a.name = try r.string(f, "name")
            case 20: a.type = try r.int64(f, "type")
            case 2: a.f = try r.float(f, "f")
            case 3: a.i = try r.int64(f, "i")
            case 4: a.s = try r.string(f, "s")
            case 5:
                try r.expect(f, .lengthDelimited, "t")
                a.t = try decodeTensor(try r.message(f, path: "\(r.path).t"))
            case 7: try r.appendFloats(f, "floats", to: &a.floats, limit: ONNXLimits.attributeValues)
            case 8: try r.appendInt64s(f, "ints", to: &a.ints, limit: ONNXLimits.attributeValues)
            case 6, 9, 10, 11:
                try r.expect(f, .lengthDelimited, ["g", "strings", "tensors", "graphs"][[6, 9, 10, 11].firstIndex(of: f.number) ?? 0])
                a.hasOther = true
            default: break
            }
        }
        return a
    }

    static func decodeTensor(_ reader: ProtobufReader) throws(ONNXError) -> ONNXTensor {
        var r = reader
        var t = ONNXTensor()
        t.place = r.path
        var dims: [Int64] = []
        var floatData: [Float] = []
        var intData: [Int64] = []
        var raw: Range<Int>?
        var external = false
        while let f = try r.next() {
            switch f.number {
            case 1: try r.appendInt64s(f, "dims", to: &dims, limit: ONNXLimits.rank)
            case 2: t.dataType = try r.int64(f, "data_type")
            case 4: try r.appendFloats(f, "float_data", to: &floatData, limit: ONNXLimits.elements)
            case 5, 7: try r.appendInt64s(f, f.number == 5 ? "int32_data" : "int64_data", to: &intData, limit: ONNXLimits.elements)
            case 8: t.name = try r.string(f, "name")
            case 9:
                try r.expect(f, .lengthDelimited, "raw_data")
                raw = f.range
            case 14: external = try r.int64(f, "data_location") == 1
            default: break
            }
        }
        let label = t.name.isEmpty ? "" : " '\(t.name)'"
        guard !external else {
            throw ONNXError(r.path + ".data_location", "tensor\(label) keeps its data in an external file; export with the weights inside the model")
        }
        var count = 1
        for (k, d) in dims.enumerated() {
            guard d >= 0, d <= Int64(Int32.max) else { throw ONNXError(r.path + ".dims", "dim \(k) is \(d), not in 0…\(Int32.max)") }
            let (p, overflow) = count.multipliedReportingOverflow(by: Int(d))
            guard !overflow, p <= ONNXLimits.elements else {
                throw ONNXError(r.path + ".dims", "dims \(dims) hold more than \(ONNXLimits.elements) elements")
            }
            count = p
        }
        t.dims = dims.map { Int($0) }
        switch t.dataType {
        case ONNXDataType.float:
            if let raw {
                guard raw.count == 4 * count else {
                    throw ONNXError(r.path + ".raw_data", "tensor\(label) of dims \(dims) needs \(4 * count) bytes of FLOAT, raw_data holds \(raw.count)")
                }
                var values = [Float](repeating: 0, count: count)
                let b = r.bytes
                for i in 0..<count {
                    let o = raw.lowerBound + 4 * i
                    values[i] = Float(bitPattern: UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24)
                }
                t.floats = values
            } else {
                guard floatData.count == count else {
                    throw ONNXError(r.path + ".float_data", "tensor\(label) of dims \(dims) needs \(count) values, float_data holds \(floatData.count)")
                }
                t.floats = floatData
            }
        case ONNXDataType.int64, ONNXDataType.int32:
            let width = t.dataType == ONNXDataType.int64 ? 8 : 4
            if let raw {
                guard raw.count == width * count else {
                    throw ONNXError(r.path + ".raw_data", "tensor\(label) of dims \(dims) needs \(width * count) bytes of "
                        + "\(ONNXDataType.name(t.dataType)), raw_data holds \(raw.count)")
                }
                var values = [Int64](repeating: 0, count: count)
                let b = r.bytes
                for i in 0..<count {
                    var v: UInt64 = 0
                    for k in 0..<width { v |= UInt64(b[raw.lowerBound + width * i + k]) << (8 * UInt64(k)) }
                    values[i] = width == 8 ? Int64(bitPattern: v) : Int64(Int32(truncatingIfNeeded: v))
                }
                t.ints = values
            } else {
                guard intData.count == count else {
                    throw ONNXError(r.path + (width == 8 ? ".int64_data" : ".int32_data"),
                                    "tensor\(label) of dims \(dims) needs \(count) values, the data holds \(intData.count)")
                }
                t.ints = width == 8 ? intData : intData.map { Int64(Int32(truncatingIfNeeded: $0)) }
            }
        default:
            break
        }
        return t
    }

    static func decodeValueInfo(_ reader: ProtobufReader) throws(ONNXError) -> ONNXValueInfo {
        var r = reader
        var v = ONNXValueInfo()
        while let f = try r.next() {
            switch f.number {
            case 1: v.name = try r.string(f, "name")
            case 2:
                try r.expect(f, .lengthDelimited, "type")
                var type = try r.message(f, path: r.path + ".type")
                while let g = try type.next() {
                    guard g.number == 1 else { continue }
                    try type.expect(g, .lengthDelimited, "tensor_type")
                    var tensor = try type.message(g, path: type.path + ".tensor_type")
                    while let h = try tensor.next() {
                        switch h.number {
                        case 1: v.elemType = try tensor.int64(h, "elem_type")
                        case 2:
                            try tensor.expect(h, .lengthDelimited, "shape")
                            var shape = try tensor.message(h, path: tensor.path + ".shape")
                            var dims: [Int?] = []
                            while let d = try shape.next() {
                                guard d.number == 1 else { continue }
                                try shape.expect(d, .lengthDelimited, "dim")
                                guard dims.count < ONNXLimits.rank else { throw shape.error("dim", "more than \(ONNXLimits.rank) dims") }
                                var dim = try shape.message(d, path: shape.path + ".dim[\(dims.count)]")
                                var value: Int?
                                while let e = try dim.next() {
                                    switch e.number {
                                    case 1:
                                        let x = try dim.int64(e, "dim_value")
                                        guard x >= 0, x <= Int64(Int32.max) else { throw dim.error("dim_value", "\(x) is not in 0…\(Int32.max)") }
                                        value = Int(x)
                                    case 2: _ = try dim.string(e, "dim_param")
                                    default: break
                                    }
                                }
                                dims.append(value)
                            }
                            v.dims = dims
                        default: break
                        }
                    }
                }
            default: break
            }
        }
        return v
    }
}
