import Foundation
import NIOConcurrencyHelpers

/// The state of one `RPCJSONEncoder` run: the output bytes and a stack of frames, one per value
/// being encoded (a struct's object, an array, a single value, or a value not yet started).
///
/// Bytes go straight to `out` in the order the `Encodable` code sends them; nothing is boxed into a
/// tree. An object's members are written as they come (synthesized `Codable` sends them in
/// declaration order) and remembered as (raw key, byte offset) entries; when the object ends and
/// its keys were not already ascending, its members are copied out and written back sorted.
///
/// `Encoder` and its containers have no "end" call: a frame ends when the `encode(to:)` that owns
/// it returns, or when a container further down the stack is written to again (a nested container
/// is finished once its parent moves on). Containers carry their frame's index and id; a write to
/// a frame that has already ended cannot be streamed, so the run is marked `.fallback` and the
/// value is encoded again by Foundation (`RPCJSONEncoder` does that).
///
/// A sink is used by one encode at a time: it is out of the pool while in use, which is what makes
/// `@unchecked Sendable` safe.
final class JSONEncodingSink: @unchecked Sendable {
    enum Failure {
        /// A pattern the streaming writer cannot reproduce exactly (a container used after a later
        /// sibling was written, keys equal only under Unicode canonical equivalence, ...).
        case fallback
        /// A misuse that Foundation's encoder traps on (`preconditionFailure`); answered with an
        /// `EncodingError` instead.
        case invalid(String)
    }

    /// How a frame is reached from its parent, for `codingPath`.
    enum PathKey {
        case none
        case index(Int)
        case key(any CodingKey)
        case superKey
    }

    struct Frame {
        enum Kind: UInt8 { case pending, single, object, array }
        var kind: Kind
        /// Keys did not arrive strictly ascending: sort (and drop duplicates) at the end.
        var sortNeeded = false
        var nonASCIIKeys = false
        var id: UInt32
        /// Objects and arrays on the path down to here, this one included if it is one.
        var depth: Int
        /// Offset in `out` where the value begins.
        var start: Int
        /// Objects: index in `entries` of the first member.
        var firstEntry = 0
        /// Members or elements written so far.
        var count = 0
        var key: PathKey
        /// Made by `nestedContainer`/`nestedUnkeyedContainer`: JSONEncoder leaves such keys out of the
        /// coding path of the values encoded inside (and of their errors), though the container's
        /// own `codingPath` has them.
        var isNestedContainer = false
    }

    struct Entry {
        /// Offset in `out` of the member's opening quote (just after the comma before it).
        var start: Int
        /// The key's raw UTF-8 in `keyBytes`.
        var keyStart: Int
        var keyCount: Int
        /// The key's first eight bytes, big-endian, zero-padded: most keys compare on this alone.
        var prefix: UInt64
    }

    /// JSONWriter refuses arrays and objects nested this deep (it throws after building the tree);
    /// arrays of numbers or strings count too.
    static let maximumDepth = 512

    // Only the encode that took this sink from the pool touches it, on one thread, and no access
    // overlaps another: the dynamic exclusivity checks (debug builds) are skipped on the hot state.
    @exclusivity(unchecked) var out = JSONOutput(capacity: 4096)
    @exclusivity(unchecked) private var scratch = JSONOutput(capacity: 1024)
    @exclusivity(unchecked) private var keyBytes = JSONOutput(capacity: 256)
    @exclusivity(unchecked) private(set) var frames = JSONStack<Frame>(capacity: 16)
    @exclusivity(unchecked) private var entries = JSONStack<Entry>(capacity: 64)
    @exclusivity(unchecked) private var nextID: UInt32 = 1
    /// The last type found not to be one `encodeSpecial` writes.
    @exclusivity(unchecked) private var lastComposite: ObjectIdentifier?
    private(set) var failure: Failure?
    private(set) var tooDeep = false
    private(set) var topLevelIsEmpty = false

    init() {}

    deinit {
        out.deallocate()
        scratch.deallocate()
        keyBytes.deallocate()
        frames.deallocate()
        entries.deallocate()
    }

    func reset() {
        out.count = 0
        scratch.count = 0
        keyBytes.count = 0
        frames.removeAll()
        entries.removeAll()
        lastComposite = nil
        nextID = 1
        failure = nil
        tooDeep = false
        topLevelIsEmpty = false
    }

    /// Memory a pooled sink keeps; a sink that grew past the pool's limit is dropped instead.
    var retainedBytes: Int { out.capacity + scratch.capacity + keyBytes.capacity }

    func fail(_ failure: Failure) {
        if self.failure == nil { self.failure = failure }
    }

    // MARK: Frames

    /// Makes frame `index` the top of the stack, ending the frames above it (nested containers and
    /// super encoders whose parent is written to again). False when the frame has already ended.
    @inline(__always)
    func resolve(_ index: Int, _ id: UInt32) -> Bool {
        if _fastPath(index == frames.count &- 1 && frames[index].id == id) { return true }
        return resolveSlow(index, id)
    }

    @inline(never)
    private func resolveSlow(_ index: Int, _ id: UInt32) -> Bool {
        guard index >= 0, index < frames.count, frames[index].id == id else {
            fail(.fallback)
            return false
        }
        while frames.count &- 1 > index { finishTop() }
        return true
    }

    /// Pushes a frame for a value about to be written; returns its index and id.
    @inline(__always)
    func pushFrame(key: PathKey, isNestedContainer: Bool = false) -> (index: Int, id: UInt32) {
        let index = frames.count
        let id = nextID
        nextID &+= 1
        let depth = index > 0 ? frames[index &- 1].depth : 0
        frames.append(Frame(kind: .pending, id: id, depth: depth, start: out.count, key: key, isNestedContainer: isNestedContainer))
        return (index, id)
    }

    /// An array written in one go inside frame `index` (-1: at the top) still counts as a level.
    @inline(__always)
    private func noteArray(in index: Int) {
        let depth = (index >= 0 && index < frames.count ? frames[index].depth : 0) &+ 1
        if depth >= Self.maximumDepth { tooDeep = true }
    }

    /// Ends frame `index` (and anything above it) after its `encode(to:)` returned.
    @inline(__always)
    func endFrame(_ index: Int, _ id: UInt32) {
        guard index < frames.count, frames[index].id == id else {
            fail(.fallback)
            return
        }
        while frames.count > index { finishTop() }
    }

    private func finishTop() {
        let index = frames.count &- 1
        switch frames[index].kind {
        case .pending:
            // Foundation: a value that encoded nothing is `{}`; at the top level it is an error.
            if index == 0 { topLevelIsEmpty = true } else { out.append("{}") }
        case .single:
            break
        case .object:
            finishObject(index)
        case .array:
            out.append(UInt8(ascii: "]"))
        }
        frames.removeLast()
    }

    private func open(_ index: Int, as kind: Frame.Kind) {
        frames[index].kind = kind
        frames[index].firstEntry = entries.count
        frames[index].count = 0
        let depth = (index > 0 ? frames[index &- 1].depth : 0) &+ 1
        frames[index].depth = depth
        if depth >= Self.maximumDepth { tooDeep = true }
        out.append(kind == .object ? UInt8(ascii: "{") : UInt8(ascii: "["))
    }

    /// A frame index no frame has: containers that could not be opened point here, so that every
    /// write to them is refused.
    static let invalidFrame = Int.max

    /// `encoder.container(keyedBy:)` on frame `index`; false when it cannot be (see `failure`).
    func openObject(_ index: Int, _ id: UInt32) -> Bool {
        guard resolve(index, id) else { return false }
        switch frames[index].kind {
        case .pending: open(index, as: .object)
        case .object: break  // asked again: the same container, as Foundation does
        case .single:
            singleThenContainer(index)
            return false
        case .array:
            fail(.invalid("Attempt to push new keyed encoding container when already previously encoded at this path."))
            return false
        }
        return true
    }

    /// `encoder.unkeyedContainer()` on frame `index`; false when it cannot be (see `failure`).
    func openArray(_ index: Int, _ id: UInt32) -> Bool {
        guard resolve(index, id) else { return false }
        switch frames[index].kind {
        case .pending: open(index, as: .array)
        case .array: break
        case .single:
            singleThenContainer(index)
            return false
        case .object:
            fail(.invalid("Attempt to push new unkeyed encoding container when already previously encoded at this path."))
            return false
        }
        return true
    }

    /// Foundation merges a container into a single value that was an object or array; it traps
    /// otherwise.
    private func singleThenContainer(_ index: Int) {
        let first = frames[index].start < out.count ? out.base[frames[index].start] : 0
        if first == UInt8(ascii: "{") || first == UInt8(ascii: "[") {
            fail(.fallback)
        } else {
            fail(.invalid("Attempt to push new container when a single value was already encoded at this path."))
        }
    }

    /// Before a single-value write to frame `index`.
    func beginSingle(_ index: Int, _ id: UInt32) -> Bool {
        guard resolve(index, id) else { return false }
        switch frames[index].kind {
        case .pending:
            frames[index].kind = .single
            return true
        case .single:
            fail(.invalid("Attempt to encode value through single value container when previously value already encoded."))
        case .object, .array:
            fail(.fallback)  // Foundation keeps the container and drops the value
        }
        return false
    }

    /// Before an element of the array in frame `index`: the comma.
    @inline(__always)
    func beginElement(_ index: Int, _ id: UInt32) -> Bool {
        guard resolve(index, id) else { return false }
        if frames[index].count > 0 { out.append(UInt8(ascii: ",")) }
        frames[index].count &+= 1
        return true
    }

    /// Before a member of the object in frame `index`: the comma and `"key":`.
    @inline(__always)
    func beginEntry(_ index: Int, _ id: UInt32, _ key: String) -> Bool {
        guard resolve(index, id) else { return false }
        var key = key
        key.withUTF8 { writeKey($0, frame: index) }
        return true
    }

    private func writeKey(_ utf8: UnsafeBufferPointer<UInt8>, frame index: Int) {
        let count = frames[index].count
        if count > 0 { out.append(UInt8(ascii: ",")) }
        let start = out.count
        let prefix = JSONOutput.prefix(utf8)
        out.appendKey(utf8, prefix: prefix)
        let keyStart = keyBytes.count
        keyBytes.appendRawKey(utf8, prefix: prefix)
        if prefix & 0x8080_8080_8080_8080 != 0 || (utf8.count > 8 && utf8[8...].contains { $0 >= 0x80 }) {
            frames[index].nonASCIIKeys = true
        }
        let entry = Entry(start: start, keyStart: keyStart, keyCount: utf8.count, prefix: prefix)
        if count > 0 && !frames[index].sortNeeded && compareKeys(entries[entries.count &- 1], entry) >= 0 {
            frames[index].sortNeeded = true
        }
        entries.append(entry)
        frames[index].count = count &+ 1
    }

    /// Before a nested container or super encoder under `key`: Foundation reuses a container
    /// already made for the same key (the two merge), which a stream cannot do.
    func beginNestedEntry(_ index: Int, _ id: UInt32, _ key: String) -> Bool {
        guard resolve(index, id) else { return false }
        var key = key
        let duplicate = key.withUTF8 { utf8 in
            let first = frames[index].firstEntry
            return entries.elements(first..<entries.count).contains { entry in
                entry.keyCount == utf8.count && (utf8.count == 0 || memcmp(keyBytes.base + entry.keyStart, utf8.baseAddress!, utf8.count) == 0)
            }
        }
        if duplicate {
            fail(.fallback)
            return false
        }
        key.withUTF8 { writeKey($0, frame: index) }
        return true
    }

    /// Byte order of the raw keys, as Foundation sorts (`a.utf8.lexicographicallyPrecedes(b.utf8)`).
    @inline(__always)
    private func compareKeys(_ a: Entry, _ b: Entry) -> Int {
        if a.prefix != b.prefix { return a.prefix < b.prefix ? -1 : 1 }
        let shorter = Swift.min(a.keyCount, b.keyCount)
        if shorter > 8 {
            let result = memcmp(keyBytes.base + a.keyStart + 8, keyBytes.base + b.keyStart + 8, shorter &- 8)
            if result != 0 { return Int(result) }
        }
        return a.keyCount &- b.keyCount
    }

    private func finishObject(_ index: Int) {
        let first = frames[index].firstEntry
        let count = frames[index].count
        if count > 1 && (frames[index].sortNeeded || frames[index].nonASCIIKeys) {
            reorder(first: first, count: count, sort: frames[index].sortNeeded, checkEquivalence: frames[index].nonASCIIKeys)
        }
        out.append(UInt8(ascii: "}"))
        if count > 0 {
            keyBytes.count = entries[first].keyStart
            entries.removeLast(entries.count &- first)
        }
    }

    /// Writes the members of an object back in key order. Foundation keeps members in a
    /// `[String: …]` dictionary: a key written twice keeps its last value, and keys that are equal
    /// as Swift strings (canonically equivalent, like "K" and KELVIN SIGN) collapse into one; the
    /// first is reproduced here, the second is left to Foundation.
    private func reorder(first: Int, count: Int, sort: Bool, checkEquivalence: Bool) {
        withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { order in
            reorder(entries.elements(first..<first &+ count), order: order, sort: sort, checkEquivalence: checkEquivalence)
        }
    }

    private func reorder(_ members: UnsafeBufferPointer<Entry>, order: UnsafeMutableBufferPointer<Int>, sort: Bool, checkEquivalence: Bool) {
        let count = members.count
        for index in 0..<count { order[index] = index }
        // Keys arriving strictly ascending (no sort needed) are all different.
        var equalKeys = false
        if sort {
            // Insertion sort: objects are small and often nearly ordered; stable, so equal keys stay
            // in the order written. An element's final predecessor is the last one compared, so
            // equal neighbours are all seen.
            for index in 1..<count {
                let member = order[index]
                var position = index
                while position > 0 {
                    let comparison = compareKeys(members[order[position &- 1]], members[member])
                    if comparison <= 0 {
                        if comparison == 0 { equalKeys = true }
                        break
                    }
                    order[position] = order[position &- 1]
                    position &-= 1
                }
                order[position] = member
            }
        }
        // Of equal keys (adjacent now) keep the last written.
        var kept = count
        if equalKeys {
            kept = 0
            for index in 0..<count {
                if index &+ 1 < count && compareKeys(members[order[index]], members[order[index &+ 1]]) == 0 { continue }
                order[kept] = order[index]
                kept &+= 1
            }
        }
        if checkEquivalence {
            var seen = Set<String>()
            for member in order[0..<kept] {
                let entry = members[member]
                let key = String(decoding: UnsafeBufferPointer(start: keyBytes.base + entry.keyStart, count: entry.keyCount), as: UTF8.self)
                if !seen.insert(key).inserted {
                    fail(.fallback)
                    return
                }
            }
        }
        guard sort else { return }

        let bodyStart = members[0].start
        let bodyEnd = out.count
        scratch.count = 0
        scratch.append(out.base + bodyStart, count: bodyEnd &- bodyStart)
        out.count = bodyStart
        for position in 0..<kept {
            let member = order[position]
            let start = members[member].start &- bodyStart
            // A member ends where the comma before the next one is.
            let end = (member &+ 1 < count ? members[member &+ 1].start &- 1 : bodyEnd) &- bodyStart
            if position > 0 { out.append(UInt8(ascii: ",")) }
            out.append(scratch.base + start, count: end &- start)
        }
    }

    // MARK: Values

    /// Writes one value: the types `JSONEncoder` special-cases (dates, data, URLs, decimals), the
    /// scalars and arrays of strings or numbers directly, anything else through its `encode(to:)`
    /// in a new frame.
    ///
    /// - Parameters:
    ///   - frame: the frame the value belongs to (for the `codingPath` of errors); -1 at the top.
    ///   - key: how the value is reached from that frame.
    @inline(__always)
    func encode<T: Encodable>(_ value: T, in frame: Int, key: @autoclosure () -> PathKey) throws {
        if T.self == String.self {
            out.appendQuoted(unsafeBitCast(value, to: String.self))
        } else if T.self == Date.self {
            appendDate(unsafeBitCast(value, to: Date.self))
        } else if T.self == Int.self {
            out.appendInteger(Int64(unsafeBitCast(value, to: Int.self)))
        } else if T.self == Bool.self {
            appendBool(unsafeBitCast(value, to: Bool.self))
        } else if T.self == [String].self {
            appendStrings(unsafeBitCast(value, to: [String].self), in: frame)
        } else {
            try encodeOther(value, in: frame, key: key())
        }
    }

    private func encodeOther<T: Encodable>(_ value: T, in frame: Int, key: PathKey) throws {
        // Arrays hold one type: after the first element, skip the list of special types.
        let type = ObjectIdentifier(T.self)
        if type != lastComposite {
            if try encodeSpecial(value, in: frame, key: key) { return }
            lastComposite = type
        }
        let (index, id) = pushFrame(key: key)
        try value.encode(to: _JSONFrameEncoder(sink: self, frame: index, id: id))
        endFrame(index, id)
    }

    /// The remaining types written without a frame; false when `T` is none of them.
    private func encodeSpecial<T: Encodable>(_ value: T, in frame: Int, key: PathKey) throws -> Bool {
        func cast<U>(_: U.Type) -> U { unsafeBitCast(value, to: U.self) }
        if T.self == Double.self {
            try appendFloat(cast(Double.self), in: frame, key: key)
        } else if T.self == JSONFragment.self {
            // Already JSON (an event's data): written as it is, not re-parsed.
            out.appendPlain(cast(JSONFragment.self).text)
        } else if T.self == Int64.self {
            out.appendInteger(cast(Int64.self))
        } else if T.self == UInt32.self {
            out.appendInteger(cast(UInt32.self))
        } else if T.self == Data.self {
            out.appendQuoted(cast(Data.self).base64EncodedString())
        } else if T.self == URL.self {
            out.appendQuoted(cast(URL.self).absoluteString)
        } else if T.self == Decimal.self {
            out.appendPlain(cast(Decimal.self).description)
        } else if T.self == Float.self {
            try appendFloat(cast(Float.self), in: frame, key: key)
        } else if T.self == Int32.self {
            out.appendInteger(cast(Int32.self))
        } else if T.self == Int16.self {
            out.appendInteger(cast(Int16.self))
        } else if T.self == Int8.self {
            out.appendInteger(cast(Int8.self))
        } else if T.self == UInt.self {
            out.appendInteger(cast(UInt.self))
        } else if T.self == UInt64.self {
            out.appendInteger(cast(UInt64.self))
        } else if T.self == UInt16.self {
            out.appendInteger(cast(UInt16.self))
        } else if T.self == UInt8.self {
            out.appendInteger(cast(UInt8.self))
        } else if T.self == Int128.self {
            out.appendInteger(cast(Int128.self))
        } else if T.self == UInt128.self {
            out.appendInteger(cast(UInt128.self))
        } else {
            return try encodeDirectArray(value, in: frame, key: key)
        }
        return true
    }

    /// Arrays of integers or floats, written in one go instead of element by element.
    private func encodeDirectArray<T: Encodable>(_ value: T, in frame: Int, key: PathKey) throws -> Bool {
        func cast<U>(_: U.Type) -> U { unsafeBitCast(value, to: U.self) }
        if T.self == [Int].self {
            appendIntegers(cast([Int].self), in: frame)
        } else if T.self == [Int64].self {
            appendIntegers(cast([Int64].self), in: frame)
        } else if T.self == [Double].self {
            try appendFloats(cast([Double].self), in: frame, key: key)
        } else if T.self == [Int8].self {
            appendIntegers(cast([Int8].self), in: frame)
        } else if T.self == [Int16].self {
            appendIntegers(cast([Int16].self), in: frame)
        } else if T.self == [Int32].self {
            appendIntegers(cast([Int32].self), in: frame)
        } else if T.self == [Int128].self {
            appendIntegers(cast([Int128].self), in: frame)
        } else if T.self == [UInt].self {
            appendIntegers(cast([UInt].self), in: frame)
        } else if T.self == [UInt8].self {
            appendIntegers(cast([UInt8].self), in: frame)
        } else if T.self == [UInt16].self {
            appendIntegers(cast([UInt16].self), in: frame)
        } else if T.self == [UInt32].self {
            appendIntegers(cast([UInt32].self), in: frame)
        } else if T.self == [UInt64].self {
            appendIntegers(cast([UInt64].self), in: frame)
        } else if T.self == [UInt128].self {
            appendIntegers(cast([UInt128].self), in: frame)
        } else if T.self == [Float].self {
            try appendFloats(cast([Float].self), in: frame, key: key)
        } else {
            return false
        }
        return true
    }

    @inline(__always)
    func appendBool(_ value: Bool) {
        if value { out.append("true") } else { out.append("false") }
    }

    func appendDate(_ date: Date) {
        if !out.appendISO8601(date) { out.appendQuoted(date.formatted(.iso8601)) }
    }

    func appendStrings(_ strings: [String], in frame: Int) {
        noteArray(in: frame)
        out.append(UInt8(ascii: "["))
        for (index, string) in strings.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.appendQuoted(string)
        }
        out.append(UInt8(ascii: "]"))
    }

    private func appendIntegers<Integer: FixedWidthInteger>(_ integers: [Integer], in frame: Int) {
        noteArray(in: frame)
        out.append(UInt8(ascii: "["))
        for (index, integer) in integers.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.appendInteger(integer)
        }
        out.append(UInt8(ascii: "]"))
    }

    private func appendFloats<Float: BinaryFloatingPoint & CustomStringConvertible>(_ floats: [Float], in frame: Int, key: PathKey) throws {
        noteArray(in: frame)
        out.append(UInt8(ascii: "["))
        for (index, float) in floats.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            guard float.isFinite else {
                throw nonConforming(float, path: codingPath(frame, ofValues: true) + key.codingKeys + [JSONIndexKey(index: index)])
            }
            out.appendFloat(float)
        }
        out.append(UInt8(ascii: "]"))
    }

    /// - Throws: `EncodingError.invalidValue` for NaN and infinities, as `JSONEncoder`'s default
    ///   `.throw` strategy does.
    func appendFloat<Float: BinaryFloatingPoint & CustomStringConvertible>(_ value: Float, in frame: Int, key: PathKey) throws {
        guard value.isFinite else {
            throw nonConforming(value, path: codingPath(frame, ofValues: true) + key.codingKeys)
        }
        out.appendFloat(value)
    }

    private func nonConforming<Float: BinaryFloatingPoint>(_ value: Float, path: [any CodingKey]) -> EncodingError {
        .invalidValue(value, .init(codingPath: path, debugDescription: "Unable to encode \(Float.self).\(value) directly in JSON."))
    }

    // MARK: Coding path

    /// The keys from the top down to frame `index` (inclusive), as JSONEncoder reports them: a
    /// value's path leaves out the keys of the nested containers it sits in (JSONEncoder's value
    /// encoders know only their owner encoder), a container's path ends with them. Empty for -1.
    ///
    /// - Parameter ofValues: the path of values written into frame `index`'s container (for
    ///   their errors), which leaves out its trailing nested-container keys too.
    func codingPath(_ index: Int, ofValues: Bool = false) -> [any CodingKey] {
        guard index >= 0, index < frames.count else { return [] }
        var path: [any CodingKey] = []
        var nested: [any CodingKey] = []
        for frame in frames.elements(0..<index &+ 1) {
            if frame.isNestedContainer {
                nested += frame.key.codingKeys
            } else {
                nested.removeAll()
                path += frame.key.codingKeys
            }
        }
        return ofValues ? path : path + nested
    }
}

extension JSONEncodingSink.PathKey {
    var codingKeys: [any CodingKey] {
        switch self {
        case .none: return []
        case .index(let index): return [JSONIndexKey(index: index)]
        case .key(let key): return [key]
        case .superKey: return [JSONIndexKey(stringValue: "super")]
        }
    }
}

/// The key of an array element in a `codingPath` (`"Index 3"`, 3), and `super`, as Foundation names them.
struct JSONIndexKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) {
        self.stringValue = "\(intValue)"
        self.intValue = intValue
    }
    init(index: Int) {
        self.stringValue = "Index \(index)"
        self.intValue = index
    }
}

extension JSONEncodingSink {
    private static let pool = NIOLockedValueBox<[JSONEncodingSink]>([])
    // At most 4 × 512 KiB kept: enough for the encodes that run at once on a few cores, and for a
    // page of 200 modules with 1 KiB contents; a sink that grew further is freed after use.
    private static let pooledSinks = 4
    private static let pooledBytes = 512 << 10

    /// A sink from the pool (its buffers keep their capacity between runs), or a new one.
    static func take() -> JSONEncodingSink {
        pool.withLockedValue { $0.popLast() } ?? JSONEncodingSink()
    }

    static func recycle(_ sink: JSONEncodingSink) {
        guard sink.retainedBytes <= pooledBytes else { return }
        sink.reset()
        pool.withLockedValue { sinks in
            if sinks.count < pooledSinks { sinks.append(sink) }
        }
    }
}
