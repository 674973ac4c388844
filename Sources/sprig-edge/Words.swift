// Command-line words compared as bytes.
//
// Swift's `String ==`, `hasPrefix` and `count` work on canonical equivalence and
// grapheme clusters, which need the Unicode normalisation and grapheme tables and
// their code: about 57 KB of the static aarch64 binary, a fifth of it
// (docs/size-history.md). A shell hands over bytes, and every word sprig-edge
// compares is ASCII, so bytes are the right comparison here and cost nothing.

/// A word of the command line, equal to another when their UTF-8 bytes are.
/// `switch Word(w) { case "--json": ... }` matches byte for byte.
struct Word: Equatable, ExpressibleByStringLiteral {
    let text: String

    init(_ text: String) { self.text = text }
    init(stringLiteral value: StaticString) { text = value.description }

    static func == (a: Word, b: Word) -> Bool { a.text.utf8.elementsEqual(b.text.utf8) }

    func starts(with prefix: StaticString) -> Bool {
        let p = UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
        return text.utf8.starts(with: p)
    }
}

/// The value stored under `key` in a list of pairs (a dictionary would hash, and
/// hashing a String normalises it).
func lookup<Value>(_ pairs: [(String, Value)], _ key: String) -> Value? {
    for (k, v) in pairs where Word(k) == Word(key) { return v }
    return nil
}
