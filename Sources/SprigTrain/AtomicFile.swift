// Whole-file I/O for the host: atomic replace-on-write and read-into-memory.
//
// Every file Sprig writes on the host (checkpoints, IDX shot files, blobs) goes through
// `writeFileAtomically`, so a crash, a full disk or a bad path never leaves a half-written
// target: readers see either the old file or the complete new one.
//
//   0. remove <dir>/.<name>.tmp-<pid>-*     left by writers that were killed (pid not running)
//   1. open   <dir>/.<name>.tmp-<pid>-<random>   O_CREAT|O_EXCL, same directory as the target
//   2. write  all bytes (partial writes and EINTR retried)
//   3. fsync  the temp file, close it
//   4. rename temp → target                 (atomic on POSIX file systems)
//   5. fsync  the directory                 (makes the rename itself durable)
//
// Any failure in steps 1–4 removes the temp file and throws `FileIOError`, which names the
// path, the step and the errno (ENOSPC, EACCES, EROFS, ENOTDIR, EISDIR, ...).

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed file-system call: which file, which step, and the errno it returned.
///
/// `description` reads like `cannot rename temp file onto '/a/b.safetensors': Is a directory (EISDIR)`.
public struct FileIOError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file the caller asked for (the target, not the temp file).
    public var path: String
    /// The step that failed, e.g. `"open"`, `"write"`, `"fsync"`, `"rename temp file onto"`.
    public var operation: String
    /// The `errno` value, or 0 when the failure was not a system call (e.g. a short read).
    public var code: Int32
    /// Extra detail for non-errno failures.
    public var detail: String

    public init(path: String, operation: String, code: Int32, detail: String = "") {
        self.path = path
        self.operation = operation
        self.code = code
        self.detail = detail
    }

    /// The symbolic errno name (`"ENOSPC"`), or `"errno N"` for unusual values.
    public var codeName: String { symbolicErrnoName(code) }

    public var description: String {
        if code == EISDIR && operation == "read" { return "'\(path)' is a directory, not a file" }
        var s = "cannot \(operation) '\(path)'"
        if code != 0 { s += ": \(String(cString: strerror(code))) (\(codeName))" }
        if !detail.isEmpty { s += code != 0 ? " — \(detail)" : ": \(detail)" }
        return s
    }
}

/// Symbolic names for the errno values a file write or read can plausibly produce.
func symbolicErrnoName(_ code: Int32) -> String {
    switch code {
    case EPERM: return "EPERM"
    case ENOENT: return "ENOENT"
    case EIO: return "EIO"
    case EBADF: return "EBADF"
    case EACCES: return "EACCES"
    case EEXIST: return "EEXIST"
    case EXDEV: return "EXDEV"
    case ENOTDIR: return "ENOTDIR"
    case EISDIR: return "EISDIR"
    case EINVAL: return "EINVAL"
    case ENFILE: return "ENFILE"
    case EMFILE: return "EMFILE"
    case EFBIG: return "EFBIG"
    case ENOSPC: return "ENOSPC"
    case EROFS: return "EROFS"
    case ENAMETOOLONG: return "ENAMETOOLONG"
    case ELOOP: return "ELOOP"
    case EDQUOT: return "EDQUOT"
    case ENOTEMPTY: return "ENOTEMPTY"
    case EBUSY: return "EBUSY"
    case EINTR: return "EINTR"
    case ENOMEM: return "ENOMEM"
    default: return "errno \(code)"
    }
}

/// Fault injection for tests of the cleanup path (a root user cannot be denied a write by
/// permissions, and a full disk cannot be conjured portably). Internal: reached only through
/// `@testable import`.
enum AtomicWriteFault: Equatable, Sendable {
    /// The write step fails with this errno after the temp file was created and partly written.
    case write(Int32)
    /// The fsync of the temp file fails with this errno.
    case fsync(Int32)
    /// The rename fails with this errno.
    case rename(Int32)
}

/// Replaces the file at `path` with `bytes`, atomically and durably.
///
/// The bytes go to a uniquely named temp file in the same directory, which is fsynced and
/// renamed over the target; then the directory is fsynced. If the target exists its
/// permission bits are kept, otherwise the file gets 0644 (less the umask).
///
/// ```swift
/// try writeFileAtomically(Array("hello\n".utf8), to: "/tmp/greeting.txt")
/// ```
///
/// - Throws: `FileIOError` naming `path`, the step and the errno. On any failure the temp
///   file is removed and the previous content of `path` (if any) is untouched.
public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    try writeFileAtomically(bytes, to: path, fault: nil)
}

/// `Data` overload of ``writeFileAtomically(_:to:)-([UInt8],_)``.
public func writeFileAtomically(_ data: Data, to path: String) throws {
    try writeFileAtomically([UInt8](data), to: path, fault: nil)
}

func writeFileAtomically(_ bytes: [UInt8], to path: String, fault: AtomicWriteFault?) throws {
    guard !path.isEmpty else {
        throw FileIOError(path: path, operation: "write", code: ENOENT, detail: "empty path")
    }
    let (directory, name) = splitDirectoryAndName(path)
    guard !name.isEmpty else {
        throw FileIOError(path: path, operation: "write", code: EISDIR, detail: "path ends in '/'")
    }

    // Keep the permission bits of an existing regular file.
    var mode: mode_t = 0o644
    var st = stat()
    if stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG {
        mode = st.st_mode & 0o7777
    }

    // 0. Temp files of this target that killed writers left behind.
    removeStaleTempFiles(directory: directory, name: name)

    // 1. A temp name that cannot clash: PID and random suffix plus O_EXCL, retried on EEXIST.
    var tempPath = ""
    var fd: Int32 = -1
    var rng = SystemRandomNumberGenerator()
    for _ in 0..<16 {
        let suffix = String(rng.next() as UInt64, radix: 36)
        tempPath = directory + "/." + name + ".tmp-\(getpid())-" + suffix
        fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        if fd >= 0 || errno != EEXIST { break }
    }
    if fd < 0 {
        throw FileIOError(path: path, operation: "create temp file for", code: errno)
    }
    Interrupt.writing(tempPath)
    defer { Interrupt.writing(nil) }

    func fail(_ operation: String, _ code: Int32) -> FileIOError {
        if fd >= 0 { close(fd) }
        unlink(tempPath)
        return FileIOError(path: path, operation: operation, code: code)
    }

    // 2. Write everything; write(2) may return short counts.
    var written = 0
    let writeError: Int32 = bytes.withUnsafeBytes { raw -> Int32 in
        while written < raw.count {
            if case .write(let code)? = fault, written >= raw.count / 2 { return code }
            let n = write(fd, raw.baseAddress! + written, raw.count - written)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            written += n
        }
        if case .write(let code)? = fault { return code }  // empty payloads too
        return 0
    }
    if writeError != 0 { throw fail("write", writeError) }

    // 3. Flush to stable storage and close (close can report deferred write errors, e.g. NFS).
    if case .fsync(let code)? = fault { throw fail("fsync", code) }
    if fsync(fd) != 0 { throw fail("fsync", errno) }
    let closeResult = close(fd)
    fd = -1
    if closeResult != 0 { throw fail("close", errno) }

    // 4. Atomic replace.
    if case .rename(let code)? = fault { throw fail("rename temp file onto", code) }
    if rename(tempPath, path) != 0 { throw fail("rename temp file onto", errno) }

    // 5. Make the rename durable. Some file systems cannot fsync a directory (EINVAL); the
    //    data itself is already safe, so that case is not an error.
    let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if dirFD >= 0 {
        let rc = fsync(dirFD)
        let code = errno
        close(dirFD)
        if rc != 0 && code != EINVAL && code != EROFS {
            throw FileIOError(path: path, operation: "fsync the directory of", code: code)
        }
    }
}

/// Removes `<directory>/.<name>.tmp-<pid>-<suffix>` files whose writer no longer runs
/// (`kill(pid, 0)` fails with ESRCH): what a writer killed between its open and its rename
/// leaves behind. Only temp files of this one target are touched; errors are ignored.
func removeStaleTempFiles(directory: String, name: String) {
    let prefix = "." + name + ".tmp-"
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
    for entry in entries where entry.hasPrefix(prefix) {
        let rest = entry.dropFirst(prefix.count)
        guard let dash = rest.firstIndex(of: "-"), let pid = Int32(rest[..<dash]), pid > 0, pid != getpid() else { continue }
        if kill(pid, 0) != 0 && errno == ESRCH {
            unlink(directory + "/" + entry)
        }
    }
}

/// Reads a whole file into memory.
///
/// - Parameter maxBytes: refuse files larger than this (default 8 GiB), so a stray device
///   node or a huge file fails cleanly instead of exhausting memory.
/// - Throws: `FileIOError` naming the path and errno (`ENOENT`, `EISDIR`, `EACCES`, ...).
public func readFileBytes(atPath path: String, maxBytes: Int = 8 << 30) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw FileIOError(path: path, operation: "open", code: errno) }
    defer { close(fd) }
    var st = stat()
    if fstat(fd, &st) != 0 { throw FileIOError(path: path, operation: "stat", code: errno) }
    if (st.st_mode & S_IFMT) == S_IFDIR { throw FileIOError(path: path, operation: "read", code: EISDIR) }
    let size = Int(st.st_size)
    if size > maxBytes {
        throw FileIOError(path: path, operation: "read", code: EFBIG,
                          detail: "file is \(size) bytes, limit \(maxBytes)")
    }
    var bytes = [UInt8](repeating: 0, count: size)
    var total = 0
    let readError: Int32 = bytes.withUnsafeMutableBytes { raw -> Int32 in
        while total < raw.count {
            let n = read(fd, raw.baseAddress! + total, raw.count - total)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if n == 0 { break }  // the file shrank under us
            total += n
        }
        return 0
    }
    if readError != 0 { throw FileIOError(path: path, operation: "read", code: readError) }
    if total != size {
        throw FileIOError(path: path, operation: "read", code: 0,
                          detail: "file shrank from \(size) to \(total) bytes while reading")
    }
    return bytes
}

/// `"/a/b/c.bin"` → `("/a/b", "c.bin")`; `"c.bin"` → `(".", "c.bin")`; `"/c"` → `("/", "c")`.
func splitDirectoryAndName(_ path: String) -> (directory: String, name: String) {
    guard let slash = path.lastIndex(of: "/") else { return (".", path) }
    let name = String(path[path.index(after: slash)...])
    var directory = String(path[..<slash])
    if directory.isEmpty { directory = "/" }
    return (directory, name)
}
