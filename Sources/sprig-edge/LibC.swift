// The thin libc layer of sprig-edge: the few calls it needs, declared with
// @_extern(c) so the same code builds on the host and as Embedded Swift for a
// board (no Glibc module there).

@_extern(c, "open") func c_open(_ path: UnsafePointer<CChar>, _ flags: Int32, _ mode: UInt32) -> Int32
@_extern(c, "read") func c_read(_ fd: Int32, _ buf: UnsafeMutableRawPointer, _ count: Int) -> Int
@_extern(c, "write") func c_write(_ fd: Int32, _ buf: UnsafeRawPointer, _ count: Int) -> Int
@_extern(c, "close") func c_close(_ fd: Int32) -> Int32
@_extern(c, "lseek") func c_lseek(_ fd: Int32, _ offset: Int, _ whence: Int32) -> Int
@_extern(c, "fsync") func c_fsync(_ fd: Int32) -> Int32
@_extern(c, "rename") func c_rename(_ from: UnsafePointer<CChar>, _ to: UnsafePointer<CChar>) -> Int32
@_extern(c, "unlink") func c_unlink(_ path: UnsafePointer<CChar>) -> Int32
@_extern(c, "getpid") func c_getpid() -> Int32
@_extern(c, "mmap") func c_mmap(_ address: UnsafeMutableRawPointer?, _ length: Int, _ protection: Int32, _ flags: Int32,
                                 _ fd: Int32, _ offset: Int) -> UnsafeMutableRawPointer?
@_extern(c, "munmap") func c_munmap(_ address: UnsafeMutableRawPointer?, _ length: Int) -> Int32
@_extern(c, "kill") func c_kill(_ pid: Int32, _ signal: Int32) -> Int32
@_extern(c, "opendir") func c_opendir(_ path: UnsafePointer<CChar>) -> UnsafeMutableRawPointer?
@_extern(c, "readdir") func c_readdir(_ dir: UnsafeMutableRawPointer) -> UnsafeRawPointer?
@_extern(c, "closedir") func c_closedir(_ dir: UnsafeMutableRawPointer) -> Int32
@_extern(c, "clock_gettime") func c_clock_gettime(_ clock: Int32, _ ts: UnsafeMutablePointer<Int>) -> Int32
@_extern(c, "exit") func c_exit(_ status: Int32)
@_extern(c, "__errno_location") func c_errno_location() -> UnsafeMutablePointer<Int32>
@_extern(c, "strerror") func c_strerror(_ errnum: Int32) -> UnsafePointer<CChar>

let O_RDONLY: Int32 = 0
let O_WRONLY: Int32 = 1
let O_CREAT: Int32 = 0o100
let O_TRUNC: Int32 = 0o1000
let O_EXCL: Int32 = 0o200
let SEEK_SET: Int32 = 0
let SEEK_END: Int32 = 2
let CLOCK_MONOTONIC: Int32 = 1
let EINTR: Int32 = 4
let EEXIST: Int32 = 17
let EISDIR: Int32 = 21
let ESRCH: Int32 = 3
let PROT_READ_WRITE: Int32 = 0x3
let MAP_PRIVATE_ANONYMOUS: Int32 = 0x22  // Linux: MAP_PRIVATE | MAP_ANONYMOUS

/// The current errno as a message, e.g. "No such file or directory".
func errnoMessage() -> String {
    String(cString: c_strerror(c_errno_location().pointee))
}

/// Monotonic time in seconds.
func now() -> Double {
    var ts = (0, 0)
    _ = withUnsafeMutablePointer(to: &ts) { p in
        p.withMemoryRebound(to: Int.self, capacity: 2) { c_clock_gettime(CLOCK_MONOTONIC, $0) }
    }
    return Double(ts.0) + Double(ts.1) * 1e-9
}

/// A failure of the file layer, with the path and the reason.
struct FileError: Error {
    var path: String
    var reason: String
}

/// A zeroed, page-aligned buffer of `bytes` (anonymous mmap), or nil when
/// memory runs out. Sizes read from a blob (its arena plans) go through here:
/// `allocate` would trap, and a board with 512 MiB must refuse a blob that
/// asks for 4 GiB, not crash. (mmap rather than malloc: Embedded Swift
/// reserves the name `free`.) Release it with ``releaseBuffer(_:)``.
func allocateBuffer(_ bytes: Int) -> UnsafeMutableRawBufferPointer? {
    let start = c_mmap(nil, max(bytes, 16), PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0)
    guard let start, Int(bitPattern: start) != -1 else { return nil }  // MAP_FAILED
    return UnsafeMutableRawBufferPointer(start: start, count: bytes)
}

func releaseBuffer(_ buffer: UnsafeMutableRawBufferPointer) {
    _ = c_munmap(buffer.baseAddress, max(buffer.count, 16))
}

/// Reads a whole file into a new 16-byte aligned buffer (the caller frees it).
func readFile(_ path: String, limit: Int = 1 << 30) throws(FileError) -> UnsafeMutableRawBufferPointer {
    let fd = path.withCString { c_open($0, O_RDONLY, 0) }
    guard fd >= 0 else { throw FileError(path: path, reason: errnoMessage()) }
    defer { _ = c_close(fd) }
    // A directory opens, but reading it fails with EISDIR (its lseek size is meaningless).
    var probe: UInt8 = 0
    if c_read(fd, &probe, 1) < 0 && c_errno_location().pointee == EISDIR {
        throw FileError(path: path, reason: "is a directory, not a file")
    }
    let size = c_lseek(fd, 0, SEEK_END)
    guard size >= 0, c_lseek(fd, 0, SEEK_SET) == 0 else {
        throw FileError(path: path, reason: "cannot seek: " + errnoMessage())
    }
    guard size <= limit else { throw FileError(path: path, reason: "larger than \(limit) bytes") }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 16)
    var done = 0
    while done < size {
        guard let base = buffer.baseAddress else { break }
        let n = c_read(fd, base + done, size - done)
        if n < 0 && c_errno_location().pointee == EINTR { continue }
        if n <= 0 {
            buffer.deallocate()
            throw FileError(path: path, reason: n == 0 ? "file shrank while reading" : errnoMessage())
        }
        done += n
    }
    return UnsafeMutableRawBufferPointer(rebasing: buffer[0..<size])
}

/// Writes `bytes` to `path` so that an interruption leaves either the old
/// file or the new one: write a temporary file `PATH.tmp-PID` beside it,
/// fsync, rename, fsync the directory.
///
/// A writer killed before its rename leaves its `PATH.tmp-PID` behind. The
/// next write to the same path removes such files of processes that no longer
/// run, and reclaims one named with its own PID (left by an earlier process
/// that had the same PID, as happens on a board that boots the same way).
func writeFileAtomically(_ path: String, _ bytes: UnsafeRawBufferPointer) throws(FileError) {
    let (directory, name) = splitPath(path)
    removeStaleTempFiles(directory: directory, name: name)
    let temp = path + ".tmp-\(c_getpid())"
    var fd = temp.withCString { c_open($0, O_WRONLY | O_CREAT | O_TRUNC | O_EXCL, 0o644) }
    if fd < 0 && c_errno_location().pointee == EEXIST {
        // Our PID is ours alone while we run: the file is a dead writer's.
        _ = temp.withCString { c_unlink($0) }
        fd = temp.withCString { c_open($0, O_WRONLY | O_CREAT | O_TRUNC | O_EXCL, 0o644) }
    }
    guard fd >= 0 else { throw FileError(path: path, reason: "cannot create \(temp): " + errnoMessage()) }
    var done = 0
    while done < bytes.count {
        guard let base = bytes.baseAddress else { break }
        let n = c_write(fd, base + done, bytes.count - done)
        if n < 0 && c_errno_location().pointee == EINTR { continue }
        if n <= 0 {
            let reason = errnoMessage()
            _ = c_close(fd)
            _ = temp.withCString { c_unlink($0) }
            throw FileError(path: path, reason: reason)
        }
        done += n
    }
    guard c_fsync(fd) == 0 else {
        let reason = errnoMessage()
        _ = c_close(fd)
        _ = temp.withCString { c_unlink($0) }
        throw FileError(path: path, reason: reason)
    }
    _ = c_close(fd)
    let renamed = temp.withCString { t in path.withCString { c_rename(t, $0) } }
    guard renamed == 0 else {
        let reason = errnoMessage()
        _ = temp.withCString { c_unlink($0) }
        throw FileError(path: path, reason: reason)
    }
    // Make the rename itself durable: fsync the directory (best effort; the
    // file is already whole either way).
    let dfd = directory.withCString { c_open($0, O_RDONLY, 0) }
    if dfd >= 0 {
        _ = c_fsync(dfd)
        _ = c_close(dfd)
    }
}

/// `"a/b/c.sprig"` → `("a/b", "c.sprig")`; `"c.sprig"` → `(".", "c.sprig")`; `"/c"` → `("/", "c")`.
func splitPath(_ path: String) -> (directory: String, name: String) {
    let utf8 = Array(path.utf8)
    var last = -1
    for (i, byte) in utf8.enumerated() where byte == UInt8(ascii: "/") { last = i }
    if last < 0 { return (".", path) }
    let name = String(decoding: utf8[(last + 1)...], as: UTF8.self)
    return (last == 0 ? "/" : String(decoding: utf8[0..<last], as: UTF8.self), name)
}

/// Removes `NAME.tmp-PID` files in `directory` whose PID is not a running
/// process (`kill(pid, 0)` fails with ESRCH). Best effort: errors are ignored.
/// Reads `struct dirent` by its 64-bit Linux layout (the name at byte 19): glibc's
/// on 64-bit targets, and the kernel's `linux_dirent64` that Targets/linux/libc.c
/// returns on every target (tools/cross-build passes `-D SPRIG_DIRENT64`). It does
/// nothing elsewhere.
func removeStaleTempFiles(directory: String, name: String) {
    #if ((os(Linux) || os(none)) && (arch(arm64) || arch(x86_64))) || SPRIG_DIRENT64
    let direntNameOffset = 19
    guard let dir = directory.withCString({ c_opendir($0) }) else { return }
    defer { _ = c_closedir(dir) }
    let prefix = Array((name + ".tmp-").utf8)
    let own = c_getpid()
    while let entry = c_readdir(dir) {
        let entryName = String(cString: (entry + direntNameOffset).assumingMemoryBound(to: CChar.self))
        let bytes = Array(entryName.utf8)
        guard bytes.count > prefix.count, bytes.starts(with: prefix) else { continue }
        var pid: Int32 = 0
        var digits = true
        for b in bytes[prefix.count...] {
            guard b >= 0x30 && b <= 0x39, pid < 100_000_000 else { digits = false; break }
            pid = pid * 10 + Int32(b - 0x30)
        }
        guard digits, pid > 0, pid != own else { continue }
        if c_kill(pid, 0) != 0 && c_errno_location().pointee == ESRCH {
            _ = (directory + "/" + entryName).withCString { c_unlink($0) }
        }
    }
    #endif
}

/// Standard output and error, written in one call per line.
func writeOut(_ s: String) {
    var s = s
    s.withUTF8 { u in
        var done = 0
        while done < u.count {
            guard let base = u.baseAddress else { return }
            let n = c_write(1, base + done, u.count - done)
            if n <= 0 { return }
            done += n
        }
    }
}

func writeErr(_ s: String) {
    var s = s
    s.withUTF8 { u in
        if let base = u.baseAddress { _ = c_write(2, base, u.count) }
    }
}
