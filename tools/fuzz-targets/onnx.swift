// libFuzzer target: decode an ONNX model from bytes (the bounded protobuf reader and
// the ModelProto decoding of SprigTrain/Import). Built by tools/fuzz with those files.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let model = try? ONNXModel.decode(bytes) {
        // Touch what an import reads: every node's attributes and every tensor's values.
        var n = model.graph.nodes.reduce(0) { $0 + $1.attributes.count + $1.inputs.count }
        for t in model.graph.initializers { n &+= (t.floats?.count ?? 0) &+ (t.ints?.count ?? 0) &+ t.elementCount }
        if n == -1 { print(n) }
    }
    return 0
}
