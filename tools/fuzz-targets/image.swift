// libFuzzer target: decode image bytes as `--data DIR` does (PNG and JPEG through the C shim
// over libpng and libjpeg, PGM/PPM in Swift), then resize and convert what decodes.
// Built by tools/fuzz with SprigTrain/Data/ImageDecoding.swift and the shim.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let image = try? ImageCodec.decode(bytes, path: "fuzz") {
        let small = ImageCodec.resizeArea(image, height: 7, width: 5)
        let other = ImageCodec.convert(small, toChannels: image.channels == 1 ? 3 : 1)
        if other.pixels.count != 7 * 5 * other.channels { fatalError("resized image of the wrong size") }
    }
    return 0
}
