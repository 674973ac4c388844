// Resource bounds: what a hostile blob can make the runtime do (docs/reliability.md).
//
// The work of one invoke is Σ over ops of  output elements × reduction length,
// where the reduction length is what one output element reads:
//
//   Dense                  In                (In × Out weights live in the blob)
//   Conv2D                 KH × KW × Cin     (the weights live in the blob)
//   DepthwiseConv2D        KH × KW           (≤ 16 × 16, validated)
//   MaxPool2D, AvgPool2D   KH × KW           (≤ 16 × 16, validated)
//   GlobalAveragePool      H × W             (its input lives in the arena)
//   the rest               1                 (element-wise, or one pass per row)
//
// Every output lives in the arena and every weight in the blob, so each op's
// work is at most  arena_bytes × max(blob_bytes, 256), and an invoke's at most
// op_count (≤ 1,024) times that. The cost is fixed by the declared shapes and
// known after load, before any invoke: `arenaBytes` says how much memory the
// caller must give, and a caller that gives less is refused.

import SprigCompile
import SprigRuntime
import SprigWriter
import SprigTestSupport
import XCTest

final class ResourceBoundTests: XCTestCase {
    /// Output elements × reduction length of each op, from the validated op table.
    func work(_ m: Model) -> [Int] {
        (0..<m.opCount).map { o in
            let op = m.op(o)
            let y = m.tensor(op.output)
            let reduction: Int
            switch op.opcode {
            case .dense: reduction = m.tensor(op.inputs.1).dims.1
            case .conv2d:
                let w = m.tensor(op.inputs.1)
                reduction = w.dims.0 * w.dims.1 * w.dims.2
            case .depthwiseConv2d:
                let w = m.tensor(op.inputs.1)
                reduction = w.dims.0 * w.dims.1
            case .maxPool2d, .avgPool2d: reduction = Int(op.params.0) * Int(op.params.1)
            case .globalAveragePool:
                let x = m.tensor(op.inputs.0)
                reduction = x.dims.0 * x.dims.1
            default: reduction = 1
            }
            return y.elementCount * reduction
        }
    }

    func assertWithinBound(_ m: Model, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        let perOp = max(m.arenaBytes, 16) * max(m.bytes.count, 256)
        for (o, w) in work(m).enumerated() {
            XCTAssertLessThanOrEqual(w, perOp, "\(label): op #\(o) does \(w) steps, above arena × blob = \(perOp)",
                                     file: file, line: line)
        }
        XCTAssertLessThanOrEqual(m.opCount, BlobLayout.maxOps, label, file: file, line: line)
    }

    func load(_ bytes: [UInt8], _ body: (Model) throws -> Void) rethrows {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        defer { copy.deallocate() }
        copy.copyBytes(from: bytes)
        guard let m = try? Model(bytes: UnsafeRawBufferPointer(rebasing: copy[0..<bytes.count])) else { return }
        try body(m)
    }

    /// The reference networks and 1,000 seeded mutations of their header and tables: every
    /// blob the reader accepts stays within the bound. (CorruptionTests runs such mutants.)
    func testEveryAcceptedBlobIsWithinTheBound() throws {
        var accepted = 0
        var rng = SplitMix64(seed: 2026)
        for source in [try allOpsNetwork(seed: 3).build(), try referenceCNN().build()] {
            load(source) { assertWithinBound($0, "reference") }
            for i in 0..<500 {
                var b = BlobBytes(source)
                // Header and tables only: data bytes do not change shapes.
                let structural = b.structuralRanges
                let range = structural[Int(rng.next() % UInt64(structural.count))]
                let at = range.lowerBound + Int(rng.next() % UInt64(range.count)) & ~3
                if at + 4 <= b.bytes.count {
                    b.setU32(at, [0, 1, 2, 16, 17, 255, 4096, 0x7FFF_FFFF, 0xFFFF_FFF0][Int(rng.next() % 9)])
                }
                b.fixCRC()
                load(b.bytes) { m in
                    accepted += 1
                    assertWithinBound(m, "mutation \(i)")
                }
            }
        }
        print("resource bound: \(accepted) of 1000 mutated blobs were accepted, all within the bound")
    }

    /// The most work per blob byte the format allows: one 16 × 16 convolution over a
    /// 2048 × 2048 input. 1.1 G multiply-adds from a blob of about a kilobyte — but only
    /// with the 32 MiB arena the blob declares, which the caller sees before any invoke.
    func testWorstWorkPerBlobByteNeedsItsDeclaredArena() throws {
        var b = BlobBuilder()
        let x = b.addActivation("input", dtype: .f32, shape: [2048, 2048, 1])
        b.addInput(x)
        let w = b.addConstant("w", floats: [Float](repeating: 0.01, count: 256), shape: [16, 16, 1, 1])
        let y = b.addActivation("y", dtype: .f32, shape: [2033, 2033, 1])
        b.addOp(.conv2d, inputs: [x, w, -1], output: y, params: [1, 1, 0, 0, 0, 0])
        b.addOutput(y)
        let blob = try b.build()
        try load(blob) { m in
            XCTAssertLessThan(m.bytes.count, 2048)
            XCTAssertEqual(work(m), [2033 * 2033 * 256])
            XCTAssertGreaterThanOrEqual(m.arenaBytes, (2048 * 2048 + 2033 * 2033) * 4, "the arena plan shows the cost")
            assertWithinBound(m, "worst case")
            let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: m.arenaBytes - 16, alignment: 16)
            defer { arena.deallocate() }
            XCTAssertThrowsError(try Interpreter(model: m, arena: arena)) {
                XCTAssertEqual($0 as? SprigError, .arenaTooSmall(need: m.arenaBytes, have: m.arenaBytes - 16))
            }
        }
        // One step past the validated limits is refused: a 17-wide window.
        var c = BlobBuilder()
        let x2 = c.addActivation("input", dtype: .f32, shape: [32, 32, 1])
        c.addInput(x2)
        let w2 = c.addConstant("w", floats: [Float](repeating: 0.01, count: 17 * 17), shape: [17, 17, 1, 1])
        let y2 = c.addActivation("y", dtype: .f32, shape: [16, 16, 1])
        c.addOp(.conv2d, inputs: [x2, w2, -1], output: y2, params: [1, 1, 0, 0, 0, 0])
        c.addOutput(y2)
        XCTAssertThrowsError(try c.build()) {
            XCTAssertEqual($0 as? SprigError, .invalidField(field: .opParam, index: 0, value: 17))
        }
    }
}
