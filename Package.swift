// swift-tools-version:6.0
// Sprig: embedded few-shot learning. See docs/architecture.md for the module map.
import PackageDescription

// Host builds on x86-64 get AVX2+FMA: without them SIMD8 FMA lowers to `fmaf` calls (~100× slower).
// A cross build (tools/cross-build sets SPRIG_CROSS=1) must not see these flags: clang rejects -mavx2
// for aarch64, and `.when(platforms:)` does not keep them off a `--triple` build.
let crossBuild = Context.environment["SPRIG_CROSS"] != nil
var hostSIMD: [SwiftSetting] = []
#if arch(x86_64)
if !crossBuild {
    hostSIMD = [.unsafeFlags(["-Xcc", "-mavx2", "-Xcc", "-mfma"])]
}
#endif

let package = Package(
    name: "Sprig",
    products: [
        .library(name: "SprigRuntime", targets: ["SprigRuntime"]),
        .executable(name: "sprig-edge", targets: ["sprig-edge"]),
        .executable(name: "sprig", targets: ["sprig"]),
    ],
    targets: [
        // Device half: Embedded Swift subset, stdlib only.
        .target(
            name: "SprigRuntime",
            swiftSettings: hostSIMD
        ),
        // Device CLI: the runtime plus a thin libc layer declared with @_extern(c).
        .executableTarget(
            name: "sprig-edge",
            dependencies: ["SprigRuntime"],
            swiftSettings: [.enableExperimentalFeature("Extern")] + hostSIMD
        ),
        // Host half.
        // The blob writer (BlobBuilder), the arena planner and the fine-tuning reservation:
        // host-only, so the device module carries only what a device runs.
        .target(
            name: "SprigWriter",
            dependencies: ["SprigRuntime"],
            swiftSettings: hostSIMD
        ),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(
            name: "SprigTrain",
            dependencies: ["SprigRuntime", "CZlib"],
            resources: [.copy("Resources")],
            swiftSettings: hostSIMD
        ),
        // Differentiable architecture pruning: relaxation, complexity, selection.
        .target(
            name: "SprigPrune",
            dependencies: ["SprigRuntime", "SprigTrain"],
            swiftSettings: hostSIMD
        ),
        // Compiler: lowering to blobs, post-training quantization, reference models.
        .target(
            name: "SprigCompile",
            dependencies: ["SprigRuntime", "SprigWriter", "SprigTrain"],
            swiftSettings: hostSIMD
        ),
        // The pipelines the CLI and the demo drive, as library code with typed options:
        // few-shot episodes on the device runtime, the transfer experiment.
        .target(
            name: "SprigPipelines",
            dependencies: ["SprigRuntime", "SprigWriter", "SprigTrain", "SprigCompile", "SprigPrune"],
            swiftSettings: hostSIMD
        ),
        .executableTarget(
            name: "sprig",
            dependencies: ["SprigRuntime", "SprigWriter", "SprigTrain", "SprigCompile", "SprigPrune", "SprigPipelines"],
            swiftSettings: hostSIMD
        ),
        // Shared test support: naive references, finite differences, seeded RNG, corruption generator.
        .target(
            name: "SprigTestSupport",
            dependencies: ["SprigRuntime", "SprigTrain"],
            path: "Tests/SprigTestSupport"
        ),
        // Counts heap allocations in tests (interposes malloc in the test binary; glibc).
        .target(name: "CAllocCounter", path: "Tests/CAllocCounter"),
        .testTarget(
            name: "SprigRuntimeTests",
            dependencies: ["SprigRuntime", "SprigWriter", "SprigCompile", "SprigTestSupport", "CAllocCounter"]
        ),
        .testTarget(
            name: "SprigPruneTests",
            dependencies: ["SprigPrune", "SprigWriter", "SprigTrain", "SprigTestSupport"]
        ),
        .testTarget(
            name: "SprigTrainTests",
            dependencies: ["SprigTrain", "SprigRuntime", "SprigWriter", "SprigCompile", "SprigPrune", "SprigTestSupport"]
        ),
    ]
)
