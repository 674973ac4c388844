// Command-line parsing for `sprig`: declared options, positionals, --help.

import Foundation

/// A bad command line: printed with the command's usage, exit status 2.
struct UsageError: Error, CustomStringConvertible {
    var description: String
}

/// A failure on good usage (bad file, bad data): one line, exit status 1.
struct CommandError: Error, CustomStringConvertible {
    var description: String
}

/// One option a command accepts.
struct OptionSpec: Sendable {
    var name: String          // without the leading "--"
    var value: String?        // placeholder for the value, nil for a flag
    var help: String
    var defaultValue: String? = nil
}

/// A command of the `sprig` tool.
struct Command: Sendable {
    var name: String
    var summary: String
    var usage: String         // e.g. "sprig compile CKPT [options]"
    var positionals: ClosedRange<Int>
    var options: [OptionSpec]
    var details: String = ""
    var run: @Sendable (ParsedArguments) throws -> Void

    var help: String {
        var s = "\(summary)\n\nUsage: \(usage)\n"
        if !details.isEmpty { s += "\n\(details)\n" }
        let all = options + [OptionSpec(name: "help", value: nil, help: "Print this help.")]
        s += "\nOptions:\n"
        for o in all {
            var left = "  --\(o.name)"
            if let v = o.value { left += " \(v)" }
            left = left.padding(toLength: max(left.count, 28), withPad: " ", startingAt: 0)
            s += left + " " + o.help
            if let d = o.defaultValue { s += " (default: \(d))" }
            s += "\n"
        }
        return s
    }
}

/// Arguments after parsing against a command's declared options.
struct ParsedArguments {
    var positional: [String] = []
    var values: [String: String] = [:]
    var flags: Set<String> = []

    func flag(_ name: String) -> Bool { flags.contains(name) }

    func string(_ name: String, default value: String) -> String { values[name] ?? value }

    func string(_ name: String) -> String? { values[name] }

    func int(_ name: String, default value: Int, range: ClosedRange<Int> = Int.min...Int.max) throws -> Int {
        guard let text = values[name] else { return value }
        guard let v = Int(text.replacingOccurrences(of: "_", with: "")), range.contains(v) else {
            throw UsageError(description: "--\(name): '\(text)' is not a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    func double(_ name: String, default value: Double, range: ClosedRange<Double> = -Double.greatestFiniteMagnitude...Double.greatestFiniteMagnitude) throws -> Double {
        guard let text = values[name] else { return value }
        guard let v = Double(text), v.isFinite, range.contains(v) else {
            throw UsageError(description: "--\(name): '\(text)' is not a number in \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    func choice(_ name: String, default value: String, among choices: [String]) throws -> String {
        let v = values[name] ?? value
        guard choices.contains(v) else {
            throw UsageError(description: "--\(name): '\(v)' is not one of \(choices.joined(separator: ", "))")
        }
        return v
    }
}

/// Parses `words` against `command`'s options.
func parse(_ words: [String], for command: Command) throws -> ParsedArguments {
    var parsed = ParsedArguments()
    var i = 0
    let specs = Dictionary(uniqueKeysWithValues: command.options.map { ($0.name, $0) })
    while i < words.count {
        let w = words[i]
        i += 1
        if w == "--" {
            parsed.positional += words[i...]
            break
        }
        if w == "--help" || w == "-h" {
            parsed.flags.insert("help")
            continue
        }
        if w.hasPrefix("--") {
            var name = String(w.dropFirst(2))
            var inline: String? = nil
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let spec = specs[name] else {
                let close = command.options.map(\.name).filter { $0.hasPrefix(String(name.prefix(3))) }
                let hint = close.isEmpty ? "" : " (did you mean --\(close[0])?)"
                throw UsageError(description: "unknown option '--\(name)'\(hint)")
            }
            if spec.value == nil {
                guard inline == nil else { throw UsageError(description: "--\(name) takes no value") }
                parsed.flags.insert(name)
            } else if let v = inline {
                parsed.values[name] = v
            } else {
                guard i < words.count else { throw UsageError(description: "--\(name) needs a value (\(spec.value!))") }
                parsed.values[name] = words[i]
                i += 1
            }
            continue
        }
        if w.hasPrefix("-") && w.count > 1 && Double(w) == nil {
            throw UsageError(description: "unknown option '\(w)'")
        }
        parsed.positional.append(w)
    }
    if !parsed.flags.contains("help") && !command.positionals.contains(parsed.positional.count) {
        let want = command.positionals.lowerBound == command.positionals.upperBound
            ? "\(command.positionals.lowerBound)" : "\(command.positionals.lowerBound) to \(command.positionals.upperBound)"
        throw UsageError(description: "expected \(want) argument(s), got \(parsed.positional.count)")
    }
    return parsed
}

// MARK: Output

/// Writes to standard error (progress, warnings).
func printError(_ s: String) {
    FileHandle.standardError.write((s + "\n").data(using: .utf8)!)
}

/// One JSON object, keys in the given order, for `--json`.
struct JSONObject {
    private var parts: [String] = []

    mutating func set(_ key: String, _ value: Int) { parts.append("\"\(key)\":\(value)") }
    mutating func set(_ key: String, _ value: Double) { parts.append("\"\(key)\":" + jsonNumber(value)) }
    mutating func set(_ key: String, _ value: String) { parts.append("\"\(key)\":\(jsonQuote(value))") }
    mutating func set(_ key: String, _ value: Bool) { parts.append("\"\(key)\":\(value)") }
    mutating func set(_ key: String, raw: String) { parts.append("\"\(key)\":\(raw)") }

    var text: String { "{" + parts.joined(separator: ",") + "}" }
}

/// A JSON number, or null for NaN and infinities (JSON has neither).
func jsonNumber(_ value: Double) -> String { value.isFinite ? "\(value)" : "null" }

func jsonQuote(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

/// Formats bytes for people: "12,345 B (12.1 KiB)".
func bytesText(_ n: Int) -> String {
    let kib = Double(n) / 1024
    return kib < 1 ? "\(n) B" : String(format: "%d B (%.1f KiB)", n, kib)
}
