// Image files: PNG and JPEG through libpng and libjpeg (the C shim CImageCodecs), binary
// PGM/PPM (P5/P6) parsed here; area-averaging resize; gray/RGB conversion.
//
// Shape legend:
//   H, W  rows, cols          C  channels, 1 (gray) or 3 (RGB)
//   pixels [UInt8]  H·W·C     row y, col x, channel c at (y·W + x)·C + c
//
// What each format gives (see Sources/CImageCodecs/include/sprig_image_codecs.h):
//   PNG   gray (1/2/4/8-bit) → C 1; RGB, palette → C 3; 16-bit scaled to 8; alpha dropped
//   JPEG  gray → C 1; colour → C 3 (baseline and progressive; CMYK refused)
//   PGM   P5 → C 1; PPM P6 → C 3; maxval 1...65535, scaled to 0...255 (rounded)
// The format is recognised by the file's first bytes, not by its name.

import CImageCodecs
import Foundation

/// One decoded image of 8-bit pixels.
public struct DecodedImage: Equatable, Sendable {
    public var height: Int
    public var width: Int
    /// 1 (gray) or 3 (RGB).
    public var channels: Int
    /// `height × width × channels` bytes, rows top to bottom, channels interleaved.
    public var pixels: [UInt8]

    public init(height: Int, width: Int, channels: Int, pixels: [UInt8]) {
        self.height = height
        self.width = width
        self.channels = channels
        self.pixels = pixels
    }

    /// `[height, width, channels]`.
    public var shape: [Int] { [height, width, channels] }
}

/// Decoding, encoding, resizing and channel conversion of single images.
public enum ImageCodec {
    /// The file name endings an image folder may hold (compared case-insensitively).
    public static let fileExtensions = ["png", "jpg", "jpeg", "pgm", "ppm"]

    /// Decodes the file at `path` (PNG, JPEG, PGM or PPM, told apart by its first bytes).
    ///
    /// - Throws: `DataError.io` when the file cannot be read; `DataError.image` naming the
    ///   file and the library's message for a corrupt, truncated or unsupported image.
    public static func decode(path: String) throws -> DecodedImage {
        try decode(try readFileBytes(atPath: path), path: path)
    }

    /// Decodes image bytes; `path` is only used in error messages.
    public static func decode(_ bytes: [UInt8], path: String) throws -> DecodedImage {
        if bytes.count >= 8, bytes[0] == 0x89, bytes[1] == 0x50, bytes[2] == 0x4E, bytes[3] == 0x47 {
            return try viaC(bytes, path: path, format: "PNG", sprig_png_decode)
        }
        if bytes.count >= 2, bytes[0] == 0xFF, bytes[1] == 0xD8 {
            return try viaC(bytes, path: path, format: "JPEG", sprig_jpeg_decode)
        }
        if bytes.count >= 2, bytes[0] == UInt8(ascii: "P"), bytes[1] == UInt8(ascii: "5") || bytes[1] == UInt8(ascii: "6") {
            return try decodePNM(bytes, path: path)
        }
        if bytes.count >= 2, bytes[0] == UInt8(ascii: "P"), (UInt8(ascii: "1")...UInt8(ascii: "4")).contains(bytes[1]) {
            throw DataError.image(path: path, detail: "plain (ASCII) PNM P\(Character(UnicodeScalar(bytes[1]))) is not read; "
                + "save it as binary P5 (gray) or P6 (RGB)")
        }
        if bytes.count >= 2, bytes[0] == 0x1F, bytes[1] == 0x8B {
            throw DataError.image(path: path, detail: "a gzip file, not an image; gunzip it first")
        }
        throw DataError.image(path: path, detail: bytes.isEmpty ? "empty file, not an image"
            : "not a PNG, JPEG, PGM (P5) or PPM (P6) file (unknown first bytes)")
    }

    private static func viaC(_ bytes: [UInt8], path: String, format: String,
                             _ decoder: (UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<sprig_image>?) -> Int32) throws -> DecodedImage {
        var image = sprig_image()
        defer { sprig_image_free(&image) }
        let status = bytes.withUnsafeBufferPointer { decoder($0.baseAddress, $0.count, &image) }
        guard status == 0, let base = image.bytes else {
            throw DataError.image(path: path, detail: "corrupt or unsupported \(format): \(message(of: &image))")
        }
        return DecodedImage(height: Int(image.height), width: Int(image.width), channels: Int(image.channels),
                            pixels: Array(UnsafeBufferPointer(start: base, count: image.byte_count)))
    }

    private static func message(of image: inout sprig_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    // MARK: PGM / PPM

    /// Parses binary PGM (P5) or PPM (P6): the magic, then width, height and maxval as
    /// decimal numbers separated by whitespace (a `#` starts a comment to the end of the
    /// line), then exactly one whitespace byte, then the samples: one byte each when
    /// maxval < 256, else two, big-endian. Samples are scaled to 0...255 as
    /// `(v·255 + maxval/2) / maxval`.
    ///
    /// - Throws: `DataError.image` naming the field (width, height, maxval, samples) for a
    ///   malformed or truncated file.
    public static func decodePNM(_ bytes: [UInt8], path: String) throws -> DecodedImage {
        let channels = bytes.count >= 2 && bytes[1] == UInt8(ascii: "6") ? 3 : 1
        let kind = channels == 3 ? "PPM" : "PGM"
        var position = 2
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0B || b == 0x0C }
        func number(_ field: String) throws -> Int {
            // Whitespace and comments before the number.
            while position < bytes.count {
                if isSpace(bytes[position]) { position += 1; continue }
                if bytes[position] == UInt8(ascii: "#") {
                    while position < bytes.count && bytes[position] != 0x0A && bytes[position] != 0x0D { position += 1 }
                    continue
                }
                break
            }
            var value = 0, digits = 0
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                value = value * 10 + Int(bytes[position] - UInt8(ascii: "0"))
                digits += 1
                position += 1
                guard value <= 1 << 20 else { throw DataError.image(path: path, detail: "\(kind) header \(field): number too large") }
            }
            guard digits > 0 else {
                throw DataError.image(path: path, detail: position >= bytes.count ? "\(kind) header truncated before \(field)"
                    : "\(kind) header \(field): expected a decimal number")
            }
            return value
        }
        let width = try number("width"), height = try number("height"), maxval = try number("maxval")
        guard (1...SPRIG_IMAGE_MAX_SIDE).contains(Int32(clamping: width)), (1...SPRIG_IMAGE_MAX_SIDE).contains(Int32(clamping: height)) else {
            throw DataError.image(path: path, detail: "\(kind) size \(width)×\(height): expected 1...\(SPRIG_IMAGE_MAX_SIDE) on each side")
        }
        guard (1...65535).contains(maxval) else {
            throw DataError.image(path: path, detail: "\(kind) maxval \(maxval): expected 1...65535")
        }
        guard position < bytes.count, isSpace(bytes[position]) else {
            throw DataError.image(path: path, detail: "\(kind) header: expected one whitespace byte after maxval")
        }
        position += 1
        let samples = width * height * channels, bytesPerSample = maxval < 256 ? 1 : 2
        let available = bytes.count - position
        guard available >= samples * bytesPerSample else {
            throw DataError.image(path: path, detail: "\(kind) samples truncated: \(available) bytes, \(samples * bytesPerSample) needed "
                + "for \(width)×\(height)×\(channels)")
        }
        var pixels = [UInt8](repeating: 0, count: samples)
        for i in 0..<samples {
            let v = bytesPerSample == 1 ? Int(bytes[position + i]) : Int(bytes[position + 2 * i]) << 8 | Int(bytes[position + 2 * i + 1])
            guard v <= maxval else {
                throw DataError.image(path: path, detail: "\(kind) sample \(i) is \(v), above maxval \(maxval)")
            }
            pixels[i] = maxval == 255 ? UInt8(v) : UInt8((v * 255 + maxval / 2) / maxval)
        }
        return DecodedImage(height: height, width: width, channels: channels, pixels: pixels)
    }

    // MARK: Encoding (fixtures, test folders, `sprig data --out` is IDX only)

    /// PNG bytes of 8-bit pixels: `channels` 1, 2 (gray+alpha), 3 or 4 (RGBA); or, with a
    /// `palette` of RGB triples, `pixels` are palette indices and `channels` is 1.
    public static func encodePNG(_ pixels: [UInt8], width: Int, height: Int, channels: Int,
                                 palette: [UInt8]? = nil) throws -> [UInt8] {
        var image = sprig_image()
        defer { sprig_image_free(&image) }
        guard pixels.count == width * height * channels else {
            throw DataError.invalidArgument(name: "PNG pixels", value: "\(pixels.count)", expected: "\(width)×\(height)×\(channels)")
        }
        let status = pixels.withUnsafeBufferPointer { px in
            if let palette {
                return palette.withUnsafeBufferPointer {
                    sprig_png_encode(px.baseAddress, Int32(width), Int32(height), Int32(channels), $0.baseAddress, Int32(palette.count / 3), &image)
                }
            }
            return sprig_png_encode(px.baseAddress, Int32(width), Int32(height), Int32(channels), nil, 0, &image)
        }
        guard status == 0, let base = image.bytes else {
            throw DataError.image(path: "(PNG encoder)", detail: message(of: &image))
        }
        return Array(UnsafeBufferPointer(start: base, count: image.byte_count))
    }

    /// JPEG bytes of 8-bit pixels (`channels` 1 or 3) at `quality` 1...100.
    public static func encodeJPEG(_ pixels: [UInt8], width: Int, height: Int, channels: Int, quality: Int = 95,
                                  progressive: Bool = false) throws -> [UInt8] {
        var image = sprig_image()
        defer { sprig_image_free(&image) }
        guard pixels.count == width * height * channels else {
            throw DataError.invalidArgument(name: "JPEG pixels", value: "\(pixels.count)", expected: "\(width)×\(height)×\(channels)")
        }
        let status = pixels.withUnsafeBufferPointer {
            sprig_jpeg_encode($0.baseAddress, Int32(width), Int32(height), Int32(channels), Int32(quality), progressive ? 1 : 0, &image)
        }
        guard status == 0, let base = image.bytes else {
            throw DataError.image(path: "(JPEG encoder)", detail: message(of: &image))
        }
        return Array(UnsafeBufferPointer(start: base, count: image.byte_count))
    }

    // MARK: Resizing and channels

    /// Resizes by area averaging: output pixel `(y, x)` is the mean of the source area
    /// `[y·H/h, (y+1)·H/h) × [x·W/w, (x+1)·W/w)`, each source pixel weighted by the
    /// fraction of it inside that area, rounded to the nearest byte. Works both ways
    /// (shrinking averages, enlarging repeats), per channel.
    ///
    /// ```swift
    /// // 1×4 gray [0, 100, 200, 255] → 1×2: [(0+100)/2, (200+255)/2] = [50, 228] (227.5 rounds up)
    /// // 1×3 [0, 90, 180] → 1×2: [(0 + 90/2)/1.5, (90/2 + 180)/1.5] = [30, 150]
    /// ```
    ///
    /// - Complexity: O(h·W·C + h·w·C·(W/w+1)), separable (rows, then columns).
    public static func resizeArea(_ image: DecodedImage, height h: Int, width w: Int) -> DecodedImage {
        if image.height == h && image.width == w { return image }
        let (H, W, C) = (image.height, image.width, image.channels)
        // Weights of source index k in output index j along an axis of n → m.
        func weights(_ n: Int, _ m: Int) -> [[(Int, Double)]] {
            (0..<m).map { j in
                let lo = Double(j) * Double(n) / Double(m), hi = Double(j + 1) * Double(n) / Double(m)
                var list: [(Int, Double)] = []
                var k = Int(lo.rounded(.down))
                while k < n && Double(k) < hi {
                    let overlap = min(hi, Double(k + 1)) - max(lo, Double(k))
                    if overlap > 1e-12 { list.append((k, overlap / (hi - lo))) }
                    k += 1
                }
                return list
            }
        }
        let wy = weights(H, h), wx = weights(W, w)
        // Rows first: H×W×C → h×W×C (in Double), then columns.
        var rows = [Double](repeating: 0, count: h * W * C)
        for y in 0..<h {
            for (k, f) in wy[y] {
                for i in 0..<(W * C) { rows[y * W * C + i] += f * Double(image.pixels[k * W * C + i]) }
            }
        }
        var out = [UInt8](repeating: 0, count: h * w * C)
        for y in 0..<h {
            for x in 0..<w {
                for c in 0..<C {
                    var sum = 0.0
                    for (k, f) in wx[x] { sum += f * rows[(y * W + k) * C + c] }
                    out[(y * w + x) * C + c] = UInt8(max(0, min(255, (sum + 1e-9).rounded())))
                }
            }
        }
        return DecodedImage(height: h, width: w, channels: C, pixels: out)
    }

    /// Converts between gray and RGB: gray → RGB copies the value into all three channels;
    /// RGB → gray is the ITU-R BT.601 luma `0.299·R + 0.587·G + 0.114·B`, rounded.
    ///
    /// ```swift
    /// // RGB (255, 0, 0) → gray 76 (0.299·255 = 76.2); gray 7 → RGB (7, 7, 7)
    /// ```
    public static func convert(_ image: DecodedImage, toChannels channels: Int) -> DecodedImage {
        if image.channels == channels { return image }
        let n = image.height * image.width
        var out = [UInt8](repeating: 0, count: n * channels)
        if image.channels == 1 {
            for i in 0..<n { for c in 0..<channels { out[i * channels + c] = image.pixels[i] } }
        } else {
            for i in 0..<n {
                let r = Double(image.pixels[3 * i]), g = Double(image.pixels[3 * i + 1]), b = Double(image.pixels[3 * i + 2])
                out[i] = UInt8(min(255, (0.299 * r + 0.587 * g + 0.114 * b).rounded()))
            }
        }
        return DecodedImage(height: image.height, width: image.width, channels: channels, pixels: out)
    }
}
