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
    while frac.count < decimals { frac = "0" + frac }
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

private func trimZeros(_ s: String) -> String {
    guard s.contains(".") else { return s }
    var t = s
    while t.hasSuffix("0") { t.removeLast() }
    if t.hasSuffix(".") { t.removeLast() }
    return t
}

/// Right-aligns `s` in `width` columns.
func pad(_ s: String, _ width: Int) -> String {
    var t = s
    while t.count < width { t = " " + t }
    return t
}

/// Left-aligns `s` in `width` columns.
func padRight(_ s: String, _ width: Int) -> String {
    var t = s
    while t.count < width { t += " " }
    return t
}

func hex32(_ v: UInt32) -> String {
    let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
    var s = ""
    for i in (0..<8).reversed() { s.append(digits[Int((v >> UInt32(4 * i)) & 0xF)]) }
    return s
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
            if u.value < 0x20 { out += "\\u00" + String(hex32(u.value).suffix(2)) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}
