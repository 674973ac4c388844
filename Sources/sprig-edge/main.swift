// sprig-edge: the device CLI. SprigRuntime plus a thin libc layer.
// See docs/cli.md. Exit status: 0 success, 1 bad input, 2 bad usage.

#if hasFeature(Embedded)
/// Entry point for Embedded builds: Targets/<triple>/start.c calls this from `main`.
@_cdecl("sprig_edge_entry")
public func sprigEdgeEntry(_ argc: Int32, _ argv: UnsafePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    edgeMain(arguments(argc, argv))
}
#else
c_exit(edgeMain(arguments(CommandLine.argc, CommandLine.unsafeArgv)))
#endif

func arguments(_ argc: Int32, _ argv: UnsafePointer<UnsafeMutablePointer<CChar>?>) -> [String] {
    var out: [String] = []
    for i in 1..<max(1, Int(argc)) {
        if let p = argv[i] { out.append(String(cString: p)) }
    }
    return out
}
