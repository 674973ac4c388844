/// CRC-32/ISO-HDLC, the CRC of zlib and PNG: reflected polynomial 0xEDB88320,
/// initial value and final XOR 0xFFFFFFFF.
///
/// Example: `crc32("123456789")` is `0xCBF43926` (the standard check value).
///
/// Bitwise, eight steps per byte: no table, so no static memory. The blob's
/// CRC is checked once at load, where this costs about a nanosecond per byte.
public struct CRC32 {
    public private(set) var state: UInt32 = 0xFFFF_FFFF

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var c = state
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 {
                c = (c >> 1) ^ (0xEDB8_8320 & (0 &- (c & 1)))
            }
        }
        state = c
    }

    public mutating func update(zeros count: Int) {
        var c = state
        for _ in 0..<max(count, 0) {
            for _ in 0..<8 {
                c = (c >> 1) ^ (0xEDB8_8320 & (0 &- (c & 1)))
            }
        }
        state = c
    }

    public var value: UInt32 { state ^ 0xFFFF_FFFF }

    /// The blob CRC: every byte of `file`, with bytes 8…11 (the CRC field) taken as zero.
    public static func blob(_ file: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CRC32()
        let n = file.count
        crc.update(UnsafeRawBufferPointer(rebasing: file[0..<min(8, n)]))
        if n > 8 {
            crc.update(zeros: min(4, n - 8))
        }
        if n > 12 {
            crc.update(UnsafeRawBufferPointer(rebasing: file[12..<n]))
        }
        return crc.value
    }
}
