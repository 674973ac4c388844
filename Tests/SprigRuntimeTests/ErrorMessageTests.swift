import XCTest
@testable import SprigRuntime

/// Every error case's message, word for word: the messages are written by
/// `MessageWriter` (no `String` on the device), and these goldens hold them
/// to the sentences the host tools and the C API have always printed.
final class ErrorMessageTests: XCTestCase {
    static let cases: [(SprigError, String)] = [
        (.truncated(needed: 64, available: 0),
         "truncated: needs 64 bytes, has 0"),
        (.badMagic(found: 0x5850_5253),
         "bad magic 0x58505253: expected 0x47525053 (\"SPRG\")"),
        (.unsupportedVersion(found: 2, supported: 1),
         "unsupported version 2: this runtime reads version 1"),
        (.fileSizeMismatch(declared: 100, actual: -7),
         "file_bytes says 100 bytes but the file has -7"),
        (.crcMismatch(stored: 0, computed: 0xFFFF_FFFF),
         "CRC mismatch: stored 0x00000000, computed 0xffffffff (the file is corrupted)"),
        (.bufferMisaligned(address: 0x2000_0004),
         "blob buffer at 0x0000000020000004 is not 16-byte aligned"),
        (.arenaMisaligned(address: -1),
         "arena at 0xffffffffffffffff is not 16-byte aligned"),
        (.misaligned(field: .tensorDataOffset, index: 3, offset: 17, alignment: 16),
         "tensor.data_offset of #3 is 17, not a multiple of 16"),
        (.outOfBounds(field: .sectionOffset, index: 0, offset: 4096, bytes: 12, limit: 4100),
         "section.offset of #0: bytes [4096, 4096 + 12) pass the limit 4100"),
        (.countOverflow(field: .sectionRecordCount, index: 1, value: Int(Int32.max), maximum: 65535),
         "section.count of #1 is 2147483647, more than the maximum 65535"),
        (.shapeOverflow(tensor: 9),
         "tensor #9: the shape's byte size overflows"),
        (.nonFinite(tensor: 4, element: 12, bits: 0x7FC0_0000),
         "tensor #4 element 12 is NaN (0x7fc00000): constant f32 data must be finite"),
        (.nonFinite(tensor: 4, element: 0, bits: 0xFF80_0000),
         "tensor #4 element 0 is -inf (0xff800000): constant f32 data must be finite"),
        (.nonFinite(tensor: 4, element: 1, bits: 0x7F80_0000),
         "tensor #4 element 1 is +inf (0x7f800000): constant f32 data must be finite"),
        (.invalidField(field: .opActivation, index: 2, value: 9),
         "op.activation of #2 has invalid value 9"),
        (.fieldMismatch(field: .headerBytes, index: 0, expected: 64, found: Int(Int32.min)),
         "header_bytes of #0 is -2147483648, expected 64"),
        (.missingSection(kind: 2),
         "required section OPS is missing"),
        (.missingSection(kind: 99),
         "required section kind 99 is missing"),
        (.duplicateSection(kind: 6),
         "section METADATA appears twice"),
        (.duplicateSection(kind: 1),
         "section TENSORS appears twice"),
        (.unknownSection(index: 5, kind: 77),
         "section #5 has unknown kind 77"),
        (.overlappingSections(first: 0, second: 3),
         "sections #0 and #3 overlap"),
        (.unknownOpcode(op: 1, value: 200),
         "op #1 has unknown opcode 200"),
        (.dtypeMismatch(op: 2, slot: 1, expected: .i32, found: 1),
         "op #2 input 1: dtype 1, expected i32"),
        (.dtypeMismatch(op: 2, slot: -1, expected: .i8, found: 3),
         "op #2 output: dtype 3, expected i8"),
        (.shapeMismatch(op: 0, slot: 0, expected: 784, found: 785),
         "op #0 input 0: shape has 785, expected 784"),
        (.storageMismatch(op: 3, slot: 1, tensor: 8),
         "op #3 input 1: tensor #8 has the wrong storage (constant vs arena)"),
        (.badQuantization(op: 3, slot: -1, tensor: 8),
         "op #3 output: tensor #8 has missing or unsuitable quantization"),
        (.readBeforeWrite(op: 4, tensor: 2),
         "op #4 reads tensor #2 before anything writes it"),
        (.writtenTwice(op: 4, tensor: 2),
         "op #4 writes tensor #2, which is already written"),
        (.arenaOverlap(op: 5, tensor: 1),
         "op #5 writes arena bytes that tensor #1 still needs"),
        (.outputNeverWritten(tensor: 11),
         "graph output tensor #11 is never written"),
        (.arenaTooSmall(need: 15680, have: 15664),
         "arena too small: the plan needs 15680 bytes, the arena has 15664"),
        (.argumentMismatch(expected: 784, found: 0),
         "argument mismatch: expected 784, found 0"),
        (.overlappingData(field: .quantOffset, first: 1, second: 2),
         "tensor #2: its quantization table overlaps bytes of tensor #1; every DATA byte must belong to one tensor"),
        (.overlappingData(field: .tensorDataOffset, first: 1, second: 2),
         "tensor #2: its constant data overlaps bytes of tensor #1; every DATA byte must belong to one tensor"),
        (.sharedConstant(op: 6, slot: 2, tensor: 7, firstOp: 1),
         "op #6 input 2: constant tensor #7 already feeds op #1; a constant may feed one op input only"),
        (.badNormalization(input: 0, mean: 0.5, std: 0, bound: 0),
         "graph input #0: normalisation std 0 must be a normal number of at least 2^-20 (9.54e-7)"),
        (.badNormalization(input: 0, mean: -1e30, std: 1e-6, bound: 3.4e38),
         "graph input #0: normalisation mean -1.00e30, std 1.00e-6 maps pixels to magnitudes up to 3.40e38, beyond the Float32 range"),
        (.valueOverflow(op: 3, bound: 1.234567e38),
         "op #3: its Float32 values can reach magnitude 1.23e38 for an input in the normalised pixel range, beyond half of the Float32 range (1.70e38); outputs could be infinite or NaN"),
        (.valueOverflow(op: 3, bound: -0.000123),
         "op #3: its Float32 values can reach magnitude -1.23e-4 for an input in the normalised pixel range, beyond half of the Float32 range (1.70e38); outputs could be infinite or NaN"),
        (.valueOverflow(op: 3, bound: 9.996),
         "op #3: its Float32 values can reach magnitude 1.00e1 for an input in the normalised pixel range, beyond half of the Float32 range (1.70e38); outputs could be infinite or NaN"),
        (.valueOverflow(op: 3, bound: .infinity),
         "op #3: its Float32 values can reach magnitude inf for an input in the normalised pixel range, beyond half of the Float32 range (1.70e38); outputs could be infinite or NaN"),
        (.valueOverflow(op: 3, bound: .nan),
         "op #3: its Float32 values can reach magnitude nan for an input in the normalised pixel range, beyond half of the Float32 range (1.70e38); outputs could be infinite or NaN"),
        (.f32NotBuilt(op: 0, opcode: .conv2d),
         "op #0 (Conv2D) computes in f32, but this runtime was built int8-only (SPRIG_INT8_ONLY): load an int8 blob, or use a runtime with the f32 kernels"),
        (.fineTune(.noClassifierHead(op: -1)),
         "no classifier head: the graph output is not computed by a Dense op followed only by Softmax/Dequantize (the walk stopped at op #-1)"),
        (.fineTune(.ioCount(inputs: 2, outputs: 1)),
         "fine-tuning needs one input and one output; the graph has 2 and 1"),
        (.fineTune(.opAfterHead(op: 7)),
         "op #7 runs after the classifier but is not part of it"),
        (.fineTune(.noPlan),
         "finetune plan: the blob has no fine-tuning plan (finetune_arena_bytes is 0)"),
        (.fineTune(.tooManyClasses(requested: 11, planned: 10)),
         "finetune_max_classes: 11 classes, the plan holds 10"),
        (.fineTune(.tooManyShots(classIndex: 3, requested: 21, planned: 20)),
         "finetune_max_shots: class 3 has 21 shots, the plan holds 20 per class"),
        (.fineTune(.planTooSmall(need: 300_000, planned: 294_272)),
         "finetune_arena_bytes: the method needs 300000 bytes, the plan reserves 294272"),
        (.fineTune(.noShots),
         "no shots: fine-tuning needs at least one labelled image per class"),
        (.fineTune(.shotSizeMismatch(expected: 784, found: 1000)),
         "shots: 1000 bytes is not a whole number of 784-pixel images"),
        (.fineTune(.labelCountMismatch(shots: 25, labels: 24)),
         "labels: 24 labels for 25 shots"),
        (.fineTune(.labelOutOfRange(shot: 4, label: 5, classes: 5)),
         "label[4]: is 5, the classes are 0..<5"),
        (.fineTune(.classWithoutShots(classIndex: 2)),
         "labels: class 2 has no shot"),
        (.fineTune(.methodNeedsFloat32(method: .last)),
         "method last trains the backbone and needs a Float32 blob; this one is int8 (its backbone stays integer-only: use imprint or head)"),
        (.fineTune(.tooManyLayers(requested: 3, planned: 0)),
         "finetune_max_layers: last with 3 layers, the plan holds 0 (the blob was not planned for last)"),
        (.fineTune(.tooManyLayers(requested: 3, planned: 2)),
         "finetune_max_layers: last with 3 layers, the plan holds 2"),
        (.fineTune(.methodNeedsFloat32(method: .reinit)),
         "method reinit trains the backbone and needs a Float32 blob; this one is int8 (its backbone stays integer-only: use imprint or head)"),
        (.fineTune(.reinitNotPlanned(layers: 4, planned: 1)),
         "finetune_max_layers: reinit trains all 4 layers of the backbone, the plan holds 1 (the blob was not planned for reinit)"),
        (.fineTune(.notEnoughLayers(requested: 5, available: 4)),
         "layers: last with 5 layers, the backbone has 4 (Dense, Conv2D, DepthwiseConv2D)"),
        (.fineTune(.noBiasToTrain),
         "method bias: no layer of the backbone has a bias"),
        (.fineTune(.cannotBackprop(op: 2)),
         "op #2 lies between the trained layers and the features and has no backward (or does not reach them)"),
        (.fineTune(.invalidOption(option: .learningRate, value: -1)),
         "learning rate: -1 is out of range"),
        (.fineTune(.augmentationNeedsImage(rank: 1)),
         "augmentation shifts need an image input [H][W][C]; the input has rank 1"),
        (.fineTune(.classNamesMismatch(names: 4, classes: 5)),
         "class names: 4 names for 5 classes"),
        (.fineTune(.notTuned),
         "no tuned model: fine-tune first"),
        (.fineTune(.bufferTooSmall(need: 29648, have: 100)),
         "output buffer: the tuned blob needs 29648 bytes, the buffer has 100"),
        (.fineTune(.formatLimit(limit: .fileBytes, value: 2_000_000_000, maximum: 1_000_000_000)),
         "tuned blob: file_bytes would be 2000000000, more than the format's 1000000000"),
    ]

    func testEveryMessage() {
        for (error, expected) in Self.cases {
            XCTAssertEqual(error.message, expected, "\(error)")
        }
    }

    /// Like snprintf: the bytes that fit, and the full length.
    func testWriterTruncatesAndCounts() {
        var bytes = [UInt8](repeating: 0xAA, count: 10)
        bytes.withUnsafeMutableBufferPointer { buffer in
            var w = MessageWriter(into: buffer.baseAddress, capacity: 8)
            w.say("needs % bytes, has %", 64, 0)
            XCTAssertEqual(w.count, 21)
        }
        XCTAssertEqual(String(decoding: bytes[0..<8], as: UTF8.self), "needs 64")
        XCTAssertEqual(bytes[8], 0xAA, "nothing past the capacity")
        var measure = MessageWriter(into: nil, capacity: 100)
        SprigError.arenaTooSmall(need: 1, have: 0).write(to: &measure)
        XCTAssertEqual(measure.count, SprigError.arenaTooSmall(need: 1, have: 0).message.utf8.count)
    }

    /// Decimal and hexadecimal against the standard library's, over edges and a sweep.
    func testWriterNumbers() {
        var values = [0, 1, -1, 9, 10, 99, 100, -10, Int.max, Int.min, Int(Int32.max), Int(Int32.min)]
        values += (0..<200).map { ($0 - 100) * 37 }
        for v in values {
            XCTAssertEqual(messageString { $0.decimal(v) }, "\(v)")
        }
        XCTAssertEqual(messageString { $0.hex(0x2A, digits: 8) }, "0000002a")
        XCTAssertEqual(messageString { $0.hex(UInt64.max, digits: 16) }, "ffffffffffffffff")
        XCTAssertEqual(messageString { $0.say("%.%%e%", 1, 2, 3, -4) }, "1.23e-4")
    }
}
