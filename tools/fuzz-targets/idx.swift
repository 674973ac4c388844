// libFuzzer target: decode an IDX file from bytes, raw and as gzip (zlib,
// bounded output). Built by tools/fuzz with the Data sources.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? IDX.decode(bytes, path: "<fuzz>", gzipped: false)
    _ = try? IDX.decode(bytes, path: "<fuzz>.gz", gzipped: true)
    return 0
}
