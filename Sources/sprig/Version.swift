// What `sprig --version` prints: the release, the commit, the blob format, the build.
//
// The release is the VERSION file at the repository root, restated here (a test compares
// the two). The commit is stamped at build time by tools/stamp-build, which writes a
// git-ignored BuildStamp.swift whose `BuildStamp.commit` shadows the default below, builds,
// and removes it again: a plain `swift build`, or a build outside a git checkout, says
// "unknown", and no later build carries a stale commit. No git is needed at run time.
// docs/versions.md has the scheme.

import SprigRuntime

/// The release this source tree is: the VERSION file.
let sprigVersion = "0.1.0"

/// Supplies the default commit; a generated `extension BuildStamp` overrides it.
protocol BuildStamped {
    static var commit: String { get }
}

extension BuildStamped {
    static var commit: String { "unknown" }
}

/// The build's stamp: `commit` is the 40-digit hash, with "-dirty" when the tree had
/// uncommitted changes to tracked files, or "unknown".
enum BuildStamp: BuildStamped {}

/// The build configuration: SwiftPM defines DEBUG in debug builds.
var buildConfiguration: String {
    #if DEBUG
    return "debug"
    #else
    return "release"
    #endif
}

/// The `--version` text.
func versionText() -> String {
    "sprig \(sprigVersion)\ncommit: \(BuildStamp.commit)\nblob format: version \(BlobLayout.version) (reads and writes)\nbuild: \(buildConfiguration), kernels for \(kernelInstructionSet)\n"
}
