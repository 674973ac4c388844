// Number formatting without Foundation (Embedded Swift has no float printing).

/// `x` with `decimals` digits after the point, rounded half away from zero.
/// Example: `fixed(3.14159, 2)` is "3.14"; `fixed(-0.005, 2)` is "-0.01".
func fixed(_ x: Double, _ decimals: Int) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x < 0 ? "-inf" : "inf" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let magnitude = (x < 0 ? -x : x) * scale
    guard magnitude < 9.0e15 else { return x < 0 ? "-big" : "big" }
    let r = UInt64((magnitude + 0.5).rounded(.down))
    let whole = r / UInt64(scale)
    var frac = String(r % UInt64(scale))
    while frac.utf8.count < decimals { frac = "0" + frac }
    let sign = x < 0 && r != 0 ? "-" : ""
    return decimals > 0 ? "\(sign)\(whole).\(frac)" : "\(sign)\(whole)"
}

/// A float in scientific-enough form for JSON and tables: 7 significant digits.
func number(_ x: Double) -> String {
    if x.isNaN || x.isInfinite { return "null" }
    let a = x < 0 ? -x : x
    if a == 0 { return "0" }
    if a >= 1e-3 && a < 1e9 {
        var digits = 6
        var t = a
        while t >= 10 && digits > 0 { t /= 10; digits -= 1 }
        return trimZeros(fixed(x, digits))
    }
    // Exponent form.
    var e = 0
    var m = a
    while m >= 10 { m /= 10; e += 1 }
    while m < 1 { m *= 10; e -= 1 }
    return (x < 0 ? "-" : "") + trimZeros(fixed(m, 6)) + "e\(e)"
}

/// "1.500" → "1.5", "2.000" → "2", "10" → "10" (on the ASCII bytes: `String`'s
/// `hasSuffix` and `removeLast` would bring in the grapheme tables, Words.swift).
private func trimZeros(_ s: String) -> String {
    var bytes = Array(s.utf8)
    guard bytes.contains(UInt8(ascii: ".")) else { return s }
    while bytes.last == UInt8(ascii: "0") { bytes.removeLast() }
    if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
    return String(decoding: bytes, as: UTF8.self)
}

/// Right-aligns `s` in `width` columns (a column per Unicode scalar, which is
/// exact for the digits and names printed here, short of combining marks).
func pad(_ s: String, _ width: Int) -> String {
    let n = s.unicodeScalars.count
    return n >= width ? s : String(repeating: " ", count: width - n) + s
}

/// Left-aligns `s` in `width` columns.
func padRight(_ s: String, _ width: Int) -> String {
    let n = s.unicodeScalars.count
    return n >= width ? s : s + String(repeating: " ", count: width - n)
}

func hex32(_ v: UInt32) -> String { hexDigits(UInt64(v), 8) }

/// Two hexadecimal digits: `hex8(8)` is "08".
func hex8(_ v: UInt8) -> String { hexDigits(UInt64(v), 2) }

private func hexDigits(_ v: UInt64, _ count: Int) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var s: [UInt8] = []
    for i in (0..<count).reversed() { s.append(digits[Int((v >> UInt64(4 * i)) & 0xF)]) }
    return String(decoding: s, as: UTF8.self)
}

/// A JSON string literal (quotes and control characters escaped).
func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default:
            if u.value < 0x20 { out += "\\u00" + hex8(UInt8(u.value)) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}
