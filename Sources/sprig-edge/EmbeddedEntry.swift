// Entry point of Embedded builds (no CommandLine there): Targets/<triple>/start.c
// defines `main` and calls this with argc and argv.

@_cdecl("sprig_edge_entry")
public func sprigEdgeEntry(_ argc: Int32, _ argv: UnsafePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    edgeMain(arguments(argc, argv))
}

func arguments(_ argc: Int32, _ argv: UnsafePointer<UnsafeMutablePointer<CChar>?>) -> [String] {
    var out: [String] = []
    for i in 1..<max(1, Int(argc)) {
        if let p = argv[i] { out.append(String(cString: p)) }
    }
    return out
}
