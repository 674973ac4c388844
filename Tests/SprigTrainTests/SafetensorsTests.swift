// safetensors: bit-exact round trips, deterministic bytes checked by hand, a table of corrupt
// files each expecting its own error; and AtomicFile's never-a-partial-target guarantee.

import Foundation
import XCTest
@testable import SprigTrain

private func makeTemporaryDirectory(_ prefix: String) throws -> String {
    let dir = NSTemporaryDirectory() + prefix + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// A file made from a hand-written header and data: 8-byte LE length, header, data.
private func assemble(_ header: String, _ data: [UInt8] = []) -> [UInt8] {
    let h = Array(header.utf8)
    let n = UInt64(h.count)
    return (0..<8).map { UInt8((n >> (8 * UInt64($0))) & 0xFF) } + h + data
}

final class SafetensorsTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws { directory = try makeTemporaryDirectory("sprig-st-") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    private static let specialFloats: [Float] = [
        0, -0.0, 1, -1.5, .infinity, -.infinity, .leastNonzeroMagnitude, -.greatestFiniteMagnitude,
        Float(bitPattern: 0x7FC0_0001),  // quiet NaN with a payload
        Float(bitPattern: 0x7F80_0001),  // signalling NaN
        Float(bitPattern: 0xFFC1_2345),  // negative NaN with a payload
    ]

    private func sampleFile() throws -> SafetensorsFile {
        SafetensorsFile(
            tensors: [
                "conv1.weight": try SafetensorsTensor(shape: [11], floats: SafetensorsTests.specialFloats),
                "fc.bias": try SafetensorsTensor(shape: [2, 3], floats: [0.1, 0.2, 0.3, -0.4, Float.leastNormalMagnitude / 4, 6e30]),
                "step": try SafetensorsTensor(shape: [], int64s: [Int64.min]),
                "counts": try SafetensorsTensor(shape: [3], int64s: [0, -1, Int64.max]),
                "mask": try SafetensorsTensor(shape: [2, 2], uint8s: [0, 1, 254, 255]),
                "empty": try SafetensorsTensor(shape: [0, 4], floats: []),
                "é \"quoted\"\n": try SafetensorsTensor(shape: [1], floats: [2]),
            ],
            metadata: ["architecture": "{\"kind\":\"cnn\",\"widths\":[32,64]}", "format": "pt", "ünïcode": "✓"])
    }

    func testRoundTripIsBitExact() throws {
        let file = try sampleFile()
        let p = directory + "/a.safetensors"
        try file.write(path: p)
        let back = try SafetensorsFile.read(path: p)
        XCTAssertEqual(back, file, "bytes, shapes, dtypes and metadata all equal")
        let floats = try back.floats("conv1.weight").values
        XCTAssertEqual(floats.map(\.bitPattern), SafetensorsTests.specialFloats.map(\.bitPattern),
                       "NaN payloads and -0.0 survive")
        XCTAssertEqual(try back.tensor("counts").int64s(), [0, -1, Int64.max])
        XCTAssertEqual(try back.tensor("step").int64s(), [Int64.min])
        XCTAssertEqual(try back.tensor("step").shape, [])
        XCTAssertEqual(try back.tensor("mask").uint8s(), [0, 1, 254, 255])
        XCTAssertEqual(try back.tensor("empty").shape, [0, 4])
    }

    func testBytesAreDeterministicAndHeaderIsPadded() throws {
        let a = try sampleFile().encoded()
        // Same content inserted in another order.
        var other = SafetensorsFile()
        for (name, t) in try sampleFile().tensors.sorted(by: { $0.key > $1.key }) { other.tensors[name] = t }
        for (k, v) in try sampleFile().metadata.reversed() { other.metadata[k] = v }
        XCTAssertEqual(try other.encoded(), a)
        let n = a[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(n % 8, 0, "header length is a multiple of 8")
        XCTAssertEqual(a[8 + n - 1], UInt8(ascii: " "), "padding is spaces (this header needs some)")
        XCTAssertEqual(try SafetensorsFile.decode(a), try sampleFile())
    }

    func testTinyFileByHand() throws {
        let file = SafetensorsFile(tensors: ["b": try SafetensorsTensor(shape: [3], uint8s: [7, 8, 9]),
                                             "a": try SafetensorsTensor(shape: [2], floats: [1, -2])],
                                   metadata: ["format": "pt"])
        let header = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
            + #""b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}"#
        let padded = header + String(repeating: " ", count: (8 - header.utf8.count % 8) % 8)
        // 1.0 = 0x3F800000, -2.0 = 0xC0000000, little-endian.
        let expected = assemble(padded, [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0, 7, 8, 9])
        XCTAssertEqual(try file.encoded(), expected)
    }

    func testReadsForeignLayoutWithWhitespaceAndUnsortedEntries() throws {
        // As another writer might lay it out: spaces, entries not in name order, data in another order.
        let header = #"{ "w": {"dtype": "I64", "shape": [1], "data_offsets": [4, 12]}, "#
            + #""v": {"shape": [1], "data_offsets": [0, 4], "dtype": "F32"}, "__metadata__": null }   "#
        let file = try SafetensorsFile.decode(assemble(header, [0, 0, 0x80, 0x3F, 5, 0, 0, 0, 0, 0, 0, 0]))
        XCTAssertEqual(try file.floats("v").values, [1])
        XCTAssertEqual(try file.tensor("w").int64s(), [5])
        XCTAssertEqual(file.metadata, [:])
    }

    // MARK: Corrupt files

    private struct Case {
        var name: String
        var bytes: [UInt8]
        var matches: (SafetensorsError) -> Bool
        /// Substrings the message must contain besides the file path.
        var mentions: [String]
    }

    func testCorruptFilesEachGetTheirOwnError() throws {
        let f32x2 = [UInt8](repeating: 0, count: 8)
        let good = try SafetensorsFile(tensors: ["w": try SafetensorsTensor(shape: [2], floats: [1, 2])]).encoded()
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        var badUTF8 = assemble(#"{"xx":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, [0])
        badUTF8[10] = 0xFF  // first byte of the name
        let cases: [Case] = [
            Case(name: "empty file", bytes: [], matches: { if case .missingHeaderLength(_, 0) = $0 { true } else { false } },
                 mentions: ["not a safetensors file", "fewer than the 8"]),
            Case(name: "5 bytes", bytes: [1, 0, 0, 0, 0], matches: { if case .missingHeaderLength = $0 { true } else { false } },
                 mentions: ["5 bytes"]),
            Case(name: "header length beyond file", bytes: [64, 0, 0, 0, 0, 0, 0, 0] + Array("{}".utf8),
                 matches: { if case .headerBeyondFile(_, 64, 10) = $0 { true } else { false } }, mentions: ["64", "truncated"]),
            Case(name: "header length absurd", bytes: [0, 0, 0, 0, 0, 1, 0, 0] + Array("{}".utf8),
                 matches: { if case .headerTooLarge = $0 { true } else { false } }, mentions: ["not a safetensors file", "more than"]),
            Case(name: "header not an object", bytes: assemble("[1,2]"),
                 matches: { if case .invalidJSON(_, 8, _) = $0 { true } else { false } }, mentions: ["starts with '{'", "is this a safetensors file"]),
            Case(name: "bad JSON", bytes: assemble(#"{"w": {"dtype": "F32",}"#),
                 matches: { if case .invalidJSON = $0 { true } else { false } }, mentions: ["not valid JSON", "byte"]),
            Case(name: "nesting bomb", bytes: assemble(#"{"__metadata__":"# + deep + "}"),
                 matches: { if case .invalidJSON = $0 { true } else { false } }, mentions: ["nesting"]),
            Case(name: "invalid UTF-8 name", bytes: badUTF8,
                 matches: { if case .invalidJSON = $0 { true } else { false } }, mentions: ["UTF-8"]),
            Case(name: "duplicate name", bytes: assemble(#"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"#
                                                        + #""w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, [1, 2]),
                 matches: { if case .duplicateName(_, "w") = $0 { true } else { false } }, mentions: ["'w'", "more than once"]),
            Case(name: "unknown dtype", bytes: assemble(#"{"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}"#, f32x2),
                 matches: { if case .unknownDType(_, "w", "F33") = $0 { true } else { false } }, mentions: ["'w'", "dtype", "F33"]),
            Case(name: "shape product overflow",
                 bytes: assemble(#"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, f32x2),
                 matches: { if case .shapeOverflow(_, "w", _) = $0 { true } else { false } }, mentions: ["'w'", "overflows"]),
            Case(name: "negative dimension", bytes: assemble(#"{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, f32x2),
                 matches: { if case .invalidTensorField(_, "w", "shape", _) = $0 { true } else { false } }, mentions: ["shape", "-2"]),
            Case(name: "fractional dimension", bytes: assemble(#"{"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, f32x2),
                 matches: { if case .invalidTensorField(_, "w", "shape", _) = $0 { true } else { false } }, mentions: ["2.0"]),
            Case(name: "shape does not match offsets", bytes: assemble(#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, f32x2),
                 matches: { if case .sizeMismatch(_, "w", [3], "F32", 12, 8) = $0 { true } else { false } },
                 mentions: ["'w'", "data_offsets", "12"]),
            Case(name: "offsets beyond the data (truncated file)", bytes: Array(good.dropLast(1)),
                 matches: { if case .offsetsOutOfRange(_, "w", 0, 8, 7) = $0 { true } else { false } },
                 mentions: ["'w'", "[0, 8]", "7-byte"]),
            Case(name: "offsets reversed", bytes: assemble(#"{"w":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}"#, [0, 0, 0, 0]),
                 matches: { if case .invalidTensorField(_, "w", "data_offsets", _) = $0 { true } else { false } },
                 mentions: ["begin 4 is after end 0"]),
            Case(name: "offsets with three numbers", bytes: assemble(#"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}"#, [0]),
                 matches: { if case .invalidTensorField(_, "w", "data_offsets", _) = $0 { true } else { false } },
                 mentions: ["[begin, end]"]),
            Case(name: "overlapping tensors", bytes: assemble(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
                                                             + #""b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                                                             [UInt8](repeating: 0, count: 12)),
                 matches: { if case .offsetsOverlap(_, "b", "a") = $0 { true } else { false } }, mentions: ["'b'", "'a'", "overlap"]),
            Case(name: "gap between tensors", bytes: assemble(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
                                                              + #""b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
                                                              [UInt8](repeating: 0, count: 12)),
                 matches: { if case .dataNotCovered(_, 4, 8) = $0 { true } else { false } }, mentions: ["4..<8"]),
            Case(name: "trailing bytes after the last tensor", bytes: good + [0, 0, 0],
                 matches: { if case .dataNotCovered(_, 8, 11) = $0 { true } else { false } }, mentions: ["8..<11", "no tensor"]),
            Case(name: "missing data_offsets", bytes: assemble(#"{"w":{"dtype":"F32","shape":[2]}}"#, f32x2),
                 matches: { if case .invalidTensorField(_, "w", "data_offsets", "missing") = $0 { true } else { false } },
                 mentions: ["data_offsets", "missing"]),
            Case(name: "unknown field", bytes: assemble(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}"#, f32x2),
                 matches: { if case .invalidTensorField(_, "w", "x", _) = $0 { true } else { false } }, mentions: ["unknown field"]),
            Case(name: "entry not an object", bytes: assemble(#"{"w":[1,2]}"#),
                 matches: { if case .invalidTensorField(_, "w", _, _) = $0 { true } else { false } }, mentions: ["found array"]),
            Case(name: "dtype not a string", bytes: assemble(#"{"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}"#, [0, 0, 0, 0]),
                 matches: { if case .invalidTensorField(_, "w", "dtype", _) = $0 { true } else { false } }, mentions: ["found number"]),
            Case(name: "metadata value not a string", bytes: assemble(#"{"__metadata__":{"epochs":3}}"#),
                 matches: { if case .invalidMetadata(_, "epochs", _) = $0 { true } else { false } }, mentions: ["'epochs'", "string"]),
            Case(name: "metadata twice", bytes: assemble(#"{"__metadata__":{},"__metadata__":{}}"#),
                 matches: { if case .duplicateName(_, "__metadata__") = $0 { true } else { false } }, mentions: ["__metadata__"]),
        ]
        for c in cases {
            let p = directory + "/" + c.name.replacingOccurrences(of: " ", with: "_") + ".safetensors"
            try writeFileAtomically(c.bytes, to: p)
            XCTAssertThrowsError(try SafetensorsFile.read(path: p), c.name) { error in
                guard let e = error as? SafetensorsError else { return XCTFail("\(c.name): \(error)") }
                XCTAssertTrue(c.matches(e), "\(c.name): unexpected error \(e)")
                let message = "\(e)"
                XCTAssertTrue(message.contains(p), "\(c.name): message lacks the path: \(message)")
                for m in c.mentions {
                    XCTAssertTrue(message.contains(m), "\(c.name): message lacks '\(m)': \(message)")
                }
            }
        }
    }

    func testAPIMisuseErrors() throws {
        XCTAssertThrowsError(try SafetensorsTensor(shape: [2, 2], floats: [1, 2, 3])) { error in
            guard case SafetensorsError.valueCountMismatch(_, [2, 2], "F32", 16, 12)? = error as? SafetensorsError else {
                return XCTFail("\(error)")
            }
        }
        XCTAssertThrowsError(try SafetensorsTensor(shape: [-1], uint8s: []))
        let file = SafetensorsFile(tensors: ["n": try SafetensorsTensor(shape: [1], int64s: [3])])
        XCTAssertThrowsError(try file.floats("n")) { error in
            XCTAssertEqual(error as? SafetensorsError, .wrongDType(path: "<checkpoint>", tensor: "n", found: "I64", expected: "F32"))
        }
        XCTAssertThrowsError(try file.tensor("missing")) { error in
            guard case SafetensorsError.missingTensor(_, "missing")? = error as? SafetensorsError else { return XCTFail("\(error)") }
        }
        let reserved = SafetensorsFile(tensors: ["__metadata__": try SafetensorsTensor(shape: [1], uint8s: [1])])
        XCTAssertThrowsError(try reserved.encoded()) { error in
            XCTAssertEqual(error as? SafetensorsError, .invalidName(name: "__metadata__"))
        }
    }

    func testWriteFailureIsAnIOErrorAndKeepsNothing() throws {
        let blocker = directory + "/plain-file"
        try writeFileAtomically([1], to: blocker)
        let p = blocker + "/model.safetensors"  // parent is a regular file
        XCTAssertThrowsError(try sampleFile().write(path: p)) { error in
            guard case SafetensorsError.io(let io)? = error as? SafetensorsError else { return XCTFail("\(error)") }
            XCTAssertEqual(io.code, ENOTDIR)
            XCTAssertTrue("\(error)".contains(p) && "\(error)".contains("ENOTDIR"), "\(error)")
        }
        XCTAssertThrowsError(try SafetensorsFile.read(path: directory + "/absent.safetensors")) { error in
            guard case SafetensorsError.io(let io)? = error as? SafetensorsError else { return XCTFail("\(error)") }
            XCTAssertEqual(io.code, ENOENT)
        }
    }
}

final class AtomicFileTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws { directory = try makeTemporaryDirectory("sprig-atomic-") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    private func entries() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: directory).sorted() }

    func testWriteReplaceAndKeepPermissions() throws {
        let p = directory + "/f.bin"
        try writeFileAtomically(Array("old".utf8), to: p)
        XCTAssertEqual(try readFileBytes(atPath: p), Array("old".utf8))
        XCTAssertEqual(chmod(p, 0o600), 0)
        try writeFileAtomically(Data("new content".utf8), to: p)
        XCTAssertEqual(try readFileBytes(atPath: p), Array("new content".utf8))
        let mode = (try FileManager.default.attributesOfItem(atPath: p)[.posixPermissions] as? NSNumber)?.intValue
        XCTAssertEqual(mode, 0o600, "permissions of the replaced file are kept")
        try writeFileAtomically([], to: p)
        XCTAssertEqual(try readFileBytes(atPath: p), [])
        XCTAssertEqual(try entries(), ["f.bin"], "no temp files left behind")
    }

    func testInjectedFailuresLeaveTheOldFileIntact() throws {
        let p = directory + "/model.bin"
        let old = [UInt8](repeating: 0xAB, count: 1000)
        try writeFileAtomically(old, to: p)
        let faults: [(AtomicWriteFault, String)] = [(.write(ENOSPC), "ENOSPC"), (.fsync(EIO), "EIO"), (.rename(EROFS), "EROFS")]
        for (fault, name) in faults {
            XCTAssertThrowsError(try writeFileAtomically([UInt8](repeating: 1, count: 5000), to: p, fault: fault)) { error in
                guard let e = error as? FileIOError else { return XCTFail("\(error)") }
                XCTAssertEqual(e.path, p)
                XCTAssertEqual(e.codeName, name)
                XCTAssertTrue(e.description.contains(p) && e.description.contains(name), e.description)
            }
            XCTAssertEqual(try readFileBytes(atPath: p), old, "\(name): old content must survive")
            XCTAssertEqual(try entries(), ["model.bin"], "\(name): temp file must be removed")
        }
    }

    func testTargetIsADirectory() throws {
        let p = directory + "/dir"
        try FileManager.default.createDirectory(atPath: p + "/inside", withIntermediateDirectories: true)
        XCTAssertThrowsError(try writeFileAtomically([1, 2, 3], to: p)) { error in
            guard let e = error as? FileIOError else { return XCTFail("\(error)") }
            XCTAssertEqual(e.codeName, "EISDIR")
            XCTAssertTrue(e.description.contains(p), e.description)
        }
        XCTAssertEqual(try entries(), ["dir"], "the directory stays and no temp file remains")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: p), ["inside"])
    }

    func testParentIsARegularFile() throws {
        let parent = directory + "/regular"
        try writeFileAtomically([9], to: parent)
        XCTAssertThrowsError(try writeFileAtomically([1], to: parent + "/child")) { error in
            guard let e = error as? FileIOError else { return XCTFail("\(error)") }
            XCTAssertEqual(e.code, ENOTDIR)
            XCTAssertTrue(e.description.contains(parent + "/child") && e.description.contains("ENOTDIR"), e.description)
        }
        XCTAssertEqual(try readFileBytes(atPath: parent), [9])
    }

    /// A killed writer's temp file (its PID no longer runs) is removed by the next write to
    /// the same target; a live writer's temp file and other targets' temp files are not.
    func testStaleTempFilesOfDeadWritersAreRemoved() throws {
        let p = directory + "/ckpt.safetensors"
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run()
        dead.waitUntilExit()
        let stale = ".ckpt.safetensors.tmp-\(dead.processIdentifier)-abc"
        let live = ".ckpt.safetensors.tmp-\(getppid())-def"
        let other = ".other.bin.tmp-\(dead.processIdentifier)-ghi"
        for name in [stale, live, other] { XCTAssertTrue(FileManager.default.createFile(atPath: directory + "/" + name, contents: Data([1]))) }
        try writeFileAtomically([7], to: p)
        XCTAssertEqual(try entries(), [live, other, "ckpt.safetensors"].sorted())
        XCTAssertEqual(try readFileBytes(atPath: p), [7])
    }

    func testSplitPath() {
        XCTAssertEqual(splitDirectoryAndName("/a/b/c.bin").directory, "/a/b")
        XCTAssertEqual(splitDirectoryAndName("/a/b/c.bin").name, "c.bin")
        XCTAssertEqual(splitDirectoryAndName("c.bin").directory, ".")
        XCTAssertEqual(splitDirectoryAndName("/c").directory, "/")
    }
}
