// Helpers to locate and corrupt fields of a .sprig blob in tests, and a
// seeded mutator. Field offsets follow docs/blob-format.md; they are computed
// here independently of the runtime's reader.

import SprigRuntime

/// A blob held as bytes, with field-level editing and CRC repair.
public struct BlobBytes {
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public func u32(_ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }

    public mutating func setU32(_ at: Int, _ v: UInt32) {
        for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }

    public mutating func setU16(_ at: Int, _ v: UInt16) {
        bytes[at] = UInt8(truncatingIfNeeded: v)
        bytes[at + 1] = UInt8(truncatingIfNeeded: v >> 8)
    }

    /// Recomputes the CRC so that a later check, not the CRC, catches the defect.
    /// (Uses the runtime's CRC; `CRC32Tests` checks it against a bitwise reference.)
    public mutating func fixCRC() {
        let crc = bytes.withUnsafeBytes { CRC32.blob($0) }
        setU32(8, crc)
    }

    public var sectionCount: Int { Int(u32(20)) }
    public var sectionTable: Int { Int(u32(24)) }

    /// Byte offset of the section-table entry of `kind`, or nil.
    public func sectionEntry(kind: UInt32) -> Int? {
        for s in 0..<sectionCount {
            let e = sectionTable + 16 * s
            if u32(e) == kind { return e }
        }
        return nil
    }

    /// Absolute offset of the section of `kind`.
    public func section(kind: UInt32) -> Int { Int(u32(sectionEntry(kind: kind)! + 4)) }

    /// Offset of tensor record `t`.
    public func tensorRecord(_ t: Int) -> Int { section(kind: 1) + 64 * t }
    /// Offset of op record `o`.
    public func opRecord(_ o: Int) -> Int { section(kind: 2) + 64 * o }
    public var tensorCount: Int { Int(u32(sectionEntry(kind: 1)! + 12)) }
    public var opCount: Int { Int(u32(sectionEntry(kind: 2)! + 12)) }
    /// Bytes of header, section table and record sections (everything but DATA and STRINGS).
    public var structuralRanges: [Range<Int>] {
        var r: [Range<Int>] = [0..<64, sectionTable..<(sectionTable + 16 * sectionCount)]
        for kind: UInt32 in [1, 2, 3, 6] {
            if let e = sectionEntry(kind: kind) {
                let o = Int(u32(e + 4))
                r.append(o..<(o + Int(u32(e + 8))))
            }
        }
        return r
    }
}

/// Loads `bytes` through a 16-byte aligned copy and returns the error, if any.
public func loadError(_ bytes: [UInt8]) -> SprigError? {
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
    defer { copy.deallocate() }
    copy.copyBytes(from: bytes)
    do {
        _ = try Model(bytes: UnsafeRawBufferPointer(rebasing: copy[0..<bytes.count]))
        return nil
    } catch {
        return error
    }
}

/// Loads `bytes`, and if they are accepted, binds an arena of the planned size
/// and invokes once: the memory-safety path a fuzzer exercises.
/// Returns the load error, or nil when the blob loaded and ran.
@discardableResult
public func loadAndInvoke(_ bytes: [UInt8]) -> SprigError? {
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
    defer { copy.deallocate() }
    copy.copyBytes(from: bytes)
    do {
        let model = try Model(bytes: UnsafeRawBufferPointer(rebasing: copy[0..<bytes.count]))
        let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: max(model.arenaBytes, 16), alignment: 16)
        defer { arena.deallocate() }
        arena.initializeMemory(as: UInt8.self, repeating: 0)
        let interpreter = try Interpreter(model: model, arena: arena)
        interpreter.invoke()
        return nil
    } catch {
        return error
    }
}

/// Bitwise CRC-32 (reflected 0xEDB88320), written independently of the runtime's.
public func referenceCRC32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return crc ^ 0xFFFF_FFFF
}
