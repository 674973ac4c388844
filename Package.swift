// swift-tools-version:6.0
// Sprig: embedded few-shot learning. See docs/architecture.md for the module map.
import PackageDescription
import Foundation

// The host build targets the build machine's instruction set (docs/architecture.md, "Instruction
// sets"). `SPRIG_ISA` picks it: `native` (the default: read from /proc/cpuinfo when this manifest
// is evaluated), `avx512-vnni`, `avx-vnni`, `avx2` (the portable build) or `baseline` (x86-64 SSE2).
// Without AVX2+FMA, SIMD8 FMA lowers to `fmaf` calls (~100× slower). The level is also a
// compilation condition (SPRIG_ISA_AVX512_VNNI, SPRIG_ISA_AVX_VNNI, SPRIG_ISA_AVX2), so that the
// int8 kernels pick the dot-product instructions and `sprig bench` can say what it runs.
// A cross build (tools/cross-build sets SPRIG_CROSS=1) must not see these flags: clang rejects -mavx2
// for aarch64, and `.when(platforms:)` does not keep them off a `--triple` build.
let crossBuild = Context.environment["SPRIG_CROSS"] != nil

/// The instruction-set level of the build machine, from the `flags` line of /proc/cpuinfo.
func detectedISA() -> String {
    guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return "avx2" }
    let flags = Set(line.split(separator: " ").map(String.init))
    func has(_ names: String...) -> Bool { names.allSatisfy(flags.contains) }
    if has("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni") { return "avx512-vnni" }
    if has("avx2", "fma", "avx_vnni") { return "avx-vnni" }
    if has("avx2", "fma") { return "avx2" }
    return "baseline"
}

var hostSIMD: [SwiftSetting] = []
var isaTarget: [SwiftSetting] = []
// Without FMA in the target, Float's fused multiply-add becomes a call to libm's fmaf.
var fmaLibrary: [LinkerSetting] = []
#if arch(x86_64)
if !crossBuild {
    let asked = Context.environment["SPRIG_ISA"] ?? "native"
    let isa = asked == "native" ? detectedISA() : asked
    let avx2 = ["-Xcc", "-mavx2", "-Xcc", "-mfma"]
    switch isa {
    case "avx512-vnni":
        hostSIMD = [.unsafeFlags(avx2 + ["-Xcc", "-mavx512f", "-Xcc", "-mavx512bw", "-Xcc", "-mavx512vl",
                                         "-Xcc", "-mavx512dq", "-Xcc", "-mavx512vnni"]),
                    .define("SPRIG_ISA_AVX512_VNNI"), .define("SPRIG_ISA_VNNI"), .define("SPRIG_ISA_AVX2")]
    case "avx-vnni":
        hostSIMD = [.unsafeFlags(avx2 + ["-Xcc", "-mavxvnni"]), .define("SPRIG_ISA_AVX_VNNI"),
                    .define("SPRIG_ISA_VNNI"), .define("SPRIG_ISA_AVX2")]
    case "avx2":
        hostSIMD = [.unsafeFlags(avx2), .define("SPRIG_ISA_AVX2")]
    case "baseline":
        hostSIMD = []
        fmaLibrary = [.linkedLibrary("m")]
    default:
        fatalError("SPRIG_ISA=\(asked): expected native, avx512-vnni, avx-vnni, avx2 or baseline")
    }
    // SprigISA calls LLVM intrinsics through `Builtin`, which only a -parse-stdlib module sees.
    isaTarget = [.unsafeFlags(["-parse-stdlib"])]
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
            dependencies: ["SprigISA"],
            swiftSettings: hostSIMD
        ),
        // The dot-product instructions the int8 kernels use (VNNI on x86-64), as LLVM intrinsics:
        // one small audited file, empty where the build has none.
        .target(
            name: "SprigISA",
            swiftSettings: hostSIMD + isaTarget
        ),
        // Device CLI: the runtime plus a thin libc layer declared with @_extern(c).
        .executableTarget(
            name: "sprig-edge",
            dependencies: ["SprigRuntime"],
            swiftSettings: [.enableExperimentalFeature("Extern")] + hostSIMD,
            linkerSettings: fmaLibrary
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
        // Debian's libpng and libjpeg(-turbo) behind a C shim: both report errors by longjmp
        // (or exit), which must not cross Swift frames, so every call is made from C between a
        // setjmp and its return (Sources/CImageCodecs/include/sprig_image_codecs.h).
        .target(
            name: "CImageCodecs",
            linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("jpeg")]
        ),
        .target(
            name: "SprigTrain",
            dependencies: ["SprigRuntime", "CZlib", "CImageCodecs"],
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
            dependencies: ["SprigRuntime", "SprigWriter", "SprigTrain", "SprigCompile", "SprigTestSupport", "CAllocCounter"]
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
