// What load promises about cost and numbers (docs/reliability.md, section 4):
//   - every DATA byte belongs to one tensor and every constant to one op slot,
//     so the load-time scans read at most 2 × the file (`loadScanBytes`);
//   - the work of one invoke is counted exactly (`Model.work`), against hand counts;
//   - Float32 values are proven finite for every input in the normalised pixel
//     range, against hand-computed bounds and by running blobs that load.

import SprigCompile
import SprigRuntime
import SprigWriter
import SprigTestSupport
import Foundation
import XCTest

final class LoadCostTests: XCTestCase {
    // MARK: Linear load

    /// The worst blobs of `sprig bench --load`, at 1/64 of their size: each attack
    /// of the adversarial pass is refused with its own error, before any scan; the
    /// blobs that load scan at most twice their size.
    func testTheHostileBlobsAreRefusedAndTheRestScanAtMostTwiceTheirSize() throws {
        let blobs = try hostileBlobs(scaleShift: 6)
        XCTAssertEqual(blobs.map(\.name), ["plain", "aliased-data", "aliased-quant", "shared-weights", "max-records"])
        for blob in blobs {
            let error = loadError(blob.bytes)
            switch blob.name {
            case "aliased-data", "aliased-quant":
                guard case .overlappingData(.tensorDataOffset, _, _)? = error else { XCTFail("\(blob.name): \(String(describing: error))"); continue }
            case "shared-weights":
                XCTAssertEqual(error, .sharedConstant(op: 1, slot: 1, tensor: 1, firstOp: 0))
            default:
                XCTAssertNil(error, blob.name)
                try withModel(blob.bytes) { m in
                    XCTAssertLessThanOrEqual(m.loadScanBytes, 2 * blob.bytes.count, blob.name)
                    XCTAssertGreaterThan(m.loadScanBytes, 0, blob.name)
                }
            }
        }
    }

    /// The second attack: records whose quantization tables alias one large table.
    func testQuantizationTablesAliasingOneTableAreRefused() throws {
        var b = quantizeRoundTrip()
        let channels = 4096
        let table = b.addConstant("table", int8s: [Int8](repeating: 1, count: channels), shape: [channels],
                                  quant: [QuantParams](repeating: QuantParams(scale: 1, zeroPoint: 0), count: channels))
        for i in 0..<16 {
            b.addConstant("alias\(i)", int8s: [1], shape: [1], quant: [QuantParams(scale: 1, zeroPoint: 0)])
        }
        var m = BlobBytes(try b.build())
        let tableAt = m.u32(m.tensorRecord(table) + 36)
        for i in 1...16 { m.setU32(m.tensorRecord(table + i) + 36, tableAt) }
        m.fixCRC()
        XCTAssertEqual(loadError(m.bytes), .overlappingData(field: .quantOffset, first: table, second: table + 1))
    }

    /// The f32 all-ops network: every constant is an f32 weight or bias of one op, so
    /// the scans read each constant twice (non-finite scan, value bounds), nothing more.
    func testLoadScansEachConstantTwiceAtMost() throws {
        let builder = allOpsNetwork(seed: 5)
        let constantBytes = builder.tensors.filter { $0.storage == .constant }.reduce(0) { $0 + $1.data.count }
        let blob = try builder.build()
        try withModel(blob) { m in
            XCTAssertEqual(m.loadScanBytes, 2 * constantBytes)
        }
        // And for the int8 blobs of the fixtures: at most twice the file.
        for name in ["ref-cnn-f32", "ref-cnn-q8", "all-ops-f32", "all-ops-q8"] {
            let bytes = try fixtureBytes("\(name).sprig")
            try withModel(bytes) { m in
                XCTAssertGreaterThan(m.loadScanBytes, 0, name)
                XCTAssertLessThanOrEqual(m.loadScanBytes, 2 * bytes.count, name)
            }
        }
    }

    // MARK: Invoke work

    /// Hand counts of the all-ops network (ReferenceModels.swift draws it).
    func testWorkOfEveryOpMatchesAHandCount() throws {
        try withModel(try allOpsNetwork(seed: 3).build()) { m in
            let macs: [UInt64] = [
                8 * 8 * 4 * 3 * 3 * 2,  // conv1 3×3 2→4 at 8×8
                4 * 4 * 4 * 3 * 3,      // depthwise 3×3 s2 at 4×4×4
                4 * 4 * 4 * 4,          // conv2 1×1 4→4
                0, 0, 0, 0,             // add, maxpool, avgpool, gap
                3 * 4,                  // fc1
                0,                      // reshape
                3 * 16,                 // fc2
                0, 0,                   // add, softmax
            ]
            let elementOps: [UInt64] = [
                8 * 8 * 4, 4 * 4 * 4, 4 * 4 * 4,  // one bias-and-clamp step per output
                4 * 4 * 4,                         // add
                2 * 2 * 4 * 2 * 2,                 // maxpool 2×2 taps per output
                2 * 2 * 4 * 3 * 3,                 // avgpool 3×3 taps per output
                2 * 2 * 4,                         // gap reads its input once
                3, 16, 3, 3,                       // fc1, reshape, fc2, add
                3 * 3,                             // softmax: three passes
            ]
            XCTAssertEqual(m.opCount, macs.count)
            for o in 0..<m.opCount {
                XCTAssertEqual(m.work(ofOp: o), Work(macs: macs[o], elementOps: elementOps[o]), "op \(o)")
            }
            XCTAssertEqual(m.work, Work(macs: macs.reduce(0, +), elementOps: elementOps.reduce(0, +)))
        }
        // The reference CNN: 3×3 convs 1→16 at 28×28, 16→32 at 14×14, 32→64 at 7×7, dense 64→10.
        let reference: UInt64 = 28 * 28 * 16 * 9 + 14 * 14 * 32 * 9 * 16 + 7 * 7 * 64 * 9 * 32 + 64 * 10
        for name in ["ref-cnn-f32", "ref-cnn-q8"] {
            try withModel(try fixtureBytes("\(name).sprig")) { m in XCTAssertEqual(m.work.macs, reference, name) }
        }
    }

    // MARK: Finite values

    /// A 1→1 Dense on x = p/255 ∈ [0, 1]: the bound is W·(1 + 2⁻²³), the limit Float.max/2 ≈ 1.7014e38.
    func testTheBoundOfADenseIsItsWeightTimesTheInputRange() {
        XCTAssertNil(buildError(dense(weights: [1.69e38])))
        XCTAssertEqual(boundError(dense(weights: [1.71e38])).map { $0 > 1.71e38 && $0 < 1.7101e38 }, true)
        // The bias adds its magnitude; a negative weight bounds from below.
        XCTAssertNil(buildError(dense(weights: [-1.0e38], bias: 0.6e38)))
        XCTAssertNotNil(boundError(dense(weights: [-1.2e38], bias: -0.6e38)))
    }

    /// The interval is exact through a chain: ReLU6 bounds the next layer's input by 6.
    func testAFusedReLU6BoundsTheNextLayer() {
        XCTAssertNil(buildError(chain(first: 1e30, second: 1e37, activation: .relu6)))
        XCTAssertEqual(buildError(chain(first: 1e30, second: 1e37, activation: .none)).map {
            if case .valueOverflow(1, _) = $0 { return true }
            return false
        }, true)
    }

    /// Dequantize: scale × (q − zero point) with |q − zp| ≤ 255.
    func testADequantizeScaleOf3e38IsRefused() throws {
        for (scale, refused) in [(Float(1e35), false), (Float(3e38), true)] {
            let b = quantizeRoundTrip(scale: scale)
            if refused {
                XCTAssertThrowsError(try b.build()) { error in
                    guard case .valueOverflow(1, _)? = error as? SprigError else { return XCTFail("\(error)") }
                }
            } else {
                XCTAssertNoThrow(try b.build())
            }
        }
    }

    /// The guarantee itself: random conv nets at weight scales from 1 to 1e20;
    /// every one that loads gives finite outputs on black, white and random
    /// images, and every refusal names an op's value overflow.
    func testEveryBlobThatLoadsGivesFiniteOutputs() throws {
        var rng = SeededRNG(seed: 11)
        var loaded = 0, refused = 0
        for scale in [1.0, 1e3, 1e6, 1e9, 1e12, 1e15, 1e18, 1e20] {
            for _ in 0..<6 {
                let blob = randomConvNet(scale: scale, rng: &rng)
                guard let blob = blob else {
                    refused += 1
                    continue
                }
                loaded += 1
                try withModel(blob) { m in
                    let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: max(m.arenaBytes, 16), alignment: 16)
                    defer { arena.deallocate() }
                    let interpreter = try Interpreter(model: m, arena: arena)
                    let n = interpreter.inputInfo.elementCount
                    for image in [[UInt8](repeating: 0, count: n), [UInt8](repeating: 255, count: n),
                                  (0..<n).map { _ in UInt8(rng.int(in: 0...255)) }] {
                        try image.withUnsafeBytes { try interpreter.setInput(pixels: $0) }
                        interpreter.invoke()
                        for i in 0..<interpreter.outputCount {
                            XCTAssertTrue(interpreter.output(i).isFinite, "scale \(scale): output \(i) is \(interpreter.output(i))")
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(loaded, 10)
        XCTAssertGreaterThan(refused, 5)
    }

    // MARK: Helpers

    private func dense(weights: [Float], bias: Float? = nil) -> BlobBuilder {
        var b = BlobBuilder()
        let x = b.addActivation("x", dtype: .f32, shape: [1])
        b.addInput(x, mean: 0, std: 1)
        let w = b.addConstant("w", floats: weights, shape: [1, 1])
        let c = bias.map { b.addConstant("b", floats: [$0], shape: [1]) } ?? -1
        let y = b.addActivation("y", dtype: .f32, shape: [1])
        b.addOp(.dense, inputs: [x, w, c], output: y)
        b.addOutput(y)
        return b
    }

    private func chain(first: Float, second: Float, activation: Activation) -> BlobBuilder {
        var b = BlobBuilder()
        let x = b.addActivation("x", dtype: .f32, shape: [1])
        b.addInput(x, mean: 0, std: 1)
        let w1 = b.addConstant("w1", floats: [first], shape: [1, 1])
        let h = b.addActivation("h", dtype: .f32, shape: [1])
        b.addOp(.dense, activation: activation, inputs: [x, w1, -1], output: h)
        let w2 = b.addConstant("w2", floats: [second], shape: [1, 1])
        let y = b.addActivation("y", dtype: .f32, shape: [1])
        b.addOp(.dense, inputs: [h, w2, -1], output: y)
        b.addOutput(y)
        return b
    }

    /// input [6,6,1] → Conv3×3 1→3 pad 1 (+ReLU or none) → GAP → Dense 3→2; weights N(0, scale).
    private func randomConvNet(scale: Double, rng: inout SeededRNG) -> [UInt8]? {
        var b = BlobBuilder()
        let x = b.addActivation("x", dtype: .f32, shape: [6, 6, 1])
        b.addInput(x, mean: Float(rng.double(in: -1...1)), std: Float(rng.double(in: 0.1...1)))
        let w = b.addConstant("w", floats: (0..<27).map { _ in Float(rng.double(in: -1...1) * scale) }, shape: [3, 3, 1, 3])
        let c = b.addActivation("c", dtype: .f32, shape: [6, 6, 3])
        b.addOp(.conv2d, activation: rng.int(in: 0...1) == 0 ? .relu : .none, inputs: [x, w, -1], output: c,
                params: [1, 1, 1, 1, 1, 1])
        let g = b.addActivation("g", dtype: .f32, shape: [3])
        b.addOp(.globalAveragePool, inputs: [c], output: g)
        let w2 = b.addConstant("w2", floats: (0..<6).map { _ in Float(rng.double(in: -1...1) * scale) }, shape: [2, 3])
        let y = b.addActivation("y", dtype: .f32, shape: [2])
        b.addOp(.dense, inputs: [g, w2, -1], output: y)
        b.addOutput(y)
        do {
            return try b.build()
        } catch {
            guard case .valueOverflow = error else {
                XCTFail("refused for another reason: \(error)")
                return nil
            }
            return nil
        }
    }

    private func buildError(_ b: BlobBuilder) -> SprigError? {
        do {
            _ = try b.build()
            return nil
        } catch {
            return error
        }
    }

    private func boundError(_ b: BlobBuilder) -> Double? {
        if case .valueOverflow(_, let bound)? = buildError(b) { return bound }
        return nil
    }

    private func fixtureBytes(_ name: String) throws -> [UInt8] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures").appendingPathComponent(name)
        return [UInt8](try Data(contentsOf: url))
    }

    private func withModel(_ bytes: [UInt8], _ body: (Model) throws -> Void) throws {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        defer { copy.deallocate() }
        copy.copyBytes(from: bytes)
        try body(try Model(bytes: UnsafeRawBufferPointer(rebasing: copy[0..<bytes.count])))
    }
}
