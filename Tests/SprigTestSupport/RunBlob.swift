// Runs a blob on 8-bit images through the runtime, for tests that compare a
// compiled network with its reference.

import SprigRuntime

/// The index of the largest value (the first on ties).
public func argmax(_ v: [Float]) -> Int { v.indices.max { v[$0] < v[$1] } ?? 0 }

/// Every image through `blob` (copied to an aligned buffer, with an arena of
/// the plan's size); returns each image's outputs as real numbers.
public func runBlob(_ blob: [UInt8], _ images: [[UInt8]]) throws -> [[Float]] {
    let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: blob.count, alignment: 16)
    defer { bytes.deallocate() }
    bytes.copyBytes(from: blob)
    let model = try Model(bytes: UnsafeRawBufferPointer(bytes))
    let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: max(model.arenaBytes, 16), alignment: 16)
    defer { arena.deallocate() }
    let interpreter = try Interpreter(model: model, arena: arena)
    return try images.map { image in
        try image.withUnsafeBytes { try interpreter.setInput(pixels: $0) }
        interpreter.invoke()
        return (0..<interpreter.outputCount).map { interpreter.output($0) }
    }
}
