// A minimal reader of uncompressed IDX files (the MNIST format), for the
// device: image and label files as sprig-edge reads them.
//
//   u8 0, u8 0, u8 dtype (0x08 = unsigned byte), u8 ndim,
//   ndim × u32 big-endian dimensions, then the bytes, row-major.

struct IDXError: Error {
    var field: String
    var detail: String
}

/// A validated view of an IDX file's uint8 payload.
struct IDXView {
    var dims: [Int]
    var data: UnsafeRawBufferPointer

    /// Items along the first dimension.
    var count: Int { dims.first ?? 0 }
    /// Bytes per item (the product of the other dimensions; 1 for labels).
    var itemBytes: Int { dims.dropFirst().reduce(1, *) }

    func item(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: data[i * itemBytes ..< (i + 1) * itemBytes])
    }

    init(_ bytes: UnsafeRawBufferPointer) throws(IDXError) {
        guard bytes.count >= 4 else {
            throw IDXError(field: "header", detail: "file has \(bytes.count) bytes, needs at least 4")
        }
        guard bytes[0] == 0 && bytes[1] == 0 else {
            throw IDXError(field: "magic", detail: "first bytes are \(bytes[0]) \(bytes[1]), expected 0 0")
        }
        guard bytes[2] == 0x08 else {
            throw IDXError(field: "dtype", detail: "is 0x\(hex8(bytes[2])), expected 0x08 (unsigned byte)")
        }
        let ndim = Int(bytes[3])
        guard ndim >= 1 && ndim <= 4 else { throw IDXError(field: "ndim", detail: "is \(ndim), expected 1 to 4") }
        let header = 4 + 4 * ndim
        guard bytes.count >= header else {
            throw IDXError(field: "dims", detail: "file has \(bytes.count) bytes, the header needs \(header)")
        }
        var dims: [Int] = []
        var product = 1
        for k in 0..<ndim {
            var d: UInt32 = 0
            for j in 0..<4 { d = d << 8 | UInt32(bytes[4 + 4 * k + j]) }
            guard let v = Int(exactly: d) else { throw IDXError(field: "dims[\(k)]", detail: "is \(d), too large") }
            let (p, overflow) = product.multipliedReportingOverflow(by: v)
            guard !overflow else { throw IDXError(field: "dims[\(k)]", detail: "is \(d): the size overflows") }
            product = p
            dims.append(v)
        }
        let available = bytes.count - header
        guard available == product else {
            throw IDXError(field: "data length",
                           detail: "is \(available) bytes, the dimensions need \(product)")
        }
        self.dims = dims
        self.data = UnsafeRawBufferPointer(rebasing: bytes[header...])
    }
}
