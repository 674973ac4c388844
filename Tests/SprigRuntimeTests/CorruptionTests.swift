// Corrupt blobs as a table of named cases. Each case edits one field of a
// valid blob, repairs the CRC (unless the case is about the CRC), and expects
// its own error. Then sweeps: every truncation length, and every single-byte
// flip of the header and tables, with and without CRC repair.

import SprigCompile
import SprigRuntime
import SprigTestSupport
import SprigTrain
import XCTest

final class CorruptionTests: XCTestCase {
    static let f32 = allOpsNetwork(seed: 7)
    static let f32Blob = try! f32.build()
    static let q8Blob: [UInt8] = {
        var ranges: [Int: ActivationRange] = [:]
        for (t, tensor) in f32.tensors.enumerated() where tensor.storage == .arena {
            ranges[t] = ActivationRange(min: -2, max: 3)
        }
        return try! quantizeNetwork(f32, ranges: ranges).build()
    }()

    /// Index of the tensor named `name` in the f32 reference network.
    func tensor(_ name: String) -> Int { Self.f32.tensors.firstIndex { $0.name == name }! }

    struct Case {
        var name: String
        var q8 = false
        var fixCRC = true
        var edit: (inout BlobBytes) -> Void
        var expect: (SprigError) -> Bool
    }

    func cases() -> [Case] {
        let conv1 = tensor("conv1"), input = tensor("input"), fcWeight = tensor("fc1.weight")
        let conv1Weight = tensor("conv1.weight"), fcBias = tensor("fc1.bias")
        return [
            Case(name: "bad magic", edit: { $0.bytes[3] = UInt8(ascii: "X") },
                 expect: { if case .badMagic = $0 { return true }; return false }),
            Case(name: "future version", edit: { $0.setU16(4, 2) },
                 expect: { $0 == .unsupportedVersion(found: 2, supported: 1) }),
            Case(name: "header size", edit: { $0.setU16(6, 80) },
                 expect: { $0 == .fieldMismatch(field: .headerBytes, index: 0, expected: 64, found: 80) }),
            Case(name: "file size field", edit: { $0.setU32(12, $0.u32(12) + 16) },
                 expect: { if case .fileSizeMismatch = $0 { return true }; return false }),
            Case(name: "CRC mismatch", fixCRC: false, edit: { $0.bytes[$0.bytes.count - 20] ^= 0x40 },
                 expect: { if case .crcMismatch = $0 { return true }; return false }),
            Case(name: "flags set", edit: { $0.setU32(16, 1) },
                 expect: { $0 == .invalidField(field: .flags, index: 0, value: 1) }),
            Case(name: "reserved header byte", edit: { $0.bytes[50] = 1 },
                 expect: { if case .invalidField(.reserved, _, _) = $0 { return true }; return false }),
            Case(name: "section count overflow", edit: { $0.setU32(20, 0xFFFF_FFFF) },
                 expect: { if case .countOverflow(.sectionCount, _, _, _) = $0 { return true }; return false }),
            Case(name: "tensor count overflow", edit: { b in
                let e = b.sectionEntry(kind: 1)!
                b.setU32(e + 12, 0x1000_0000)
            }, expect: { if case .countOverflow(.sectionRecordCount, _, _, _) = $0 { return true }; return false }),
            Case(name: "section bytes disagree with count", edit: { b in
                let e = b.sectionEntry(kind: 2)!
                b.setU32(e + 12, b.u32(e + 12) - 1)
            }, expect: { if case .fieldMismatch(.sectionBytes, _, _, _) = $0 { return true }; return false }),
            Case(name: "misaligned section offset", edit: { b in
                let e = b.sectionEntry(kind: 4)!
                b.setU32(e + 4, b.u32(e + 4) + 4)
            }, expect: { if case .misaligned(.sectionOffset, _, _, 16) = $0 { return true }; return false }),
            Case(name: "section past end", edit: { b in
                let e = b.sectionEntry(kind: 4)!
                b.setU32(e + 8, b.u32(e + 8) + 4096)
            }, expect: { if case .outOfBounds(.sectionOffset, _, _, _, _) = $0 { return true }; return false }),
            Case(name: "unknown section kind", edit: { b in b.setU32(b.sectionEntry(kind: 3)!, 99) },
                 expect: { if case .unknownSection(_, 99) = $0 { return true }; return false }),
            Case(name: "duplicate section", edit: { b in b.setU32(b.sectionEntry(kind: 3)!, 1) },
                 expect: { if case .duplicateSection(1) = $0 { return true }; if case .overlappingSections = $0 { return true }; return false }),
            Case(name: "section table overflow", edit: { $0.setU32(24, 0xFFFF_FFF0) },
                 expect: { if case .outOfBounds(.sectionTableOffset, _, _, _, _) = $0 { return true }; return false }),
            Case(name: "bad dtype", edit: { b in b.bytes[b.tensorRecord(conv1)] = 9 },
                 expect: { $0 == .invalidField(field: .tensorDType, index: conv1, value: 9) }),
            Case(name: "rank too large", edit: { b in b.bytes[b.tensorRecord(conv1) + 1] = 5 },
                 expect: { $0 == .invalidField(field: .tensorRank, index: conv1, value: 5) }),
            Case(name: "shape product overflow", edit: { b in
                let r = b.tensorRecord(conv1)
                for i in 0..<3 { b.setU32(r + 4 + 4 * i, 0xFFFF_FFFF) }
            }, expect: { $0 == .shapeOverflow(tensor: conv1) }),
            Case(name: "zero dimension", edit: { b in b.setU32(b.tensorRecord(conv1) + 4, 0) },
                 expect: { $0 == .invalidField(field: .tensorDims, index: conv1, value: 0) }),
            Case(name: "data bytes disagree with shape", edit: { b in
                let r = b.tensorRecord(conv1)
                b.setU32(r + 24, b.u32(r + 24) + 4)
            }, expect: { if case .fieldMismatch(.tensorDataBytes, conv1, _, _) = $0 { return true }; return false }),
            Case(name: "misaligned tensor offset", edit: { b in
                let r = b.tensorRecord(fcWeight)
                b.setU32(r + 20, b.u32(r + 20) + 4)
            }, expect: { if case .misaligned(.tensorDataOffset, fcWeight, _, 16) = $0 { return true }; return false }),
            Case(name: "constant offset past end", edit: { b in
                b.setU32(b.tensorRecord(fcWeight) + 20, UInt32(b.bytes.count))
            }, expect: { if case .outOfBounds(.tensorDataOffset, fcWeight, _, _, _) = $0 { return true }; return false }),
            Case(name: "constant offset wraps", edit: { b in
                b.setU32(b.tensorRecord(fcWeight) + 20, 0xFFFF_FFF0)
            }, expect: { if case .outOfBounds(.tensorDataOffset, fcWeight, _, _, _) = $0 { return true }; return false }),
            Case(name: "arena offset past plan", edit: { b in
                b.setU32(b.tensorRecord(conv1) + 20, b.u32(28))
            }, expect: { if case .outOfBounds(.tensorDataOffset, conv1, _, _, _) = $0 { return true }; return false }),
            Case(name: "unknown opcode", edit: { b in b.bytes[b.opRecord(0)] = 200 },
                 expect: { $0 == .unknownOpcode(op: 0, value: 200) }),
            Case(name: "unknown activation", edit: { b in b.bytes[b.opRecord(0) + 1] = 7 },
                 expect: { $0 == .invalidField(field: .opActivation, index: 0, value: 7) }),
            Case(name: "input index past tensors", edit: { b in b.setU32(b.opRecord(0) + 4, 5000) },
                 expect: { if case .countOverflow(.opInput, 0, 5000, _) = $0 { return true }; return false }),
            Case(name: "output is a constant", edit: { b in b.setU32(b.opRecord(0) + 28, UInt32(fcWeight)) },
                 expect: { $0 == .storageMismatch(op: 0, slot: -1, tensor: fcWeight) }),
            Case(name: "stride zero", edit: { b in b.setU32(b.opRecord(0) + 32, 0) },
                 expect: { $0 == .invalidField(field: .opParam, index: 0, value: 0) }),
            Case(name: "padding as large as the kernel", edit: { b in b.setU32(b.opRecord(0) + 40, 3) },
                 expect: { $0 == .invalidField(field: .opParam, index: 0, value: 3) }),
            Case(name: "pool kernel huge", edit: { b in b.setU32(b.opRecord(4) + 32, 0x7FFF_FFFF) },
                 expect: { $0 == .invalidField(field: .opParam, index: 4, value: 0x7FFF_FFFF) }),
            Case(name: "wrong output shape", edit: { b in b.setU32(b.tensorRecord(conv1) + 4, 7) },
                 expect: { b in
                     if case .shapeMismatch(0, -1, 8, 7) = b { return true }
                     if case .fieldMismatch(.tensorDataBytes, _, _, _) = b { return true }
                     return false
                 }),
            Case(name: "read before write", edit: { b in
                // Swap the first two ops: the pool then reads conv1 before it is written.
                let a = b.opRecord(0), c = b.opRecord(1)
                let first = Array(b.bytes[a..<(a + 64)])
                b.bytes.replaceSubrange(a..<(a + 64), with: b.bytes[c..<(c + 64)])
                b.bytes.replaceSubrange(c..<(c + 64), with: first)
            }, expect: { if case .readBeforeWrite(0, _) = $0 { return true }; return false }),
            Case(name: "output overwrites a live input", edit: { b in
                // conv1's output placed on top of the graph input it reads.
                let inputAt = Int(b.u32(b.tensorRecord(input) + 20))
                let bytes = Int(b.u32(b.tensorRecord(conv1) + 24))
                let at = min(inputAt, (Int(b.u32(28)) - bytes) & ~15)
                b.setU32(b.tensorRecord(conv1) + 20, UInt32(at))
            }, expect: { if case .arenaOverlap(0, _) = $0 { return true }; return false }),
            Case(name: "tensor written twice", edit: { b in b.setU32(b.opRecord(1) + 28, UInt32(conv1)) },
                 expect: { b in
                     if case .writtenTwice(1, _) = b { return true }
                     if case .shapeMismatch(1, -1, _, _) = b { return true }
                     return false
                 }),
            Case(name: "no outputs", edit: { b in
                let io = b.section(kind: 3)
                b.setU32(io + 16, 0)  // the output record becomes a second input
                b.setU32(io + 24, 0)
            }, expect: { b in
                if case .fieldMismatch(.ioRole, _, _, _) = b { return true }
                if case .invalidField(.ioNormalization, _, _) = b { return true }
                return false
            }),
            Case(name: "input std zero", edit: { b in b.setU32(b.section(kind: 3) + 12, 0) },
                 expect: { if case .badNormalization(0, _, _, _) = $0 { return true }; return false }),
            Case(name: "input std NaN", edit: { b in b.setU32(b.section(kind: 3) + 12, 0x7FC0_0000) },
                 expect: { if case .badNormalization(0, _, _, _) = $0 { return true }; return false }),
            Case(name: "input std 1e-45 (subnormal)", edit: { b in b.setU32(b.section(kind: 3) + 12, 1) },
                 expect: { if case .badNormalization(0, _, _, _) = $0 { return $0.message.contains("1.40e-45") }; return false }),
            Case(name: "input std 1e-38 (subnormal)", edit: { b in b.setU32(b.section(kind: 3) + 12, Float(1e-38).bitPattern) },
                 expect: { if case .badNormalization(0, _, _, _) = $0 { return true }; return false }),
            Case(name: "input std 1e-7 (normal, below 2^-20)", edit: { b in
                b.setU32(b.section(kind: 3) + 12, Float(1e-7).bitPattern)
            }, expect: { if case .badNormalization(0, _, _, _) = $0 { return true }; return false }),
            Case(name: "input mean 3e38", edit: { b in b.setU32(b.section(kind: 3) + 8, Float(3e38).bitPattern) },
                 expect: { if case .badNormalization(0, _, _, let bound) = $0 { return bound > 1e38 }; return false }),
            Case(name: "input mean 1e33, std 1e-5: conv1 overflows", edit: { b in
                b.setU32(b.section(kind: 3) + 8, Float(1e33).bitPattern)
                b.setU32(b.section(kind: 3) + 12, Float(1e-5).bitPattern)
            }, expect: { if case .valueOverflow(0, _) = $0 { return true }; return false }),
            Case(name: "f32 weight 3e38", edit: { b in
                b.setU32(Int(b.u32(b.tensorRecord(conv1Weight) + 20)) + 4 * 7, Float(3e38).bitPattern)
            }, expect: { if case .valueOverflow(0, _) = $0 { return $0.message.contains("op #0") }; return false }),
            Case(name: "f32 bias -3e38", edit: { b in
                b.setU32(Int(b.u32(b.tensorRecord(fcBias) + 20)) + 4, Float(-3e38).bitPattern)
            }, expect: { if case .valueOverflow(7, _) = $0 { return true }; return false }),
            Case(name: "constant data overlaps another tensor's", edit: { b in
                b.setU32(b.tensorRecord(fcBias) + 20, b.u32(b.tensorRecord(fcWeight) + 20))
            }, expect: { $0 == .overlappingData(field: .tensorDataOffset, first: fcWeight, second: fcBias) }),
            Case(name: "one constant feeds two ops", edit: { b in
                b.setU32(b.opRecord(9) + 4 + 8, UInt32(fcBias))  // fc2's absent bias slot → fc1's bias
            }, expect: { $0 == .sharedConstant(op: 9, slot: 2, tensor: fcBias, firstOp: 7) }),
            Case(name: "q8 quantization tables overlap", q8: true, edit: { b in
                b.setU32(b.tensorRecord(3) + 36, b.u32(b.tensorRecord(1) + 36))
            }, expect: { $0 == .overlappingData(field: .quantOffset, first: 1, second: 3) }),
            Case(name: "name outside strings", edit: { b in b.setU32(b.tensorRecord(conv1) + 44, 1 << 20) },
                 expect: { if case .outOfBounds(.tensorName, conv1, _, _, _) = $0 { return true }; return false }),
            Case(name: "f32 weight NaN", edit: { b in
                b.setU32(Int(b.u32(b.tensorRecord(fcWeight) + 20)) + 4 * 5, 0x7FC0_0000)
            }, expect: { $0 == .nonFinite(tensor: fcWeight, element: 5, bits: 0x7FC0_0000) }),
            Case(name: "f32 weight +inf", edit: { b in
                b.setU32(Int(b.u32(b.tensorRecord(conv1Weight) + 20)), 0x7F80_0000)
            }, expect: { $0 == .nonFinite(tensor: conv1Weight, element: 0, bits: 0x7F80_0000) }),
            Case(name: "f32 weight -inf, last element", edit: { b in
                let r = b.tensorRecord(fcWeight)
                b.setU32(Int(b.u32(r + 20)) + Int(b.u32(r + 24)) - 4, 0xFF80_0000)
            }, expect: { b in
                guard case .nonFinite(fcWeight, _, 0xFF80_0000) = b else { return false }
                return b.message.contains("-inf")
            }),
            Case(name: "q8 zero scale", q8: true, edit: { b in
                let r = b.tensorRecord(1)  // the Quantize output
                b.setU32(Int(b.u32(r + 36)), 0)
            }, expect: { if case .invalidField(.quantScale, 1, _) = $0 { return true }; return false }),
            Case(name: "q8 infinite scale", q8: true, edit: { b in
                b.setU32(Int(b.u32(b.tensorRecord(1) + 36)), 0x7F80_0000)
            }, expect: { if case .invalidField(.quantScale, 1, _) = $0 { return true }; return false }),
            Case(name: "q8 zero point out of range", q8: true, edit: { b in
                b.setU32(Int(b.u32(b.tensorRecord(1) + 36)) + 4, 300)
            }, expect: { $0 == .invalidField(field: .quantZeroPoint, index: 1, value: 300) }),
            Case(name: "q8 quant record past end", q8: true, edit: { b in
                b.setU32(b.tensorRecord(1) + 36, UInt32(b.bytes.count - 4))
            }, expect: { if case .outOfBounds(.quantOffset, 1, _, _, _) = $0 { return true }; return false }),
            Case(name: "q8 per-channel count wrong", q8: true, edit: { b in
                // The first conv's weights: per-channel on axis 3.
                let r = b.tensorRecord(3)
                b.setU32(r + 28, b.u32(r + 28) - 1)
            }, expect: { if case .fieldMismatch(.quantCount, 3, _, _) = $0 { return true }; return false }),
            Case(name: "q8 multiplier below 2^30", q8: true, edit: { b in
                let op = b.opRecord(1)  // conv1 in int8
                let multipliers = Int(b.u32(op + 4 + 12))
                b.setU32(Int(b.u32(b.tensorRecord(multipliers) + 20)), 12345)
            }, expect: { $0 == .invalidField(field: .opParam, index: 1, value: 12345) }),
            Case(name: "q8 shift out of range", q8: true, edit: { b in
                let op = b.opRecord(1)
                let shifts = Int(b.u32(op + 4 + 16))
                b.setU32(Int(b.u32(b.tensorRecord(shifts) + 20)), 40)
            }, expect: { $0 == .invalidField(field: .opParam, index: 1, value: 40) }),
        ]
    }

    func testNamedCorruptionsEachGiveTheirError() {
        XCTAssertNil(loadError(Self.f32Blob), "the f32 reference blob loads")
        XCTAssertNil(loadError(Self.q8Blob), "the q8 reference blob loads")
        for c in cases() {
            var b = BlobBytes(c.q8 ? Self.q8Blob : Self.f32Blob)
            c.edit(&b)
            if c.fixCRC { b.fixCRC() }
            guard let error = loadError(b.bytes) else {
                XCTFail("\(c.name): the corrupted blob loaded")
                continue
            }
            XCTAssertTrue(c.expect(error), "\(c.name): unexpected error \(error) — \(error.message)")
            XCTAssertFalse(error.message.isEmpty)
        }
    }

    func testEveryTruncationIsRejected() {
        for blob in [Self.f32Blob, Self.q8Blob] {
            for length in 0..<blob.count {
                let error = loadError(Array(blob[0..<length]))
                if length < 64 {
                    XCTAssertEqual(error, .truncated(needed: 64, available: length))
                } else {
                    XCTAssertEqual(error, .fileSizeMismatch(declared: blob.count, actual: length), "length \(length)")
                }
            }
        }
    }

    /// Every single-bit flip of every structural byte: with the CRC left alone
    /// the CRC (or an earlier header check) catches it; with the CRC repaired,
    /// the blob is rejected with a typed error or, if it still loads, it runs
    /// without touching memory outside the arena and the blob.
    func testEveryStructuralByteFlip() {
        for blob in [Self.f32Blob, Self.q8Blob] {
            let ranges = BlobBytes(blob).structuralRanges
            var rejected = 0, accepted = 0
            for range in ranges {
                for at in range where at < blob.count {
                    for bit in [0, 7] {
                        var b = BlobBytes(blob)
                        b.bytes[at] ^= UInt8(1 << bit)
                        XCTAssertNotNil(loadError(b.bytes), "flip at \(at) bit \(bit) without CRC repair loaded")
                        b.fixCRC()
                        if loadAndInvoke(b.bytes) == nil { accepted += 1 } else { rejected += 1 }
                    }
                }
            }
            XCTAssertGreaterThan(rejected, accepted, "most structural flips must be caught")
        }
    }

    func testSeededRandomMutationsNeverCrash() {
        var rng = SplitMix64(seed: 99)
        for blob in [Self.f32Blob, Self.q8Blob] {
            for _ in 0..<1000 {
                var b = BlobBytes(blob)
                let edits = 1 + Int(rng.next() % 4)
                for _ in 0..<edits {
                    let at = Int(rng.next() % UInt64(b.bytes.count))
                    switch rng.next() % 3 {
                    case 0: b.bytes[at] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
                    case 1: b.bytes[at] = [0x00, 0xFF, 0x7F, 0x80][Int(rng.next() % 4)]
                    default:
                        let w = at & ~3
                        if w + 4 <= b.bytes.count { b.setU32(w, [0, 1, 0xFFFF_FFFF, 0x8000_0000, 16][Int(rng.next() % 5)]) }
                    }
                }
                b.fixCRC()
                loadAndInvoke(b.bytes)
            }
        }
    }

    func testArenaTooSmallFailsBeforeWork() throws {
        let blob = Self.f32Blob
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: blob.count, alignment: 16)
        defer { copy.deallocate() }
        copy.copyBytes(from: blob)
        let model = try Model(bytes: UnsafeRawBufferPointer(copy))
        let small = UnsafeMutableRawBufferPointer.allocate(byteCount: model.arenaBytes - 16, alignment: 16)
        defer { small.deallocate() }
        XCTAssertThrowsError(try Interpreter(model: model, arena: small)) { error in
            XCTAssertEqual(error as? SprigError, .arenaTooSmall(need: model.arenaBytes, have: model.arenaBytes - 16))
        }
        let big = UnsafeMutableRawBufferPointer.allocate(byteCount: model.arenaBytes + 16, alignment: 16)
        defer { big.deallocate() }
        let shifted = UnsafeMutableRawBufferPointer(rebasing: big[4...])
        XCTAssertThrowsError(try Interpreter(model: model, arena: shifted)) { error in
            guard case .arenaMisaligned = error as? SprigError else { return XCTFail("\(error)") }
        }
    }

    func testMisalignedBlobBufferIsRejected() {
        let blob = Self.f32Blob
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: blob.count + 16, alignment: 16)
        defer { copy.deallocate() }
        let shifted = UnsafeMutableRawBufferPointer(rebasing: copy[8..<(8 + blob.count)])
        shifted.copyBytes(from: blob)
        XCTAssertThrowsError(try Model(bytes: UnsafeRawBufferPointer(shifted))) { error in
            guard case .bufferMisaligned = error as? SprigError else { return XCTFail("\(error)") }
        }
    }
}
