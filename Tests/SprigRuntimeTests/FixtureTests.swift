// The committed reference fixtures (Tests/Fixtures, written by `sprig fixtures`):
// every tensor of every fixture against the naive graph evaluator, the
// expected outputs bit for bit, q8/f32 agreement, and the arena plan.

import Foundation
import SprigRuntime
import SprigTestSupport
import XCTest

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures")

/// A fixture blob in an aligned buffer with its model and an interpreter.
final class LoadedFixture {
    let bytes: UnsafeMutableRawBufferPointer
    let arena: UnsafeMutableRawBufferPointer
    let model: Model
    let interpreter: Interpreter

    init(_ name: String, extraArena: Int = 0) throws {
        let data = try Data(contentsOf: fixtures.appendingPathComponent(name))
        bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: data.count, alignment: 16)
        bytes.copyBytes(from: data)
        model = try Model(bytes: UnsafeRawBufferPointer(bytes))
        arena = UnsafeMutableRawBufferPointer.allocate(byteCount: model.arenaBytes + extraArena, alignment: 16)
        arena.initializeMemory(as: UInt8.self, repeating: 0xA5)
        interpreter = try Interpreter(model: model, arena: arena)
    }

    deinit {
        bytes.deallocate()
        arena.deallocate()
    }
}

/// The reference images (uncompressed IDX, 28×28) and labels.
func referenceImages() throws -> (images: [[UInt8]], labels: [UInt8]) {
    let images = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("ref-input.idx")))
    let labels = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("ref-labels.idx")))
    let count = Int(images[4]) << 24 | Int(images[5]) << 16 | Int(images[6]) << 8 | Int(images[7])
    let pixels = Array(images[16...])
    XCTAssertEqual(pixels.count, count * 784)
    return ((0..<count).map { Array(pixels[($0 * 784)..<(($0 + 1) * 784)]) }, Array(labels[8...]))
}

final class FixtureTests: XCTestCase {
    /// Every op's output, in f32 within 1e-5 relative of the naive Double
    /// evaluator, in q8 bit-exact; each tensor's name and difference printed.
    func testEveryTensorMatchesTheNaiveEvaluator() throws {
        let (images, _) = try referenceImages()
        var rng = SeededRNG(seed: 21)
        let smallInputs = (0..<4).map { _ in (0..<128).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        for name in ["ref-cnn-f32", "ref-cnn-q8", "all-ops-f32", "all-ops-q8"] {
            let f = try LoadedFixture(name + ".sprig")
            let inputs = name.hasPrefix("ref") ? Array(images.prefix(3)) : smallInputs
            for pixels in inputs {
                try pixels.withUnsafeBytes { try f.interpreter.setInput(pixels: $0) }
                var report: [String] = []
                let naive = NaiveGraph.run(f.model, pixels: pixels)
                f.interpreter.invoke { o in
                    let t = f.model.op(o).output
                    let info = f.model.tensor(t)
                    let label = String(decoding: f.model.name(info), as: UTF8.self)
                    let raw = f.interpreter.bytes(of: t)
                    switch info.dtype {
                    case .i8:
                        let got = raw.map { Int8(bitPattern: $0) }
                        guard case .int8(let want)? = naive[t] else { return XCTFail("\(name) \(label): no int8 reference") }
                        let mismatches = zip(got, want).filter { $0 != $1 }.count
                        report.append("\(label): \(mismatches) int8 mismatches")
                        XCTAssertEqual(got, want, "\(name) op \(o) \(label)")
                    default:
                        let got = (0..<info.elementCount).map { Double(raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self)) }
                        let want = naive[t]?.reals ?? []
                        XCTAssertEqual(got.count, want.count)
                        let scale = max(1, want.map(abs).max() ?? 0)
                        let diff = zip(got, want).map { abs($0 - $1) }.max() ?? 0
                        report.append("\(label): max |diff| \(diff)")
                        XCTAssertLessThan(diff / scale, 1e-5, "\(name) op \(o) \(label)")
                    }
                }
                if name.hasPrefix("ref") && pixels == inputs[0] { print("\(name):", report.joined(separator: "; ")) }
            }
        }
    }

    /// The runtime reproduces the committed expected outputs: q8 bit for bit, f32 within 1e-5.
    func testExpectedOutputs() throws {
        let (images, _) = try referenceImages()
        for precision in ["f32", "q8"] {
            let f = try LoadedFixture("ref-cnn-\(precision).sprig")
            let text = try String(contentsOf: fixtures.appendingPathComponent("ref-cnn-expected-\(precision).txt"), encoding: .utf8)
            let lines = text.split(separator: "\n")
            XCTAssertEqual(lines.count, images.count)
            for (i, line) in lines.enumerated() {
                let words = line.split(separator: " ")
                try images[i].withUnsafeBytes { try f.interpreter.setInput(pixels: $0) }
                f.interpreter.invoke()
                let want = words.dropLast().map { Float(bitPattern: UInt32($0, radix: 16) ?? 0) }
                let got = (0..<f.interpreter.outputCount).map { f.interpreter.output($0) }
                if precision == "q8" {
                    // Integer-only: bit for bit.
                    XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "q8 image \(i)")
                } else {
                    // Float32 sums may be reordered by a faster kernel: 1e-5 relative.
                    let scale = max(1, want.map { abs($0) }.max() ?? 0)
                    let diff = zip(got, want).map { abs($0 - $1) }.max() ?? .infinity
                    XCTAssertLessThan(diff / scale, 1e-5, "f32 image \(i)")
                }
                XCTAssertEqual("argmax=\(f.interpreter.argmax())", String(words.last ?? ""))
            }
        }
    }

    func testQ8AndF32AgreeOnTheArgmax() throws {
        let (images, _) = try referenceImages()
        let f32 = try LoadedFixture("ref-cnn-f32.sprig"), q8 = try LoadedFixture("ref-cnn-q8.sprig")
        for image in images {
            try image.withUnsafeBytes { try f32.interpreter.setInput(pixels: $0) }
            try image.withUnsafeBytes { try q8.interpreter.setInput(pixels: $0) }
            f32.interpreter.invoke()
            q8.interpreter.invoke()
            XCTAssertEqual(f32.interpreter.argmax(), q8.interpreter.argmax())
        }
    }

    /// An invoke writes inside the planned arena and reaches its end: the
    /// bytes past the plan keep their canary, and the last planned 16-byte
    /// block is written.
    func testArenaBytesUsedEqualThePlan() throws {
        let (images, _) = try referenceImages()
        for name in ["ref-cnn-f32", "ref-cnn-q8", "all-ops-f32", "all-ops-q8"] {
            let f = try LoadedFixture(name + ".sprig", extraArena: 256)
            let pixels = name.hasPrefix("ref") ? images[0] : [UInt8](repeating: 200, count: 128)
            try pixels.withUnsafeBytes { try f.interpreter.setInput(pixels: $0) }
            f.interpreter.invoke()
            let plan = f.model.arenaBytes
            let lastWritten = (0..<f.arena.count).last { f.arena[$0] != 0xA5 } ?? -1
            XCTAssertTrue(f.arena[plan...].allSatisfy { $0 == 0xA5 }, "\(name): bytes past the plan were written")
            XCTAssertGreaterThanOrEqual(lastWritten, plan - 16, "\(name): the plan is larger than what invoke uses")
        }
    }
}
