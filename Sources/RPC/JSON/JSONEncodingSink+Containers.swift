import Foundation

// The `Encoder` and container types `RPCJSONEncoder` hands to `encode(to:)`. Each is a sink, a frame
// index and the frame's id (small enough for an existential's inline buffer: no allocation), and
// every write asks the sink to make its frame current first (see `JSONEncodingSink.resolve`).

/// The encoder of one value: the frame it writes into.
struct _JSONFrameEncoder: Encoder {
    let sink: JSONEncodingSink
    let frame: Int
    let id: UInt32

    var codingPath: [any CodingKey] { sink.codingPath(frame) }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let opened = sink.openObject(frame, id)
        return KeyedEncodingContainer(
            _JSONKeyedContainer<Key>(sink: sink, frame: opened ? frame : JSONEncodingSink.invalidFrame, id: id))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let opened = sink.openArray(frame, id)
        return _JSONUnkeyedContainer(sink: sink, frame: opened ? frame : JSONEncodingSink.invalidFrame, id: id)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        _JSONSingleValueContainer(sink: sink, frame: frame, id: id)
    }
}

struct _JSONKeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let sink: JSONEncodingSink
    let frame: Int
    let id: UInt32

    var codingPath: [any CodingKey] { sink.codingPath(frame) }

    @inline(__always)
    private func begin(_ key: Key) -> Bool { sink.beginEntry(frame, id, key.stringValue) }

    mutating func encodeNil(forKey key: Key) throws { if begin(key) { sink.out.append("null") } }
    mutating func encode(_ value: Bool, forKey key: Key) throws { if begin(key) { sink.appendBool(value) } }
    mutating func encode(_ value: String, forKey key: Key) throws { if begin(key) { sink.out.appendQuoted(value) } }
    mutating func encode(_ value: Double, forKey key: Key) throws {
        if begin(key) { try sink.appendFloat(value, in: frame, key: .key(key)) }
    }
    mutating func encode(_ value: Float, forKey key: Key) throws {
        if begin(key) { try sink.appendFloat(value, in: frame, key: .key(key)) }
    }
    mutating func encode(_ value: Int, forKey key: Key) throws { if begin(key) { sink.out.appendInteger(value) } }
    mutating func encode(_ value: Int8, forKey key: Key) throws { if begin(key) { sink.out.appendInteger(value) } }
    mutating func encode(_ value: Int16, forKey key: Key) throws { if begin(key) { sink.out.appendInteger(value) } }
    mutating func encode(_ value: Int32, forKey key: Key) throws { if begin(key) { sink.out.appendInteger(value) } }
    mutating func encode(_ value: Int64, forKey key: Key) throws { if begin(key) { sink.out.appendInteger(value) } }
    mutating func encode(_ value: Int128, forKey key: Key) throws { if begin(key) { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt, forKey key: Key) throws { if begin(key) { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { if begin(key) { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { if begin(key) { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { if begin(key) { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { if begin(key) { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt128, forKey key: Key) throws { if begin(key) { sink.out.appendInteger(value) } }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        if begin(key) { try sink.encode(value, in: frame, key: .key(key)) }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        guard sink.beginNestedEntry(frame, id, key.stringValue) else {
            return KeyedEncodingContainer(_JSONKeyedContainer<NestedKey>(sink: sink, frame: JSONEncodingSink.invalidFrame, id: 0))
        }
        let nested = sink.pushFrame(key: .key(key), isNestedContainer: true)
        return _JSONFrameEncoder(sink: sink, frame: nested.index, id: nested.id).container(keyedBy: NestedKey.self)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        guard sink.beginNestedEntry(frame, id, key.stringValue) else {
            return _JSONUnkeyedContainer(sink: sink, frame: JSONEncodingSink.invalidFrame, id: 0)
        }
        let nested = sink.pushFrame(key: .key(key), isNestedContainer: true)
        return _JSONFrameEncoder(sink: sink, frame: nested.index, id: nested.id).unkeyedContainer()
    }

    /// The value is written under `super` right away, and ends when this container is written to
    /// again or ends (Foundation writes it when the returned encoder is released; for the usual
    /// `try super.encode(to: container.superEncoder())` that is the same place).
    mutating func superEncoder() -> any Encoder {
        superEncoder(name: "super", key: .superKey)
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        superEncoder(name: key.stringValue, key: .key(key))
    }

    private func superEncoder(name: String, key: JSONEncodingSink.PathKey) -> any Encoder {
        guard sink.beginEntry(frame, id, name) else {
            return _JSONFrameEncoder(sink: sink, frame: JSONEncodingSink.invalidFrame, id: 0)
        }
        let nested = sink.pushFrame(key: key)
        return _JSONFrameEncoder(sink: sink, frame: nested.index, id: nested.id)
    }
}

struct _JSONUnkeyedContainer: UnkeyedEncodingContainer {
    let sink: JSONEncodingSink
    let frame: Int
    let id: UInt32

    var codingPath: [any CodingKey] { sink.codingPath(frame) }

    var count: Int {
        frame >= 0 && frame < sink.frames.count && sink.frames[frame].id == id ? sink.frames[frame].count : 0
    }

    @inline(__always)
    private func begin() -> Bool { sink.beginElement(frame, id) }

    /// The key of the element just begun.
    private var elementKey: JSONEncodingSink.PathKey { .index(count - 1) }

    mutating func encodeNil() throws { if begin() { sink.out.append("null") } }
    mutating func encode(_ value: Bool) throws { if begin() { sink.appendBool(value) } }
    mutating func encode(_ value: String) throws { if begin() { sink.out.appendQuoted(value) } }
    mutating func encode(_ value: Double) throws { if begin() { try sink.appendFloat(value, in: frame, key: elementKey) } }
    mutating func encode(_ value: Float) throws { if begin() { try sink.appendFloat(value, in: frame, key: elementKey) } }
    mutating func encode(_ value: Int) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: Int8) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: Int16) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: Int32) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: Int64) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: Int128) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt8) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt16) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt32) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt64) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt128) throws { if begin() { sink.out.appendInteger(value) } }

    mutating func encode<T: Encodable>(_ value: T) throws {
        if begin() { try sink.encode(value, in: frame, key: elementKey) }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        guard begin() else {
            return KeyedEncodingContainer(_JSONKeyedContainer<NestedKey>(sink: sink, frame: JSONEncodingSink.invalidFrame, id: 0))
        }
        let nested = sink.pushFrame(key: elementKey, isNestedContainer: true)
        return _JSONFrameEncoder(sink: sink, frame: nested.index, id: nested.id).container(keyedBy: NestedKey.self)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        guard begin() else { return _JSONUnkeyedContainer(sink: sink, frame: JSONEncodingSink.invalidFrame, id: 0) }
        let nested = sink.pushFrame(key: elementKey, isNestedContainer: true)
        return _JSONFrameEncoder(sink: sink, frame: nested.index, id: nested.id).unkeyedContainer()
    }

    /// The element takes its place now (Foundation inserts it at this index when the encoder is
    /// released: the same position).
    mutating func superEncoder() -> any Encoder {
        guard begin() else { return _JSONFrameEncoder(sink: sink, frame: JSONEncodingSink.invalidFrame, id: 0) }
        let nested = sink.pushFrame(key: elementKey)
        return _JSONFrameEncoder(sink: sink, frame: nested.index, id: nested.id)
    }
}

struct _JSONSingleValueContainer: SingleValueEncodingContainer {
    let sink: JSONEncodingSink
    let frame: Int
    let id: UInt32

    var codingPath: [any CodingKey] { sink.codingPath(frame) }

    @inline(__always)
    private func begin() -> Bool { sink.beginSingle(frame, id) }

    mutating func encodeNil() throws { if begin() { sink.out.append("null") } }
    mutating func encode(_ value: Bool) throws { if begin() { sink.appendBool(value) } }
    mutating func encode(_ value: String) throws { if begin() { sink.out.appendQuoted(value) } }
    mutating func encode(_ value: Double) throws { if begin() { try sink.appendFloat(value, in: frame, key: .none) } }
    mutating func encode(_ value: Float) throws { if begin() { try sink.appendFloat(value, in: frame, key: .none) } }
    mutating func encode(_ value: Int) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: Int8) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: Int16) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: Int32) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: Int64) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: Int128) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt8) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt16) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt32) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt64) throws { if begin() { sink.out.appendInteger(value) } }
    mutating func encode(_ value: UInt128) throws { if begin() { sink.out.appendInteger(value) } }

    mutating func encode<T: Encodable>(_ value: T) throws {
        if begin() { try sink.encode(value, in: frame, key: .none) }
    }
}
