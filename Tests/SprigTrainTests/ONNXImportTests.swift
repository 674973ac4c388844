// `sprig import` (SprigTrain/Import): ONNX models exported by PyTorch, against ONNX
// Runtime's outputs (Tests/Fixtures/onnx, tools/make-onnx-fixtures); hand-built graphs
// for the op mapping; named corruption cases for the protobuf reader and the decoder.

import Foundation
import SprigCompile
import SprigTestSupport
import SprigTrain
import XCTest

// MARK: - A tiny ONNX encoder for hand-built cases (independent of Sources/sprig/ProtobufWriter.swift)

/// Protobuf bytes of one message, built field by field.
struct Proto {
    var bytes: [UInt8] = []

    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func key(_ field: Int, _ wire: Int) { varint(UInt64(field << 3 | wire)) }
    mutating func int(_ field: Int, _ v: Int64) { key(field, 0); varint(UInt64(bitPattern: v)) }
    mutating func data(_ field: Int, _ b: [UInt8]) { key(field, 2); varint(UInt64(b.count)); bytes += b }
    mutating func string(_ field: Int, _ s: String) { data(field, Array(s.utf8)) }
    mutating func message(_ field: Int, _ m: Proto) { data(field, m.bytes) }
    mutating func float(_ field: Int, _ f: Float) {
        key(field, 5)
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: f.bitPattern >> (8 * UInt32(i)))) }
    }
}

/// An ONNX graph under construction: FLOAT initializers, nodes, one input and output.
struct GraphBuilder {
    var nodes: [Proto] = []
    var initializers: [Proto] = []
    var count = 0

    /// A node; `ints`, `int` and `floats` are its attributes.
    mutating func node(_ op: String, _ inputs: [String], _ output: String, ints: [String: [Int64]] = [:],
                       int: [String: Int64] = [:], float: [String: Float] = [:]) {
        count += 1
        var n = Proto()
        for i in inputs { n.string(1, i) }
        n.string(2, output)
        n.string(3, "\(op)_\(count)")
        n.string(4, op)
        for (k, v) in ints.sorted(by: { $0.key < $1.key }) {
            var a = Proto(); a.string(1, k); a.int(20, 7)
            var run = Proto(); for x in v { run.varint(UInt64(bitPattern: x)) }
            a.data(8, run.bytes)
            n.message(5, a)
        }
        for (k, v) in int.sorted(by: { $0.key < $1.key }) { var a = Proto(); a.string(1, k); a.int(20, 2); a.int(3, v); n.message(5, a) }
        for (k, v) in float.sorted(by: { $0.key < $1.key }) { var a = Proto(); a.string(1, k); a.int(20, 1); a.float(2, v); n.message(5, a) }
        nodes.append(n)
    }

    mutating func floats(_ name: String, _ dims: [Int], _ values: [Float]) {
        var t = Proto()
        for d in dims { t.int(1, Int64(d)) }
        t.int(2, 1)
        t.string(8, name)
        var raw: [UInt8] = []
        for v in values { for i in 0..<4 { raw.append(UInt8(truncatingIfNeeded: v.bitPattern >> (8 * UInt32(i)))) } }
        t.data(9, raw)
        initializers.append(t)
    }

    mutating func int64s(_ name: String, _ values: [Int64]) {
        var t = Proto()
        t.int(1, Int64(values.count))
        t.int(2, 7)
        t.string(8, name)
        var raw: [UInt8] = []
        for v in values { for i in 0..<8 { raw.append(UInt8(truncatingIfNeeded: UInt64(bitPattern: v) >> (8 * UInt64(i)))) } }
        t.data(9, raw)
        initializers.append(t)
    }

    static func valueInfo(_ name: String, _ dims: [Int]) -> Proto {
        var shape = Proto()
        for d in dims { var dim = Proto(); dim.int(1, Int64(d)); shape.message(1, dim) }
        var tensor = Proto(); tensor.int(1, 1); tensor.message(2, shape)
        var type = Proto(); type.message(1, tensor)
        var v = Proto(); v.string(1, name); v.message(2, type)
        return v
    }

    /// The ModelProto bytes: input "x" of `input` dims, output `output`, opset `opset`.
    func model(input: [Int], output: String, opset: Int64 = 13) -> [UInt8] {
        var g = Proto()
        for n in nodes { g.message(1, n) }
        g.string(2, "test")
        for t in initializers { g.message(5, t) }
        g.message(11, GraphBuilder.valueInfo("x", input))
        g.message(12, GraphBuilder.valueInfo(output, []))
        var m = Proto()
        m.int(1, 8)
        m.string(2, "test")
        m.message(7, g)
        var o = Proto(); o.string(1, ""); o.int(2, opset)
        m.message(8, o)
        return m.bytes
    }
}

/// The raw uint8 images of an IDX file, each as one array (any number of dims after the count).
func idxImages(_ path: String, count: Int) throws -> [[UInt8]] {
    let b = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    let dims = Int(b[3])
    var shape: [Int] = []
    for d in 0..<dims {
        let o = 4 + 4 * d
        shape.append(Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]))
    }
    let size = shape.dropFirst().reduce(1, *)
    let start = 4 + 4 * dims
    return (0..<min(count, shape[0])).map { Array(b[start + $0 * size ..< start + ($0 + 1) * size]) }
}

final class ONNXImportTests: XCTestCase {
    static let fixtures = packageRoot.appendingPathComponent("Tests/Fixtures/onnx")
    static let imagenet = ONNXImportOptions(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

    func fixture(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: Self.fixtures.appendingPathComponent(name)))
    }

    /// The committed ONNX Runtime outputs: one line per image, float32 bit patterns in hex.
    func expected(_ name: String) throws -> [[Float]] {
        let text = try String(contentsOf: Self.fixtures.appendingPathComponent(name), encoding: .utf8)
        return text.split(separator: "\n").map { line in
            line.split(separator: " ").map { Float(bitPattern: UInt32($0, radix: 16)!) }
        }
    }

    /// Imports a fixture, compiles its f32 blob, runs it on the runtime and returns the largest
    /// relative error against ONNX Runtime over outputs above 1e-3 in magnitude.
    func maxRelativeError(_ model: String, images: [[UInt8]], options: ONNXImportOptions) throws -> (error: Float, compared: Int) {
        let imported = try importONNX(try fixture("\(model).onnx"), options: options)
        let network = try buildImportedNetwork(imported)
        var compile = CompileOptions()
        compile.precision = .f32
        let blob = try compileNetwork(network, architecture: imported.architecture, calibration: nil, options: compile)
        let outputs = try runBlob(blob, images)
        let reference = try expected("\(model)-expected.txt")
        XCTAssertEqual(outputs.count, reference.count, model)
        var worst: Float = 0, compared = 0
        for (y, r) in zip(outputs, reference) {
            XCTAssertEqual(y.count, r.count, model)
            for (a, b) in zip(y, r) where abs(b) > 1e-3 {
                worst = max(worst, abs(a - b) / abs(b))
                compared += 1
            }
            XCTAssertEqual(argmax(y), argmax(r), model)
        }
        print("onnx fixture \(model): max relative error \(worst) over \(compared) outputs above 1e-3")
        return (worst, compared)
    }

    // MARK: Fixtures against ONNX Runtime

    func testCNNFixtureAgreesWithONNXRuntime() throws {
        let images = try idxImages(packageRoot.appendingPathComponent("Tests/Fixtures/ref-input.idx").path, count: 8)
        let r = try maxRelativeError("cnn-opset13", images: images, options: ONNXImportOptions(mean: [0.2860], std: [0.3530]))
        XCTAssertGreaterThan(r.compared, 30)
        XCTAssertLessThan(r.error, 1e-4)
    }

    func testMobileNetFixturesAgreeWithONNXRuntime() throws {
        let images = try idxImages(Self.fixtures.appendingPathComponent("rgb32-input.idx").path, count: 8)
        for model in ["mobilenet-opset13", "mobilenet-bn-opset17"] {
            let r = try maxRelativeError(model, images: images, options: Self.imagenet)
            XCTAssertGreaterThan(r.compared, 16, model)
            XCTAssertLessThan(r.error, 1e-4, model)
        }
    }

    func testResNetFixtureAgreesWithONNXRuntime() throws {
        let images = try idxImages(Self.fixtures.appendingPathComponent("rgb16-input.idx").path, count: 8)
        let r = try maxRelativeError("resnet-opset17", images: images, options: Self.imagenet)
        XCTAssertGreaterThan(r.compared, 12)
        XCTAssertLessThan(r.error, 1e-4)
    }

    /// The MobileNet-style graph with its BatchNormalization nodes maps onto the description's
    /// inverted residuals where PyTorch adds; exported with BN folded into the convs (convs
    /// with a bias), the same blocks are residual blocks with an identity shortcut. The
    /// residual net gets a projection shortcut and a ReLU after each add.
    func testBlocksOfTheFixturesAreTheDescriptionsBlocks() throws {
        let mobile = try importONNX(try fixture("mobilenet-bn-opset17.onnx"), options: Self.imagenet)
        let inverted = mobile.architecture.layers.compactMap { layer -> InvertedResidualSpec? in
            if case .invertedResidual(let b) = layer { return b } else { return nil }
        }
        XCTAssertEqual(inverted, [InvertedResidualSpec(expand: 24, filters: 8, kernel: 3, stride: 1, residual: true),
                                  InvertedResidualSpec(expand: 32, filters: 12, kernel: 3, stride: 1, residual: true)])
        XCTAssertEqual(mobile.architecture.input, InputSpec(height: 32, width: 32, channels: 3, mean: [0.485, 0.456, 0.406],
                                                            std: [0.229, 0.224, 0.225]))
        let folded = try importONNX(try fixture("mobilenet-opset13.onnx"), options: Self.imagenet)
        let blocks = folded.architecture.layers.compactMap { layer -> ResidualSpec? in
            if case .residual(let r) = layer { return r } else { return nil }
        }
        XCTAssertEqual(blocks.map(\.shortcut), [.identity, .identity])
        XCTAssertEqual(blocks.map(\.activation), [.none, .none])
        XCTAssertEqual(blocks[0].body, [.conv(ConvSpec(filters: 24, kernel: 1, bias: true)), .relu6,
                                        .depthwise(DepthwiseSpec(kernel: 3, bias: true)), .relu6,
                                        .conv(ConvSpec(filters: 8, kernel: 1, bias: true))])
        // Both have the same pruning groups.
        XCTAssertEqual(try mobile.architecture.plan().widths, try folded.architecture.plan().widths)
        let resnet = try importONNX(try fixture("resnet-opset17.onnx"))
        let rblocks = resnet.architecture.layers.compactMap { layer -> ResidualSpec? in
            if case .residual(let r) = layer { return r } else { return nil }
        }
        XCTAssertEqual(rblocks.map(\.shortcut), [.identity, .projection])
        XCTAssertEqual(rblocks.map(\.activation), [.relu, .relu])
    }

    // MARK: Hand-built graphs

    /// A hand-checkable graph: Conv 1×1 (weights 2, bias 1) → Relu → GlobalAveragePool →
    /// Flatten → Gemm (transB 0). On a 2×2 image of pixels p, x = p/255.
    func testHandBuiltGraphComputesTheHandValue() throws {
        var g = GraphBuilder()
        g.floats("w", [1, 1, 1, 1], [2])
        g.floats("b", [1], [1])
        g.floats("fc", [1, 2], [3, -1])        // [In][Out] (transB 0) → outputs 3·v, −v
        g.floats("fcb", [2], [0.5, 0.25])
        g.node("Conv", ["x", "w", "b"], "c", ints: ["kernel_shape": [1, 1], "pads": [0, 0, 0, 0], "strides": [1, 1]])
        g.node("Relu", ["c"], "r")
        g.node("GlobalAveragePool", ["r"], "gap")
        g.node("Flatten", ["gap"], "flat", int: ["axis": 1])
        g.node("Gemm", ["flat", "fc", "fcb"], "y", int: ["transB": 0])
        let imported = try importONNX(g.model(input: [1, 1, 2, 2], output: "y"))
        var compile = CompileOptions()
        compile.precision = .f32
        let blob = try compileNetwork(try buildImportedNetwork(imported), architecture: imported.architecture, calibration: nil,
                                      options: compile)
        let pixels: [UInt8] = [0, 51, 102, 255]
        let v = pixels.map { 2 * Float($0) / 255 + 1 }.reduce(0, +) / 4     // mean of relu(2x + 1)
        let y = try runBlob(blob, [pixels])[0]
        XCTAssertEqual(y[0], 3 * v + 0.5, accuracy: 1e-5)
        XCTAssertEqual(y[1], -v + 0.25, accuracy: 1e-5)
    }

    /// ONNX flattens C·H·W, Sprig H·W·C: a Gemm that reads one ONNX column must read the
    /// same pixel after import. Input 2×2×2 (C = 2), weight 1 at ONNX column c·4 + y·2 + x.
    func testFlattenPermutesTheDenseColumnsToChannelsLast() throws {
        for column in 0..<8 {
            var g = GraphBuilder()
            var w = [Float](repeating: 0, count: 8)
            w[column] = 1
            g.floats("fc", [1, 8], w)
            g.floats("fcb", [1], [0])
            g.int64s("shape", [1, -1])
            g.node("Reshape", ["x", "shape"], "flat")
            g.node("Gemm", ["flat", "fc", "fcb"], "y", int: ["transB": 1])
            let imported = try importONNX(g.model(input: [1, 2, 2, 2], output: "y"))
            let weight = try XCTUnwrap(imported.tensors["1.weight"])
            // Sprig column (y·2 + x)·2 + c.
            let (c, yx) = (column / 4, column % 4)
            XCTAssertEqual(weight.storage.firstIndex(of: 1), yx * 2 + c, "ONNX column \(column)")
        }
    }

    // MARK: Unsupported graphs, each with its own error

    func importError(_ bytes: [UInt8], options: ONNXImportOptions = ONNXImportOptions()) -> String {
        do {
            let m = try importONNX(bytes, options: options)
            return "imported \(m.architecture.layers.map(\.kind))"
        } catch {
            return "\(error)"
        }
    }

    func chain(_ extra: (inout GraphBuilder) -> String) -> [UInt8] {
        var g = GraphBuilder()
        g.floats("w", [2, 1, 3, 3], [Float](repeating: 0.1, count: 18))
        g.node("Conv", ["x", "w"], "c", ints: ["kernel_shape": [3, 3], "pads": [1, 1, 1, 1]])
        let last = extra(&g)
        g.node("GlobalAveragePool", [last], "gap")
        g.node("Flatten", ["gap"], "flat")
        g.floats("fc", [2, 2], [1, 0, 0, 1])
        g.node("Gemm", ["flat", "fc"], "y", int: ["transB": 1])
        return g.model(input: [1, 1, 8, 8], output: "y")
    }

    func testUnsupportedGraphsNameTheNodeOpAndAttribute() {
        // The valid chain imports.
        XCTAssertEqual(importError(chain { _ in "c" }), "imported [\"conv\", \"global_average_pool\"]")
        // Unknown op.
        XCTAssertEqual(importError(chain { g in g.node("Sigmoid", ["c"], "s"); return "s" }),
                       "node 1 'Sigmoid_2' (Sigmoid): op 'Sigmoid' is not supported (supported: "
                        + onnxSupportedOps.joined(separator: ", ") + ")")
        // Unsupported attribute value, and an unknown attribute.
        XCTAssertTrue(importError(chain { g in
            g.floats("w2", [2, 2, 3, 3], [Float](repeating: 0, count: 36))
            g.node("Conv", ["c", "w2"], "d", ints: ["dilations": [2, 2], "pads": [2, 2, 2, 2]]); return "d"
        }).hasPrefix("node 1 'Conv_2' (Conv): attribute 'dilations' is [2, 2]"))
        XCTAssertTrue(importError(chain { g in g.node("Relu", ["c"], "r", int: ["alpha": 1]); return "r" })
            .hasPrefix("node 1 'Relu_2' (Relu): attribute 0 'alpha' (INT) is not supported for Relu"))
        // Clip other than (0, 6).
        XCTAssertTrue(importError(chain { g in
            g.floats("lo", [], [0]); g.floats("hi", [], [4])
            g.node("Clip", ["c", "lo", "hi"], "r"); return "r"
        }).hasPrefix("node 1 'Clip_2' (Clip): max is 4.0"))
        // Grouped conv that is not depthwise.
        XCTAssertTrue(importError(chain { g in
            g.floats("w2", [4, 1, 3, 3], [Float](repeating: 0, count: 36))
            g.node("Conv", ["c", "w2"], "d", ints: ["pads": [1, 1, 1, 1]], int: ["group": 2]); return "d"
        }).hasPrefix("node 1 'Conv_2' (Conv): attribute 'group' is 2"))
        // A missing initializer.
        XCTAssertEqual(importError(chain { g in g.node("Conv", ["c", "nowhere"], "d"); return "d" }),
                       "node 1 'Conv_2' (Conv): input 'nowhere' is neither the graph input, an initializer, a Constant nor any node's output")
        // A value used three times: a branch the description cannot express.
        XCTAssertTrue(importError(chain { g in
            g.node("Relu", ["c"], "r1"); g.node("Relu", ["c"], "r2"); g.node("Relu", ["c"], "r3")
            g.node("Add", ["r1", "r2"], "s1"); g.node("Add", ["s1", "r3"], "s2"); return "s2"
        }).contains("feeds 3 nodes"))
        // A branch that no Add joins.
        XCTAssertEqual(importError(chain { g in g.node("Relu", ["c"], "r1"); g.node("Relu", ["c"], "r2"); return "r1" }),
                       "graph: value 'y' ends a branch without an Add joining it")
        // Normalisation of the wrong length.
        XCTAssertEqual(importError(chain { _ in "c" }, options: ONNXImportOptions(mean: [0, 0], std: [1, 1])),
                       "options: mean [0.0, 0.0] and std [1.0, 1.0] need 1 or 1 values each (the input has 1 channels)")
    }

    // MARK: Corrupt files: each case its own error, naming the field

    func decodeError(_ bytes: [UInt8]) -> String {
        do {
            _ = try ONNXModel.decode(bytes)
            return "decoded"
        } catch {
            return error.description
        }
    }

    func testCorruptFilesNameTheField() {
        let good = chain { _ in "c" }
        XCTAssertEqual(decodeError(good), "decoded")
        // Truncated varint: ir_version's value byte says "more" at the end of the file.
        XCTAssertEqual(decodeError([0x08, 0x80]), "field 1: truncated varint at byte 1 (the message ends at byte 2)")
        // An 11-byte varint.
        XCTAssertEqual(decodeError([0x08] + [UInt8](repeating: 0xff, count: 10) + [0x01]),
                       "field 1: varint at byte 1 does not fit 64 bits")
        // Length past the end: graph (field 7) claims 5 bytes, 1 follows.
        XCTAssertEqual(decodeError([0x3a, 0x05, 0x00]), "field 7: length 5 at byte 1 runs past the message end at byte 3")
        // Wrong wire type for a known field: graph as a varint.
        XCTAssertEqual(decodeError([0x38, 0x01]), "graph: wire type varint (0) at byte 0, expected length-delimited (2)")
        // A group (wire type 3) and field number 0.
        XCTAssertEqual(decodeError([0x0b]), "field 1: wire type 3 at byte 0 is not supported (groups and types 6, 7 are refused)")
        XCTAssertEqual(decodeError([0x00, 0x00]), "field number 0 at byte 0 is not in 1…536870911")
        // No graph at all (an empty file, or a safetensors file's first bytes).
        XCTAssertEqual(decodeError([]), "graph: missing (not an ONNX model, or an empty one)")
        // Absurd dims: 2^20 × 2^20 elements in an initializer.
        var g = GraphBuilder()
        g.floats("w", [1 << 20, 1 << 20], [])
        XCTAssertEqual(decodeError(g.model(input: [1, 1, 2, 2], output: "y")),
                       "graph.initializer[0].dims: dims [1048576, 1048576] hold more than 268435456 elements")
        // A negative dim.
        g = GraphBuilder()
        g.floats("w", [-1], [])
        XCTAssertEqual(decodeError(g.model(input: [1, 1, 2, 2], output: "y")), "graph.initializer[0].dims: dim 0 is -1, not in 0…2147483647")
        // raw_data shorter than the dims say.
        g = GraphBuilder()
        g.floats("w", [3], [1, 2])
        XCTAssertEqual(decodeError(g.model(input: [1, 1, 2, 2], output: "y")),
                       "graph.initializer[0].raw_data: tensor 'w' of dims [3] needs 12 bytes of FLOAT, raw_data holds 8")
        // Wrong wire type deep inside: an attribute's ints as a 32-bit field.
        var node = Proto()
        node.string(1, "x"); node.string(2, "y"); node.string(4, "Conv")
        var attribute = Proto(); attribute.string(1, "pads"); attribute.key(8, 5); attribute.bytes += [0, 0, 0, 0]
        node.message(5, attribute)
        var graph = Proto(); graph.message(1, node)
        var model = Proto(); model.message(7, graph)
        XCTAssertEqual(decodeError(model.bytes),
                       "graph.node[0].attribute[0].ints: wire type 32-bit (5) at byte 24, expected varint (0) or packed (2)")
        // A truncated packed run inside the same attribute.
        attribute = Proto(); attribute.string(1, "pads"); attribute.data(8, [0x80])
        node = Proto(); node.string(4, "Conv"); node.message(5, attribute)
        graph = Proto(); graph.message(1, node)
        model = Proto(); model.message(7, graph)
        XCTAssertTrue(decodeError(model.bytes).hasPrefix("graph.node[0].attribute[0].ints: truncated varint"), decodeError(model.bytes))
        // External data.
        var tensor = Proto(); tensor.int(1, 1); tensor.int(2, 1); tensor.string(8, "w"); tensor.int(14, 1)
        graph = Proto(); graph.message(5, tensor)
        model = Proto(); model.message(7, graph)
        XCTAssertEqual(decodeError(model.bytes),
                       "graph.initializer[0].data_location: tensor 'w' keeps its data in an external file; export with the weights inside the model")
        // Every truncation of a valid model is refused or decoded, never a trap.
        for n in stride(from: 0, to: good.count, by: 7) { _ = decodeError(Array(good[..<n])) }
    }

    /// Nested messages deeper than the limit are refused by the reader.
    func testNestingIsBounded() throws {
        var bytes: [UInt8] = []
        for _ in 0..<40 { var p = Proto(); p.data(1, bytes); bytes = p.bytes }
        var reader = ProtobufReader(bytes: bytes, path: "m")
        var depth = 0
        do {
            while let f = try reader.next() {
                reader = try reader.message(f, path: "m")
                depth += 1
            }
            XCTFail("nesting of 40 accepted")
        } catch {
            XCTAssertEqual(depth, ProtobufReader.maxDepth)
            XCTAssertEqual("\(error)", "m: messages nest deeper than \(ProtobufReader.maxDepth)")
        }
    }
}
