/// A growable stack in memory it manages itself, for `JSONEncodingSink`'s frames and members:
/// elements are read and changed in place, with no uniqueness check and (in release builds) no
/// bounds check.
///
/// It owns its memory: the owner calls `deallocate()` once.
struct JSONStack<Element> {
    private(set) var base: UnsafeMutablePointer<Element>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int) {
        self.capacity = Swift.max(capacity, 4)
        self.base = .allocate(capacity: self.capacity)
    }

    func deallocate() {
        base.deinitialize(count: count)
        base.deallocate()
    }

    subscript(index: Int) -> Element {
        unsafeAddress {
            assert(index >= 0 && index < count, "JSONStack index \(index) out of 0..<\(count)")
            return UnsafePointer(base + index)
        }
        unsafeMutableAddress {
            assert(index >= 0 && index < count, "JSONStack index \(index) out of 0..<\(count)")
            return base + index
        }
    }

    var isEmpty: Bool { count == 0 }

    /// Elements `range`, valid until the stack changes.
    func elements(_ range: Range<Int>) -> UnsafeBufferPointer<Element> {
        UnsafeBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    @inline(__always)
    mutating func append(_ element: Element) {
        if _slowPath(count == capacity) { grow() }
        (base + count).initialize(to: element)
        count &+= 1
    }

    @inline(never)
    private mutating func grow() {
        let newCapacity = capacity &* 2
        let newBase = UnsafeMutablePointer<Element>.allocate(capacity: newCapacity)
        newBase.moveInitialize(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    mutating func removeLast(_ n: Int = 1) {
        assert(n <= count)
        (base + (count &- n)).deinitialize(count: n)
        count &-= n
    }

    mutating func removeAll() { removeLast(count) }
}
