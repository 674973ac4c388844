// The writer and reader as a mirrored pair, the CRC, and the arena planner.

import SprigCompile
import SprigRuntime
import SprigWriter
import SprigTestSupport
import XCTest

final class CRC32Tests: XCTestCase {
    func testStandardCheckValue() {
        let bytes = Array("123456789".utf8)
        XCTAssertEqual(bytes.withUnsafeBytes { b -> UInt32 in var c = CRC32(); c.update(b); return c.value }, 0xCBF4_3926)
        XCTAssertEqual(referenceCRC32(bytes), 0xCBF4_3926)
    }

    func testMatchesBitwiseReferenceOnRandomBuffers() {
        var rng = SplitMix64(seed: 5)
        // 4,096 and up take the byte-table path; below it, the nibble path.
        for length in [0, 1, 2, 3, 15, 16, 17, 255, 1000, 4095, 4096, 4097, 10_000] {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let fast = bytes.withUnsafeBytes { b -> UInt32 in var c = CRC32(); c.update(b); return c.value }
            XCTAssertEqual(fast, referenceCRC32(bytes), "length \(length)")
        }
    }

    func testBlobCRCTreatsTheFieldAsZero() {
        var bytes = (0..<100).map { UInt8($0) }
        for i in 8..<12 { bytes[i] = 0 }
        let expected = referenceCRC32(bytes)
        for i in 8..<12 { bytes[i] = 0xAB }
        XCTAssertEqual(bytes.withUnsafeBytes { CRC32.blob($0) }, expected)
    }
}

final class BlobRoundTripTests: XCTestCase {
    /// Reads back every field the builder wrote, field by field.
    func testReaderMirrorsWriter() throws {
        let builder = allOpsNetwork()
        let blob = try builder.build()
        XCTAssertEqual(blob.count % 16, 0)
        XCTAssertEqual(Array(blob[0..<4]), Array("SPRG".utf8))
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: blob.count, alignment: 16)
        defer { copy.deallocate() }
        copy.copyBytes(from: blob)
        let model = try Model(bytes: UnsafeRawBufferPointer(copy))
        XCTAssertEqual(model.tensorCount, builder.tensors.count)
        XCTAssertEqual(model.opCount, builder.ops.count)
        for (t, spec) in builder.tensors.enumerated() {
            let info = model.tensor(t)
            XCTAssertEqual(info.dtype, spec.dtype)
            XCTAssertEqual(info.storage, spec.storage)
            XCTAssertEqual((0..<info.rank).map { info.dim($0) }, spec.shape, spec.name)
            XCTAssertEqual(String(decoding: model.name(info), as: UTF8.self), spec.name)
            XCTAssertEqual(info.dataOffset % 16, 0)
            if spec.storage == .constant {
                XCTAssertEqual(Array(model.constantBytes(info)), spec.data, spec.name)
            }
        }
        for (o, spec) in builder.ops.enumerated() {
            let op = model.op(o)
            XCTAssertEqual(op.opcode, spec.opcode)
            XCTAssertEqual(op.activation, spec.activation)
            XCTAssertEqual(op.output, spec.output)
            XCTAssertEqual((0..<op.inputCount).map { op.input($0) }, spec.inputs)
            XCTAssertEqual((0..<spec.params.count).map { op.param($0) }, spec.params)
        }
        XCTAssertEqual(model.input(0)?.tensor, builder.inputs[0].tensor)
        XCTAssertEqual(model.input(0)?.mean, 0.5)
        XCTAssertEqual(model.output(0), builder.outputs[0])
        XCTAssertEqual(model.metadata(key: "name").map { String(decoding: $0, as: UTF8.self) }, "all-ops")
        XCTAssertNil(model.metadata(key: "nothing"))
        XCTAssertEqual(model.arenaBytes, builder.plan().peak)
    }

    func testBuildIsDeterministic() throws {
        XCTAssertEqual(try allOpsNetwork(seed: 4).build(), try allOpsNetwork(seed: 4).build())
        XCTAssertNotEqual(try allOpsNetwork(seed: 4).build(), try allOpsNetwork(seed: 5).build())
    }

    func testBuilderRejectsAnInvalidNetwork() {
        var b = BlobBuilder()
        let x = b.addActivation("x", dtype: .f32, shape: [4])
        let w = b.addConstant("w", floats: [Float](repeating: 1, count: 10), shape: [2, 5])
        let y = b.addActivation("y", dtype: .f32, shape: [2])
        b.addOp(.dense, inputs: [x, w, -1], output: y)
        b.addInput(x)
        b.addOutput(y)
        XCTAssertThrowsError(try b.build()) { error in
            XCTAssertEqual(error as? SprigError, .shapeMismatch(op: 0, slot: 0, expected: 5, found: 4))
        }
    }
}

final class ArenaPlannerTests: XCTestCase {
    func testHandExample() {
        // Three 64-byte buffers over [0,1], [1,2], [2,3]: the first and third share bytes.
        let plan = planArena([PlannedBuffer(size: 64, first: 0, last: 1),
                              PlannedBuffer(size: 64, first: 1, last: 2),
                              PlannedBuffer(size: 64, first: 2, last: 3)])
        XCTAssertEqual(plan.peak, 128)
        XCTAssertEqual(plan.offsets[0], plan.offsets[2])
        XCTAssertNotEqual(plan.offsets[0], plan.offsets[1])
    }

    /// Random graphs: no two buffers that live at the same time overlap; the peak
    /// is at least the largest set of simultaneously live bytes and at most the sum.
    func testRandomGraphsProperties() {
        var rng = SplitMix64(seed: 11)
        for _ in 0..<300 {
            let n = 1 + Int(rng.next() % 24)
            let steps = 1 + Int(rng.next() % 16)
            var buffers: [PlannedBuffer] = []
            for _ in 0..<n {
                let a = Int(rng.next() % UInt64(steps)), b = Int(rng.next() % UInt64(steps))
                buffers.append(PlannedBuffer(size: 1 + Int(rng.next() % 5000), first: min(a, b), last: max(a, b)))
            }
            let plan = planArena(buffers)
            func aligned(_ s: Int) -> Int { (s + 15) / 16 * 16 }
            for i in 0..<n {
                XCTAssertEqual(plan.offsets[i] % 16, 0)
                XCTAssertLessThanOrEqual(plan.offsets[i] + buffers[i].size, plan.peak)
                for j in (i + 1)..<max(i + 1, n) where buffers[i].livesWith(buffers[j]) {
                    let disjoint = plan.offsets[i] + buffers[i].size <= plan.offsets[j]
                        || plan.offsets[j] + buffers[j].size <= plan.offsets[i]
                    XCTAssertTrue(disjoint, "buffers \(i) and \(j) overlap while both live")
                }
            }
            var largestLive = 0
            for step in 0..<steps {
                largestLive = max(largestLive, buffers.filter { $0.first <= step && step <= $0.last }.map { $0.size }.reduce(0, +))
            }
            XCTAssertGreaterThanOrEqual(plan.peak, largestLive)
            XCTAssertLessThanOrEqual(plan.peak, buffers.map { aligned($0.size) }.reduce(0, +))
        }
    }
}
