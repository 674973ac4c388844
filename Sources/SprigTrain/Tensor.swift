// Tensor: the trainer's one array type. Float32, contiguous, row-major.
//
// Layouts (the same as the device runtime, so the compiler copies weights without transposes):
//   images          [N][H][W][C]          NHWC, batch first, channels last
//   dense features  [N][F]
//   Dense weight    [Out][In]             bias [Out]
//   Conv2D weight   [KH][KW][Cin][Cout]   HWIO, bias [Cout]
//
// Tensor is a value type (a struct around a `[Float]`): copies are cheap (copy-on-write) and
// never alias, so a layer may keep its input for backward without fear that someone overwrites
// it. Hot loops must not go through `storage[i]` (each write checks uniqueness and bounds);
// they take `withUnsafeBufferPointer` / `withUnsafeMutableBufferPointer` once, outside the loop.
// Layers return freshly allocated outputs (`Tensor(uninitializedShape:)` skips the zero fill)
// and reuse only their private scratch (im2col columns and the like) across steps.
//
// Allocation policy: a training step frees and re-allocates the same few-MB activations every
// step. glibc's default returns such blocks to the kernel (mmap / trim), so each step pays page
// faults and kernel zeroing again, about 10% of a VGG step. The first tensor allocation therefore
// asks malloc (once per process, `mallopt`) to serve blocks up to 32 MB from its heap and not to
// trim it; the process keeps its peak footprint, as PyTorch's caching allocator does.

#if canImport(Glibc)
import Glibc

/// Initialised on first use: malloc keeps freed activation buffers for reuse (see above).
/// `mallopt` is not in Swift's Glibc module (malloc.h), so it is looked up by name; the
/// parameter numbers are glibc's stable ABI values from malloc.h.
let retainFreedMemory: Bool = {
    typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
    let mTrimThreshold: Int32 = -1, mMmapThreshold: Int32 = -3
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return false }
    let mallopt = unsafeBitCast(symbol, to: MallOpt.self)
    return mallopt(mMmapThreshold, 32 << 20) == 1 && mallopt(mTrimThreshold, Int32.max) == 1
}()
#else
let retainFreedMemory = false
#endif

/// A contiguous Float32 tensor in row-major order.
///
/// ```
/// var x = Tensor(zeros: [2, 3])        // [[0,0,0],[0,0,0]]
/// x[1, 2] = 5                          // storage[1*3 + 2]
/// let y = x.reshaped([3, 2])           // same storage, new shape
/// ```
public struct Tensor: Equatable, Sendable {
    /// Extent of each axis, outermost first. `[]` is a scalar holding one value.
    public var shape: [Int]
    /// The values, row-major; `storage.count == shape.reduce(1, *)`.
    public var storage: [Float]

    /// Wraps `storage` with `shape`.
    ///
    /// - Precondition: every extent is ≥ 0 and `storage.count` equals their product.
    public init(shape: [Int], storage: [Float]) {
        let count = Tensor.elementCount(shape)
        precondition(storage.count == count,
                     "Tensor: shape \(shape) needs \(count) values, got \(storage.count)")
        self.shape = shape
        self.storage = storage
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, repeating: 0)
    }

    /// A tensor filled with `value`.
    public init(shape: [Int], repeating value: Float) {
        _ = retainFreedMemory
        self.shape = shape
        self.storage = [Float](repeating: value, count: Tensor.elementCount(shape))
    }

    /// A tensor whose values are unspecified (no zero fill): for outputs that the caller writes
    /// in full before anything reads them.
    public init(uninitializedShape shape: [Int]) {
        _ = retainFreedMemory
        let count = Tensor.elementCount(shape)
        self.shape = shape
        self.storage = [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    /// Product of the extents.
    ///
    /// - Precondition: every extent is ≥ 0.
    public static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape {
            precondition(d >= 0, "Tensor: negative extent in shape \(shape)")
            n *= d
        }
        return n
    }

    /// Number of values.
    @inlinable public var count: Int { storage.count }
    /// Number of axes.
    @inlinable public var rank: Int { shape.count }

    /// The same values with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, storage: storage)
    }

    /// Row-major offset of a multi-index (checked).
    public func offset(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "Tensor: index \(index) has rank \(index.count), shape \(shape) has rank \(shape.count)")
        var o = 0
        for (i, d) in zip(index, shape) {
            precondition(i >= 0 && i < d, "Tensor: index \(index) out of bounds for shape \(shape)")
            o = o * d + i
        }
        return o
    }

    /// Element access by multi-index: slow and checked, for tests and small tools.
    public subscript(_ index: Int...) -> Float {
        get { storage[offset(index)] }
        set { storage[offset(index)] = newValue }
    }

    /// Sets every value to zero, keeping the allocation when it is not shared.
    public mutating func zero() {
        storage.withUnsafeMutableBufferPointer { p in
            if let base = p.baseAddress { base.update(repeating: 0, count: p.count) }
        }
    }

    /// Calls `body` with a pointer to the values.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer(body)
    }

    /// Calls `body` with a mutable pointer to the values (copies first if the storage is shared).
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeMutableBufferPointer(body)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = storage.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(head)\(storage.count > 8 ? ", …" : "")])"
    }
}
