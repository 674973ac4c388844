// What `sprig-edge --version` prints: the release, the commit and the blob format.
//
// The release is the VERSION file at the repository root, restated here (a test compares
// the two). The commit cannot be committed into its own tree, so it is stamped at build
// time: tools/stamp-build (around a `swift build`) and tools/cross-build write a
// git-ignored BuildStamp.swift whose `BuildStamp.commit` shadows the default below. A
// plain `swift build`, or a build outside a git checkout, says "unknown". The stamp is
// removed after the build, so no later build can carry a stale commit. No git is needed
// at run time. docs/versions.md has the scheme.

#if canImport(SprigRuntime)
import SprigRuntime
#endif

/// The release this source tree is: the VERSION file.
let sprigEdgeVersion = "0.1.0"

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

/// The `--version` text.
func versionText() -> String {
    #if SPRIG_INFERENCE_ONLY
    return "sprig-edge \(sprigEdgeVersion) (inference only: no finetune)\ncommit: \(BuildStamp.commit)\n"
        + "blob format: version \(BlobLayout.version) (reads)\n"
    #else
    return "sprig-edge \(sprigEdgeVersion)\ncommit: \(BuildStamp.commit)\nblob format: version \(BlobLayout.version) (reads and writes)\n"
    #endif
}
