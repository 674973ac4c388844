// Buffers fenced by inaccessible pages, so that a kernel that reads or writes
// one element outside its range crashes the test instead of passing silently.
import Glibc

/// `count` elements placed flush against a `PROT_NONE` page: after the last
/// element (`Placement.end`, catches overruns) or before the first
/// (`Placement.start`, catches underruns). The memory is mapped, never shared.
public final class GuardedBuffer<Element> {
    public enum Placement { case start, end }

    public let pointer: UnsafeMutablePointer<Element>
    public let count: Int
    private let base: UnsafeMutableRawPointer
    private let mappedBytes: Int

    /// A buffer holding `values`.
    public init(_ values: [Element], placement: Placement) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let bytes = values.count * MemoryLayout<Element>.stride
        let dataPages = (bytes + page - 1) / page
        mappedBytes = (dataPages + 2) * page
        guard let mapped = mmap(nil, mappedBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapped != MAP_FAILED else {
            fatalError("GuardedBuffer: mmap of \(mappedBytes) bytes failed")
        }
        base = mapped
        // Fence pages on both sides; data flush against the chosen one.
        mprotect(base, page, PROT_NONE)
        mprotect(base + (dataPages + 1) * page, page, PROT_NONE)
        let start: UnsafeMutableRawPointer
        switch placement {
        case .start: start = base + page
        case .end: start = base + (dataPages + 1) * page - bytes
        }
        pointer = start.bindMemory(to: Element.self, capacity: max(values.count, 1))
        count = values.count
        values.withUnsafeBufferPointer { source in
            if let s = source.baseAddress { pointer.update(from: s, count: values.count) }
        }
    }

    /// A buffer of `count` copies of `value`.
    public convenience init(repeating value: Element, count: Int, placement: Placement) {
        self.init([Element](repeating: value, count: count), placement: placement)
    }

    deinit {
        munmap(base, mappedBytes)
    }

    /// The current contents.
    public var array: [Element] {
        Array(UnsafeBufferPointer(start: pointer, count: count))
    }

    /// A read-only pointer to the first element.
    public var readOnly: UnsafePointer<Element> { UnsafePointer(pointer) }
}
