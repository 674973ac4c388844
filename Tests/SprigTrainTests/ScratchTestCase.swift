// The base of the tests that write files or run the built CLIs: a scratch directory of
// their own for each test, and a runner for `sprig` and `sprig-edge`.

import Foundation
import XCTest

class ScratchTestCase: XCTestCase {
    /// Made empty before each test and removed after it.
    var directory: URL!

    override func setUpWithError() throws {
        try super.setUpWithError()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sprig-\(type(of: self))-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
        try super.tearDownWithError()
    }

    /// `name` inside the scratch directory.
    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Runs `tool arguments` (the built executable, see `sprigExecutable`); returns its exit
    /// status, standard output and standard error. Skips the test when the tool is not built.
    func sprig(_ arguments: [String], tool: String = "sprig") throws -> (status: Int32, stdout: String, stderr: String) {
        guard let exe = sprigExecutable(tool) else { throw XCTSkip("\(tool) is not built beside the tests nor in .build/debug") }
        let p = Process()
        p.executableURL = exe
        p.arguments = arguments
        // Standard error goes to a file, so that only one pipe is read and neither can fill up and block the child.
        let errPath = path("stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        defer { try? err.close() }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let errData = try Data(contentsOf: URL(fileURLWithPath: errPath))
        return (p.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}
