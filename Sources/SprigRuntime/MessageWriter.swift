// Error messages without `String`: each error writes its sentence, piece by
// piece, into a byte buffer. On a microcontroller `String` and its Unicode
// machinery would cost more flash than the blob reader (docs/size-history.md).

/// Writes a message's UTF-8 into a caller's buffer, like `snprintf`: bytes
/// past `capacity` are dropped and ``count`` keeps the full length, so a
/// first pass with no buffer measures the message.
///
/// ```swift
/// var w = MessageWriter(into: buffer, capacity: 8)
/// w.say("needs % bytes, has %", 64, 0)  // buffer holds "needs 64"; w.count is 21
/// ```
public struct MessageWriter {
    let start: UnsafeMutablePointer<UInt8>?
    let capacity: Int
    /// Bytes of the whole message so far, written or not.
    public private(set) var count = 0

    /// A writer that stores at most `capacity` bytes at `start` (none when nil).
    public init(into start: UnsafeMutablePointer<UInt8>?, capacity: Int) {
        self.start = start
        self.capacity = start == nil ? 0 : max(0, capacity)
    }

    mutating func byte(_ b: UInt8) {
        if count < capacity, let start { start[count] = b }
        count &+= 1
    }

    /// `text` as it is.
    public mutating func text(_ text: StaticString) {
        let p = text.utf8Start
        for i in 0..<text.utf8CodeUnitCount { byte(p[i]) }
    }

    /// `template` with each `%` replaced by the next of `a`, `b`, `c`, `d`, in decimal:
    /// `say("op #% reads tensor #%", 3, 7)` writes "op #3 reads tensor #7".
    public mutating func say(_ template: StaticString, _ a: Int = 0, _ b: Int = 0, _ c: Int = 0, _ d: Int = 0) {
        let p = template.utf8Start
        var next = 0
        for i in 0..<template.utf8CodeUnitCount {
            guard p[i] == UInt8(ascii: "%") else { byte(p[i]); continue }
            decimal(next == 0 ? a : next == 1 ? b : next == 2 ? c : d)
            next += 1
        }
    }

    /// `v` in decimal: `decimal(-42)` writes "-42"; `Int.min` too.
    public mutating func decimal(_ v: Int) {
        if v < 0 { byte(UInt8(ascii: "-")) }
        let m = v.magnitude
        var power: UInt = 1
        while m / power >= 10 { power &*= 10 }
        while power > 0 {
            byte(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: m / power % 10))
            power /= 10
        }
    }

    /// The low `digits` hexadecimal digits of `v`, lower case, without a prefix:
    /// `hex(0x2a, digits: 8)` writes "0000002a".
    public mutating func hex(_ v: UInt64, digits: Int) {
        let symbols: StaticString = "0123456789abcdef"
        var i = digits
        while i > 0 {
            i -= 1
            byte(symbols.utf8Start[Int(truncatingIfNeeded: (v >> UInt64(4 * i)) & 0xF)])
        }
    }

    /// `x` to three significant digits in exponent form (Embedded Swift prints
    /// no floats): `approximate(3.4e38)` writes "3.40e38",
    /// `approximate(-0.000123)` "-1.23e-4", `approximate(0)` "0".
    public mutating func approximate(_ x: Double) {
        if x.isNaN { return text("nan") }
        if x.isInfinite { return text(x < 0 ? "-inf" : "inf") }
        if x == 0 { return text("0") }
        var m = x < 0 ? -x : x
        var e = 0
        while m >= 10 { m /= 10; e += 1 }
        while m < 1 { m *= 10; e -= 1 }
        var digits = Int((m * 100).rounded(.toNearestOrAwayFromZero))  // 100 ... 1000
        if digits >= 1000 { digits /= 10; e += 1 }
        if x < 0 { byte(UInt8(ascii: "-")) }
        say("%.%%e%", digits / 100, digits / 10 % 10, digits % 10, e)
    }
}

/// The message `writeMessage` produces, as a `String` (for host tools; the C
/// API writes into the caller's buffer instead).
func messageString(_ writeMessage: (inout MessageWriter) -> Void) -> String {
    var measure = MessageWriter(into: nil, capacity: 0)
    writeMessage(&measure)
    return String(unsafeUninitializedCapacity: measure.count) { buffer in
        var w = MessageWriter(into: buffer.baseAddress, capacity: buffer.count)
        writeMessage(&w)
        return Swift.min(w.count, buffer.count)
    }
}
