// The bytes both blob writers write, against bytes written before they shared
// one emitter (BlobEmitter.swift, issue 18): the committed fixtures, which
// `sprig fixtures` wrote with main's BlobBuilder, and the length and CRC-32 of
// tuned blobs that main's tuned-blob writer wrote. A change of any field
// offset, record size, section order, alignment or padding fails here.

import Foundation
import SprigCompile
import SprigRuntime
import SprigWriter
import SprigTestSupport
import XCTest

/// A fixture's bytes, as committed.
private func fixtureBytes(_ name: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: fixtures.appendingPathComponent(name)))
}

/// The description a blob was built from, read back through `Model`: tensors,
/// ops, IO, metadata and the fine-tuning plan in their stored order, so that
/// `build()` lays it out again from scratch (arena plan, DATA, STRINGS, CRC).
private func describe(_ blob: [UInt8]) throws -> BlobBuilder {
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: blob.count, alignment: 16)
    defer { copy.deallocate() }
    copy.copyBytes(from: blob)
    let model = try Model(bytes: UnsafeRawBufferPointer(copy))
    var b = BlobBuilder()
    for t in 0..<model.tensorCount {
        let info = model.tensor(t)
        let name = String(decoding: model.name(info), as: UTF8.self)
        let shape = (0..<info.rank).map { info.dim($0) }
        let quant = (0..<info.quantCount).map { model.quant(info, $0) }
        if info.storage == .constant {
            b.addConstant(name, dtype: info.dtype, shape: shape, data: Array(model.constantBytes(info)),
                          quant: quant, quantAxis: info.quantAxis)
        } else {
            XCTAssertLessThanOrEqual(quant.count, 1, name)
            b.addActivation(name, dtype: info.dtype, shape: shape, quant: quant.first)
        }
    }
    for o in 0..<model.opCount {
        let op = model.op(o)
        b.addOp(op.opcode, activation: op.activation, inputs: (0..<op.inputCount).map { op.input($0) },
                output: op.output, params: (0..<BlobLayout.paramCount).map { op.param($0) })
    }
    for i in 0..<model.ioCount {
        let io = model.io(i)
        if io.role == 0 { b.addInput(io.tensor, mean: io.mean, std: io.std) } else { b.addOutput(io.tensor) }
    }
    for m in 0..<model.metadataCount {
        let (key, value) = model.metadata(m)
        b.setMetadata(String(decoding: key, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }
    b.finetune = (model.finetuneArenaBytes, model.finetuneMaxClasses, model.finetuneMaxShots)
    if model.finetunePlanVersion == 1 { b.finetuneDetail = (model.finetuneAugmentation, model.finetuneMaxLayers) }
    return b
}

/// Reads an uncompressed IDX file of bytes: its payload after the header.
private func idxPayload(_ name: String) throws -> [UInt8] {
    let bytes = try fixtureBytes(name)
    let dims = Int(bytes[3])
    return Array(bytes[(4 + 4 * dims)...])
}

final class BlobBytesTests: XCTestCase {
    /// The all-ops network of `sprig fixtures` (f32, seed 3, no head so no
    /// plan) is the committed all-ops-f32.sprig, byte for byte.
    func testAllOpsF32IsTheCommittedFixture() throws {
        assertSameBytes(try allOpsNetwork(seed: 3).build(), try fixtureBytes("all-ops-f32.sprig"), "all-ops-f32")
    }

    /// Every committed fixture, read back into a description and built again,
    /// is its own bytes: f32 and q8 (per-channel quantization records,
    /// requantization tables), with and without a version-1 plan record.
    func testEveryFixtureRebuildsToItsOwnBytes() throws {
        for name in ["all-ops-f32", "all-ops-q8", "ref-cnn-f32", "ref-cnn-q8"] {
            let committed = try fixtureBytes(name + ".sprig")
            assertSameBytes(try describe(committed).build(), committed, name)
        }
    }

    /// Tuned blobs of the reference q8 fixture, from its committed shots.
    ///
    /// The expected lengths and CRCs are main's (commit c0e3148, before the
    /// emitter): `swift build --product sprig-edge`, then
    /// `sprig-edge finetune Tests/Fixtures/ref-cnn-q8.sprig Tests/Fixtures/shots-input.idx
    /// Tests/Fixtures/shots-labels.idx --seed 3 --out T.sprig` with
    /// `--method imprint`, and with `--method head --epochs 2 --augment 0
    /// --names sandal,shirt,sneaker,bag,boot`; the CRC is Python's
    /// `zlib.crc32` of the whole file. int8 features are bit-exact on every
    /// CPU and the head's arithmetic is the same on every build
    /// (tools/cortex-m-test, tools/qemu-test), so these hold everywhere.
    func testTunedBlobsOfTheQ8FixtureKeepTheirBytes() throws {
        let shots = (pixels: try idxPayload("shots-input.idx"), labels: try idxPayload("shots-labels.idx"))
        let blob = try fixtureBytes("ref-cnn-q8.sprig")
        let cases: [(String, FineTuneOptions, String?, Int, UInt32)] = [
            ("imprint", options(.imprint, epochs: nil, augmentation: 0), nil, 29_648, 0xA010_2DA7),
            ("head", options(.head, epochs: 2, augmentation: 0), "sandal,shirt,sneaker,bag,boot", 29_696, 0xCD37_81D9),
        ]
        for (label, options, names, bytes, crc) in cases {
            let h = try TuneHarness(blob)
            try h.tune(shots, classes: 5, options)
            let tuned = try h.tunedBlob(names: names)
            XCTAssertEqual(tuned.count, bytes, label)
            XCTAssertEqual(referenceCRC32(tuned), crc, label)
        }
    }

    /// A tuned blob whose backbone constants were trained (`last`, two layers,
    /// on the planted CNN: Conv2D, MaxPool, Add, AvgPool, Reshape, Softmax),
    /// with class names. The expected length and CRC were printed by this test
    /// run on main's writer (commit c0e3148, before the emitter; the AMD EPYC
    /// of 2026-12-04). The f32 arithmetic is that of the fixtures, whose tuned
    /// blobs tools/qemu-test finds byte-identical across instruction-set levels.
    func testATunedBlobWithTrainedBackboneKeepsItsBytes() throws {
        var cnn = PlantedCNN.network()
        try cnn.planFineTuning(maxClasses: 8, maxShots: 10, methods: [.head, .bias, .last], layers: 2)
        let h = try TuneHarness(try cnn.build())
        var o = FineTuneOptions(method: .last)
        o.layers = 2
        o.epochs = 3
        o.batchSize = 8
        o.seed = 7
        o.backboneLearningRate = 0.001  // last's default when the bytes were pinned (0.01 since 2026-12-06)
        try h.tune(Planted.samples(perClass: 5, seed: 1), classes: 5, o)
        let tuned = try h.tunedBlob(names: "v,w,x,y,z")
        XCTAssertEqual(tuned.count, 3_488)
        XCTAssertEqual(referenceCRC32(tuned), 0x4550_7B64)
    }

    /// Equal lengths and bytes; on a difference, the first offset that differs.
    private func assertSameBytes(_ written: [UInt8], _ expected: [UInt8], _ label: String,
                                 file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(written.count, expected.count, "\(label): length", file: file, line: line)
        let first = zip(written, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        XCTAssertNil(first, "\(label): first difference at byte \(first ?? -1)", file: file, line: line)
    }

    private func options(_ method: FineTuneMethod, epochs: Int?, augmentation: Int) -> FineTuneOptions {
        var o = FineTuneOptions(method: method)
        if let epochs { o.epochs = epochs }
        o.augmentation = augmentation
        o.seed = 3
        return o
    }
}

/// The emitter's own contract: where sections go, and the typed errors for a
/// buffer that is too short or a second pass that disagrees with the first.
final class BlobEmitterTests: XCTestCase {
    /// The example in BlobSections' doc comment, by hand: a 5-entry table ends
    /// at 64 + 80 = 144; 3 tensors (192), 1 op (64), 2 IO (32), 7 bytes of
    /// STRINGS padded to 16, 48 of DATA.
    func testSectionsPlaceTheDocumentedExample() throws {
        let s = try XCTUnwrap(BlobSections(tensorCount: 3, opCount: 1, ioCount: 2, metadataCount: 0, stringsBytes: 7, dataBytes: 48))
        XCTAssertEqual(s.count, 5)
        XCTAssertEqual([s.tensors.offset, s.ops.offset, s.io.offset, s.strings.offset, s.data.offset], [144, 336, 400, 432, 448])
        XCTAssertEqual(s.fileBytes, 496)
        XCTAssertEqual((0..<s.count).map { s.entry($0).kind }, [.tensors, .ops, .io, .strings, .data])
        XCTAssertEqual([s.metadata.offset, s.metadata.bytes, s.metadata.count], [0, 0, 0])
        XCTAssertNil(BlobSections(tensorCount: -1, opCount: 0, ioCount: 0, metadataCount: 0, stringsBytes: 0, dataBytes: 0))
        XCTAssertNil(BlobSections(tensorCount: 0, opCount: 0, ioCount: 0, metadataCount: 0, stringsBytes: 0, dataBytes: Int.max))
    }

    func testAShortBufferIsATypedErrorAndNothingIsStoredPastIt() throws {
        let s = try XCTUnwrap(BlobSections(tensorCount: 1, opCount: 0, ioCount: 0, metadataCount: 0, stringsBytes: 0, dataBytes: 16))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: s.fileBytes, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0xA5)
        let short = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<(s.fileBytes - 16)])
        var e = BlobEmitter(into: short, sections: s)
        e.header(arenaBytes: 0, finetune: FineTunePlan(arenaBytes: 0, maxClasses: 0, maxShots: 0))
        let value: [Float] = [1, 2, 3, 4]
        _ = value.withUnsafeBytes { e.constant($0) }
        XCTAssertThrowsError(try e.finish()) { XCTAssertEqual($0 as? SprigError, .truncated(needed: s.fileBytes, available: s.fileBytes - 16)) }
        XCTAssertTrue(buffer[(s.fileBytes - 16)...].allSatisfy { $0 == 0xA5 })
    }

    func testASecondPassThatPlacesOtherBytesIsRefused() throws {
        let s = try XCTUnwrap(BlobSections(tensorCount: 0, opCount: 0, ioCount: 0, metadataCount: 0, stringsBytes: 4, dataBytes: 0))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: s.fileBytes, alignment: 16)
        defer { buffer.deallocate() }
        var e = BlobEmitter(into: buffer, sections: s)
        _ = Array("abc".utf8).withUnsafeBytes { e.string($0) }
        // STRINGS is section 3: TENSORS, OPS, IO, STRINGS, DATA.
        XCTAssertThrowsError(try e.finish()) { XCTAssertEqual($0 as? SprigError, .fieldMismatch(field: .sectionBytes, index: 3, expected: 4, found: 3)) }
    }
}
