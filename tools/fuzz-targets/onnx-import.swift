// libFuzzer target: the whole ONNX import from bytes — decoding, the graph walk that
// maps it onto a network description, the description's plan, and the tensors' layouts
// (SprigTrain/Import/ONNXImport.swift). Built by tools/fuzz against SprigTrain as a module.

import SprigTrain

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNXImport(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let imported = try? importONNX(bytes, options: ONNXImportOptions()),
       imported.architecture.tensorElements <= 1 << 20 {
        _ = try? buildImportedNetwork(imported)
    }
    return 0
}
