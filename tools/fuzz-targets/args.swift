// libFuzzer target: sprig-edge's command line. The input is split at NUL
// bytes into words and run through edgeMain (paths that do not exist are
// reported as errors; nothing is written). Built with the runtime and the
// sprig-edge sources (less its main.swift).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzArgs(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var words: [String] = []
    var current: [UInt8] = []
    for i in 0..<min(size, 4096) {
        if data[i] == 0 {
            words.append(String(decoding: current, as: UTF8.self))
            current = []
        } else {
            current.append(data[i])
        }
    }
    words.append(String(decoding: current, as: UTF8.self))
    // Keep the fuzzer off the file system's writable paths.
    if words.contains(where: { $0.hasPrefix("--out") || $0 == "finetune" }) { return 0 }
    // bench times as many invokes as asked: parse its words, do not run it.
    if words.first == "bench" {
        _ = try? Arguments(words.dropFirst(), command: "bench")
        return 0
    }
    _ = edgeMain(words)
    return 0
}
