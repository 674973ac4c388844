// libFuzzer target: the host `sprig` command line. The input is split at NUL
// bytes into words; the first picks one of sprig's real commands (by name, or
// by its byte modulo the command count), the rest go through Options.swift's
// `parse`, then every value through the typed accessors the commands use
// (int, double, choice) and every class list through ClassSelection.parse.
// Nothing is run: commands train, read and write files. Built by tools/fuzz
// with sprig's sources (less its main.swift), linked to its libraries.

import Foundation
import SprigTrain

let fuzzCommands: [Command] = [
    trainCommand, evalCommand, compileCommand, benchCommand,
    inspectCommand, runCommand, fixturesCommand, finetuneCommand,
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSprigArgs(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
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
    let first = words[0]
    let command = fuzzCommands.first { $0.name == first }
        ?? fuzzCommands[Int(first.utf8.first ?? 0) % fuzzCommands.count]
    guard let parsed = try? parse(Array(words.dropFirst()), for: command) else { return 0 }
    _ = command.help
    for spec in command.options {
        guard spec.value != nil else {
            _ = parsed.flag(spec.name)
            continue
        }
        _ = try? parsed.int(spec.name, default: 1, range: 1...65535)
        _ = try? parsed.int(spec.name, default: 0)
        _ = try? parsed.double(spec.name, default: 1, range: 1e-9...1e9)
        _ = try? parsed.choice(spec.name, default: "a", among: ["a", "f32", "q8"])
        if let text = parsed.string(spec.name), spec.name.contains("classes") {
            _ = try? ClassSelection.parse(text, present: Array(0...9))
        }
    }
    return 0
}
