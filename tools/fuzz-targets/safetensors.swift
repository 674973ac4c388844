// libFuzzer target: decode a safetensors checkpoint from bytes (header JSON,
// dtypes, shapes, offsets). Built by tools/fuzz with the Checkpoint sources.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let file = try? SafetensorsFile.decode(bytes, path: "<fuzz>") {
        for name in file.tensors.keys { _ = try? file.floats(name) }
        _ = try? file.encoded()
    }
    return 0
}
