// Class names: the blob's `labels` metadata, UTF-8 names separated by ','
// (docs/blob-format.md, METADATA), one per output in output order.
//
//   "t-shirt,trouser,pullover"  →  className(0) = "t-shirt", className(2) = "pullover"
//
// Read in place, with no allocation: a name is a slice of the blob's bytes.

extension Model {
    /// Number of class names the blob stores (0 without a `labels` entry or with an empty one).
    public var classNameCount: Int {
        guard let labels = metadata(key: "labels"), labels.count > 0 else { return 0 }
        var count = 1
        for byte in labels where byte == UInt8(ascii: ",") { count += 1 }
        return count
    }

    /// The UTF-8 bytes of class `index`'s name, in place in the blob, or nil when the
    /// blob stores no names or `index` is not in `0..<classNameCount`.
    ///
    /// - Complexity: O(bytes of the `labels` entry).
    public func className(_ index: Int) -> UnsafeRawBufferPointer? {
        guard index >= 0, let labels = metadata(key: "labels"), labels.count > 0 else { return nil }
        var current = 0
        var start = 0
        for i in 0...labels.count {
            guard i == labels.count || labels[i] == UInt8(ascii: ",") else { continue }
            if current == index { return UnsafeRawBufferPointer(rebasing: labels[start..<i]) }
            current += 1
            start = i + 1
        }
        return nil
    }
}
