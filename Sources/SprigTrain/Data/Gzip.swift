// gzip through the system zlib: a streaming inflater that the IDX reader pulls from (so it
// never holds more decompressed bytes than the header says the file should have), and a
// one-shot deterministic compressor for the IDX writer.
//
// The `inflateInit2`/`deflateInit2` macros are not visible to Swift; the underlying
// `inflateInit2_`/`deflateInit2_` take the zlib version string and `sizeof(z_stream)`.
// windowBits 16 + MAX_WBITS selects the gzip wrapper (header, CRC-32 and length trailer).
// The `z_stream` lives in manually allocated memory because zlib keeps a pointer back to it
// and checks it on every call: it must never move.

import CZlib

/// The first two bytes of every gzip member.
let gzipMagic: (UInt8, UInt8) = (0x1F, 0x8B)

/// Pulls decompressed bytes out of an in-memory gzip file, one buffer at a time.
///
/// Concatenated gzip members (as `cat a.gz b.gz` makes) are decoded as one stream, as gzip(1)
/// does. Anything after the last member that is not another member is an error, as are a bad
/// header, a CRC or length mismatch and a stream that stops early.
final class GzipInflater {
    private let compressed: [UInt8]
    private let path: String
    private let stream: UnsafeMutablePointer<z_stream>
    private var inputOffset = 0
    private var finished = false
    /// Total decompressed bytes handed out so far.
    private(set) var totalOut = 0

    /// - Throws: `DataError.gzip` if zlib cannot be initialised.
    init(compressed: [UInt8], path: String) throws {
        self.compressed = compressed
        self.path = path
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let rc = inflateInit2_(stream, 16 + MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        if rc != Z_OK {
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw DataError.gzip(path: path, detail: "zlib inflateInit2 failed (\(rc))")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Decompresses into `buffer` until it is full or the stream ends.
    ///
    /// - Returns: the number of bytes written; less than `buffer.count` only at the end of the
    ///   data (and 0 on every call after that).
    /// - Throws: `DataError.gzip` naming the file for corrupt, truncated or trailing data.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var produced = 0
        while produced < buffer.count && !finished {
            let remainingIn = compressed.count - inputOffset
            let chunkIn = min(remainingIn, Int(UInt32.max >> 1))
            let chunkOut = min(buffer.count - produced, Int(UInt32.max >> 1))
            let (rc, usedIn, madeOut): (Int32, Int, Int) = compressed.withUnsafeBufferPointer { input in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress.map { $0 + inputOffset })
                stream.pointee.avail_in = UInt32(chunkIn)
                stream.pointee.next_out = buffer.baseAddress!.advanced(by: produced).assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = UInt32(chunkOut)
                let rc = inflate(stream, Z_NO_FLUSH)
                return (rc, chunkIn - Int(stream.pointee.avail_in), chunkOut - Int(stream.pointee.avail_out))
            }
            stream.pointee.next_in = nil
            stream.pointee.next_out = nil
            inputOffset += usedIn
            produced += madeOut
            totalOut += madeOut

            switch rc {
            case Z_OK:
                if usedIn == 0 && madeOut == 0 && inputOffset == compressed.count {
                    throw truncated()
                }
            case Z_STREAM_END:
                if inputOffset == compressed.count {
                    finished = true
                } else if compressed.count - inputOffset >= 2,
                          compressed[inputOffset] == gzipMagic.0, compressed[inputOffset + 1] == gzipMagic.1 {
                    inflateReset(stream)  // next member of a multi-member file
                } else {
                    throw DataError.gzip(path: path, detail:
                        "\(compressed.count - inputOffset) trailing bytes after the gzip stream at offset \(inputOffset)")
                }
            case Z_BUF_ERROR:
                // No progress possible: with output space left, that means the input ran out.
                throw truncated()
            case Z_NEED_DICT:
                throw DataError.gzip(path: path, detail: "stream needs a preset dictionary")
            case Z_MEM_ERROR:
                throw DataError.gzip(path: path, detail: "zlib out of memory")
            default:  // Z_DATA_ERROR, Z_STREAM_ERROR
                let message = stream.pointee.msg.map { String(cString: $0) } ?? "error \(rc)"
                throw DataError.gzip(path: path, detail: "\(message) (compressed offset \(inputOffset))")
            }
        }
        return produced
    }

    private func truncated() -> DataError {
        .gzip(path: path, detail: "truncated gzip stream: input ends at byte \(compressed.count) "
              + "after \(totalOut) decompressed bytes, before the end-of-stream marker")
    }
}

/// Largest ratio of decompressed to compressed size deflate can reach (≈1032:1), with margin.
/// Used to reject, before allocating, a header that claims more data than the file can hold.
let maxDeflateRatio = 1100

/// Compresses `bytes` into a single gzip member.
///
/// The output is deterministic: zlib writes a gzip header with mtime 0, no file name and the
/// build's OS byte, so the same input and level give the same bytes on this machine.
///
/// - Parameter level: zlib level 0 (store) ... 9 (smallest); default 6.
/// - Throws: `DataError.gzip` if zlib fails (it cannot for valid levels short of memory exhaustion).
func gzipCompress(_ bytes: [UInt8], level: Int32 = 6, path: String = "<memory>") throws -> [UInt8] {
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    defer { stream.deinitialize(count: 1); stream.deallocate() }
    let rc = deflateInit2_(stream, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
                           zlibVersion(), Int32(MemoryLayout<z_stream>.size))
    guard rc == Z_OK else { throw DataError.gzip(path: path, detail: "zlib deflateInit2 failed (\(rc))") }
    defer { deflateEnd(stream) }

    var output: [UInt8] = []
    output.reserveCapacity(Int(deflateBound(stream, UInt(bytes.count))) + 64)
    var scratch = [UInt8](repeating: 0, count: 1 << 16)
    var offset = 0
    var status: Int32 = Z_OK
    while status != Z_STREAM_END {
        let chunkIn = min(bytes.count - offset, 1 << 30)
        let isLast = offset + chunkIn == bytes.count
        let (rc, usedIn, madeOut): (Int32, Int, Int) = bytes.withUnsafeBufferPointer { input in
            scratch.withUnsafeMutableBufferPointer { out in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress.map { $0 + offset })
                stream.pointee.avail_in = UInt32(chunkIn)
                stream.pointee.next_out = out.baseAddress
                stream.pointee.avail_out = UInt32(out.count)
                let rc = deflate(stream, isLast ? Z_FINISH : Z_NO_FLUSH)
                return (rc, chunkIn - Int(stream.pointee.avail_in), out.count - Int(stream.pointee.avail_out))
            }
        }
        stream.pointee.next_in = nil
        stream.pointee.next_out = nil
        guard rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR else {
            throw DataError.gzip(path: path, detail: "zlib deflate failed (\(rc))")
        }
        offset += usedIn
        output.append(contentsOf: scratch[0..<madeOut])
        status = rc
    }
    return output
}
