// Ctrl-C (SIGINT) and SIGTERM for long commands.
//
// The handler does only async-signal-safe work, on C strings prepared
// beforehand: it ends an open progress line, prints "interrupted", removes
// the temp file being written (the target keeps its old content) and every
// output folder this run created that is still empty (rmdir fails on a
// folder that holds files, so finished files stay), then `_exit(130)`.
//
//   sprigMain ── Interrupt.install()
//   demo, transfer ── Interrupt.createdDirectory(path)   (only when it did not exist)
//   writeFileAtomically ── Interrupt.writing(temp) … Interrupt.writing(nil)
//   ProgressBar ── Interrupt.lineOpen = true while a terminal line lacks its newline

import Foundation

public enum Interrupt {
    /// Slots for the folders to remove, newest last.
    static let maxDirectories = 16
    nonisolated(unsafe) static let directories = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
        .allocate(capacity: maxDirectories)
    nonisolated(unsafe) static var directoryCount: Int32 = 0
    /// The temp file being written, or nil.
    nonisolated(unsafe) static var tempFile: UnsafeMutablePointer<CChar>?
    /// True while a progress bar's terminal line has no newline yet.
    nonisolated(unsafe) public static var lineOpen = false
    /// The program name for the message ("sprig").
    nonisolated(unsafe) static var message: UnsafeMutablePointer<CChar>?

    /// Installs the handler for SIGINT and SIGTERM. `name` starts the message line.
    public static func install(name: String) {
        message = strdup("\(name): interrupted\n")
        directories.initialize(repeating: nil, count: maxDirectories)
        signal(SIGINT, interruptHandler)
        signal(SIGTERM, interruptHandler)
    }

    /// Records a folder this run created, to be removed if it is still empty when interrupted.
    public static func createdDirectory(_ path: String) {
        guard message != nil, directoryCount < maxDirectories, let copy = strdup(path) else { return }
        directories[Int(directoryCount)] = copy
        directoryCount += 1
    }

    /// Creates the output folder `path` and its missing parents (mode 0755),
    /// recording each folder it created so that an interrupt removes it while empty.
    ///
    /// - Throws: `FileIOError` naming the folder and the errno, e.g. "cannot create
    ///   directory '/tmp/file/out': Not a directory (ENOTDIR)".
    public static func createOutputDirectory(_ path: String) throws {
        var missing: [String] = []
        var p = (path as NSString).standardizingPath
        var st = stat()
        while !p.isEmpty && p != "/" && p != "." && stat(p, &st) != 0 && errno == ENOENT {
            missing.append(p)
            p = (p as NSString).deletingLastPathComponent
        }
        // `p` is now the deepest part that exists (or could not be examined): it must be a folder.
        if !p.isEmpty && p != "." {
            if stat(p, &st) != 0 { throw FileIOError(path: p, operation: "create directory", code: errno) }
            if (st.st_mode & S_IFMT) != S_IFDIR {
                throw FileIOError(path: missing.last ?? path, operation: "create directory", code: ENOTDIR)
            }
        }
        for d in missing.reversed() {
            guard mkdir(d, 0o755) == 0 || errno == EEXIST else {
                throw FileIOError(path: d, operation: "create directory", code: errno)
            }
            createdDirectory(d)
        }
    }

    /// The temp file being written (nil when done); removed if interrupted.
    static func writing(_ temp: String?) {
        let old = tempFile
        tempFile = temp.flatMap { strdup($0) }
        free(old)
    }
}

private func interruptHandler(_ signal: Int32) {
    if Interrupt.lineOpen { _ = write(2, "\n", 1) }
    if let m = Interrupt.message { _ = write(2, m, strlen(m)) }
    if let t = Interrupt.tempFile { unlink(t) }
    var i = Interrupt.directoryCount - 1
    while i >= 0 {
        if let d = Interrupt.directories[Int(i)] { rmdir(d) }
        i -= 1
    }
    _exit(signal == SIGINT ? 130 : 143)
}
