// The fine-tuner's fast paths against the naive code they replace, bit for bit:
// the SIMD head gradient against headLossAndGradient, the refined square root
// against the digit-by-digit one and IEEE `sqrt`, and the pixel-to-code table
// against setInput, shiftImage and the Quantize op.

import Foundation
@testable import SprigRuntime
import SprigWriter
import SprigTestSupport
import XCTest

final class FineTuneFastPathTests: XCTestCase {
    /// Odd shapes (D below, at and across multiples of 16; C below, at and past 4),
    /// batches with and without an index list, with and without the anchor.
    func testHeadGradientSIMDMatchesTheNaiveBitForBit() {
        var rng = SeededRNG(seed: 21)
        for d in [1, 5, 15, 16, 17, 33, 60, 64] {
            for c in [1, 2, 3, 4, 5, 7, 10] {
                let n = 9
                var features = [Float]()
                for _ in 0..<n {
                    let v = rng.floats(d, in: -1...1)
                    let norm = max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-6)
                    features += v.map { $0 / norm }
                }
                let labels: [Int32] = (0..<n).map { Int32(($0 * 7) % c) }
                let w = rng.floats(c * d, in: -3...3), b = rng.floats(c, in: -1...1)
                let anchor = rng.floats(c * d, in: -3...3)
                for (indices, lambda) in [([Int32]?.none, Float(0)), ([6, 0, 8, 2, 5], Float(0.25))] {
                    let count = indices?.count ?? n
                    func run(_ simd: Bool, wantsLoss: Bool) -> (Float, [Float], [Float]) {
                        var gw = [Float](repeating: .nan, count: c * d), gb = [Float](repeating: .nan, count: c)
                        var logits = [Float](repeating: 0, count: c), probs = [Float](repeating: 0, count: c)
                        let idx = indices ?? [0]
                        let loss = features.withUnsafeBufferPointer { f in
                            labels.withUnsafeBufferPointer { l in
                                idx.withUnsafeBufferPointer { i in
                                    let batch = HeadBatch(features: f.baseAddress!, labels: l.baseAddress!,
                                                          indices: indices == nil ? nil : i.baseAddress!,
                                                          count: count, dim: d, classes: c)
                                    return simd
                                        ? headGradientSIMD(batch, weights: w, bias: b, anchor: anchor, anchorStrength: lambda,
                                                           gradWeights: &gw, gradBias: &gb, logits: &logits, probs: &probs,
                                                           wantsLoss: wantsLoss)
                                        : headLossAndGradient(batch, weights: w, bias: b, anchor: anchor, anchorStrength: lambda,
                                                              gradWeights: &gw, gradBias: &gb, logits: &logits, probs: &probs)
                                }
                            }
                        }
                        return (loss, gw, gb)
                    }
                    let label = "D \(d), C \(c), indices \(indices != nil), λ \(lambda)"
                    let naive = run(false, wantsLoss: true)
                    for wantsLoss in [true, false] {
                        let fast = run(true, wantsLoss: wantsLoss)
                        XCTAssertEqual(fast.1.map(\.bitPattern), naive.1.map(\.bitPattern), "dW, \(label)")
                        XCTAssertEqual(fast.2.map(\.bitPattern), naive.2.map(\.bitPattern), "db, \(label)")
                        XCTAssertEqual(fast.0.bitPattern, wantsLoss ? naive.0.bitPattern : Float(0).bitPattern, "loss, \(label)")
                    }
                }
            }
        }
    }

    /// Both square roots against IEEE `sqrt`: every significand of [1, 4) at a
    /// stride (both exponent parities), the extremes, subnormals and random bits.
    func testBothSquareRootsAreCorrectlyRounded() {
        var xs: [Float] = [.leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude,
                           Float(bitPattern: 0x007F_FFFF), Float(bitPattern: 0x0000_0003), 0.5, 1, 2, 4]
        var bits: UInt32 = 0x3F80_0000  // 1.0
        while bits < 0x4080_0000 {  // 4.0
            xs.append(Float(bitPattern: bits))
            bits &+= 97
        }
        for k in 0..<126 { xs.append(Float(bitPattern: UInt32(k) << 23 | 0x0055_5555)) }
        var rng = SeededRNG(seed: 22)
        xs += (0..<50_000).map { _ in Float(bitPattern: UInt32.random(in: 1...0x7F7F_FFFF, using: &rng)) }
        for x in xs {
            let expected = x.squareRoot().bitPattern
            XCTAssertEqual(sqrtF32Refined(x).bitPattern, expected, "refined sqrt(\(x)), bits \(x.bitPattern)")
            XCTAssertEqual(sqrtF32Digits(x).bitPattern, expected, "digits sqrt(\(x)), bits \(x.bitPattern)")
        }
        for special: Float in [0, -0.0, .infinity] {
            XCTAssertEqual(sqrtF32Refined(special).bitPattern, special.bitPattern)
        }
        XCTAssertTrue(sqrtF32Refined(-1).isNaN)
        XCTAssertTrue(sqrtF32Refined(.nan).isNaN)
        XCTAssertTrue(sqrtF32Refined(-.infinity).isNaN)
    }

    /// For every shifted copy, the codes written from the table are the bytes
    /// the interpreter's path leaves in the same tensor: shift the image (zeros
    /// in), setInput, and run the Quantize op when the input is Float32.
    func testInputCodesAreTheInterpretersBytes() throws {
        let planted = try Planted.blob(try Planted.quantized())
        let reference = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("ref-cnn-q8.sprig")))
        var checked = 0
        for (name, blob) in [("ref-cnn-q8", reference), ("planted-q8", planted)] {
            let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: blob.count, alignment: 16)
            defer { bytes.deallocate() }
            bytes.copyBytes(from: blob)
            let model = try Model(bytes: UnsafeRawBufferPointer(bytes))
            let head = try ClassifierHead(model: model)
            guard let codes = InputCodes(model: model, backboneEnd: head.firstOp) else {
                XCTFail("\(name): no input codes")
                continue
            }
            let fast = UnsafeMutableRawBufferPointer.allocate(byteCount: model.arenaBytes, alignment: 16)
            let slow = UnsafeMutableRawBufferPointer.allocate(byteCount: model.arenaBytes, alignment: 16)
            defer {
                fast.deallocate()
                slow.deallocate()
            }
            let interpreter = try Interpreter(model: model, arena: slow)
            let (h, w, ch) = (codes.height, codes.width, codes.channels)
            var rng = SeededRNG(seed: 23)
            let images: [[UInt8]] = [[UInt8](repeating: 0, count: h * w * ch), [UInt8](repeating: 255, count: h * w * ch),
                                     (0..<(h * w * ch)).map { UInt8($0 % 256) },
                                     (0..<(h * w * ch)).map { _ in UInt8.random(in: 0...255, using: &rng) }]
            for image in images {
                for copy in 0...8 {
                    // The interpreter's path, with the shift written out naively.
                    var shifted = [UInt8](repeating: 0, count: image.count)
                    let (dy, dx) = copy == 0 ? (0, 0) : shiftOffset(copy: copy)
                    for y in 0..<h {
                        for x in 0..<w where (0..<h).contains(y - dy) && (0..<w).contains(x - dx) {
                            for c in 0..<ch { shifted[(y * w + x) * ch + c] = image[((y - dy) * w + x - dx) * ch + c] }
                        }
                    }
                    try shifted.withUnsafeBytes { try interpreter.setInput(pixels: $0) }
                    for o in 0..<codes.firstOp { interpreter.run(o) }
                    fast.initializeMemory(as: UInt8.self, repeating: 0xA5)
                    image.withUnsafeBytes { codes.write($0, copy: copy, base: fast.baseAddress!) }
                    let n = h * w * ch
                    XCTAssertEqual(Array(fast[codes.offset..<(codes.offset + n)]), Array(slow[codes.offset..<(codes.offset + n)]),
                                   "\(name), copy \(copy)")
                    checked += 1
                }
            }
        }
        XCTAssertEqual(checked, 2 * 4 * 9)
    }
}
