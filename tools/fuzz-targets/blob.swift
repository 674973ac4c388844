// libFuzzer target: load a blob, bind an arena, set an input, invoke.
// Built by tools/fuzz with the SprigRuntime sources and -sanitize=fuzzer,address.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBlob(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 16)
    defer { copy.deallocate() }
    copy.copyMemory(from: UnsafeRawBufferPointer(start: data, count: size))
    // Repair the CRC, so that mutations reach the validator instead of stopping
    // at the checksum (the CRC check itself is covered by the unit tests).
    if size >= 12 {
        let crc = CRC32.blob(UnsafeRawBufferPointer(rebasing: copy[0..<size]))
        copy.storeBytes(of: crc.littleEndian, toByteOffset: 8, as: UInt32.self)
    }
    guard let model = try? Model(bytes: UnsafeRawBufferPointer(rebasing: copy[0..<size])) else { return 0 }
    // A real device would refuse a plan larger than its memory; so does the fuzzer.
    guard model.arenaBytes <= 64 << 20 else { return 0 }
    let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: max(model.arenaBytes, 16), alignment: 16)
    defer { arena.deallocate() }
    arena.initializeMemory(as: UInt8.self, repeating: 0)
    guard let interpreter = try? Interpreter(model: model, arena: arena) else { return 0 }
    let n = interpreter.inputInfo.elementCount
    if n <= 1 << 20 {
        let pixels = UnsafeMutableRawBufferPointer.allocate(byteCount: max(n, 1), alignment: 16)
        defer { pixels.deallocate() }
        for i in 0..<n { pixels[i] = UInt8(truncatingIfNeeded: i &* 13) }
        try? interpreter.setInput(pixels: UnsafeRawBufferPointer(rebasing: pixels[0..<n]))
    }
    interpreter.invoke()
    _ = interpreter.argmax()
    return 0
}
