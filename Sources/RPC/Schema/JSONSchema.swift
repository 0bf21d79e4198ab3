import Foundation

/// A JSON Schema (the subset OpenRPC documents need), derived from `Codable` types by
/// `JSONSchema.of(_:)` or given by a type that conforms to `JSONSchemaProviding`.
public indirect enum JSONSchema: Sendable, Hashable {
    case string(format: String? = nil, enumeration: [String]? = nil)
    case integer
    case number
    case boolean
    case array(items: JSONSchema)
    /// Properties in declaration order (also the order of params by position).
    case object(properties: [Property], additionalProperties: JSONSchema? = nil)
    /// Any JSON value.
    case any
    /// Exactly one of these (a result whose shape depends on a param: `agent.act` with `background`).
    case oneOf([JSONSchema])

    public struct Property: Sendable, Hashable {
        public var name: String
        public var schema: JSONSchema
        public var required: Bool

        public init(_ name: String, _ schema: JSONSchema, required: Bool) {
            self.name = name
            self.schema = schema
            self.required = required
        }
    }

    public var properties: [Property]? {
        if case .object(let properties, _) = self { return properties }
        return nil
    }

    /// The schema as a JSON value, for the OpenRPC document.
    public var jsonValue: JSONValue {
        switch self {
        case .string(let format, let enumeration):
            var object: [String: JSONValue] = ["type": .string("string")]
            if let format { object["format"] = .string(format) }
            if let enumeration { object["enum"] = .array(enumeration.map(JSONValue.string)) }
            return .object(object)
        case .integer: return .object(["type": .string("integer")])
        case .number: return .object(["type": .string("number")])
        case .boolean: return .object(["type": .string("boolean")])
        case .array(let items): return .object(["type": .string("array"), "items": items.jsonValue])
        case .object(let properties, let additional):
            var object: [String: JSONValue] = ["type": .string("object")]
            object["properties"] = .object(Dictionary(uniqueKeysWithValues: properties.map { ($0.name, $0.schema.jsonValue) }))
            let required = properties.filter(\.required).map { JSONValue.string($0.name) }
            if !required.isEmpty { object["required"] = .array(required) }
            object["additionalProperties"] = additional?.jsonValue ?? .bool(false)
            return .object(object)
        case .any: return .object([:])
        case .oneOf(let schemas): return .object(["oneOf": .array(schemas.map(\.jsonValue))])
        }
    }
}

/// A type that states its own schema instead of having it derived (enums, raw JSON, dictionaries).
public protocol JSONSchemaProviding {
    static var jsonSchema: JSONSchema { get }
    /// A valid value, returned while probing types that contain this one.
    static var schemaExample: Self { get }
}

/// String enums state their cases in the schema.
public protocol RPCStringEnum: JSONSchemaProviding, CaseIterable, RawRepresentable, Codable, Sendable
where RawValue == String {}

extension RPCStringEnum {
    public static var jsonSchema: JSONSchema { .string(enumeration: allCases.map(\.rawValue)) }
    public static var schemaExample: Self { allCases.first! }
}

extension JSONFragment: JSONSchemaProviding {
    public static var jsonSchema: JSONSchema { .any }
    public static var schemaExample: JSONFragment { .null }
}

extension JSONValue: JSONSchemaProviding {
    public static var jsonSchema: JSONSchema { .any }
    public static var schemaExample: JSONValue { .null }
}

extension RPCID: JSONSchemaProviding, Codable {
    public static var jsonSchema: JSONSchema { .any }
    public static var schemaExample: RPCID { .null }

    public init(from decoder: any Decoder) throws {
        self.init(json: try JSONFragment(from: decoder).text)
    }

    public func encode(to encoder: any Encoder) throws {
        try JSONFragment(unchecked: json).encode(to: encoder)
    }
}

extension Date: JSONSchemaProviding {
    public static var jsonSchema: JSONSchema { .string(format: "date-time") }
    public static var schemaExample: Date { Date(timeIntervalSince1970: 0) }
}

extension JSONSchema {
    /// Derives the schema of a `Decodable` type by decoding it from a recording decoder: every
    /// property the synthesized `init(from:)` asks for is noted with its type and whether it is
    /// optional (`decodeIfPresent`). Types with custom decoding state theirs via
    /// `JSONSchemaProviding`.
    public static func of<T: Decodable>(_ type: T.Type) -> JSONSchema {
        if let providing = type as? any JSONSchemaProviding.Type { return providing.jsonSchema }
        let probe = SchemaProbe(depth: 0)
        _ = try? T(from: probe)
        return probe.recorded.schema
    }
}

/// What a probe learned about one value.
private final class SchemaRecord {
    var kind: Kind = .unknown
    enum Kind {
        case unknown
        case single(JSONSchema)
        case keyed([JSONSchema.Property])
        case unkeyed(JSONSchema?)
    }

    var schema: JSONSchema {
        switch kind {
        case .unknown: return .any
        case .single(let schema): return schema
        case .keyed(let properties): return .object(properties: properties)
        case .unkeyed(let items): return .array(items: items ?? .any)
        }
    }
}

private struct SchemaProbeError: Error {}

/// The recording decoder behind `JSONSchema.of(_:)`. It answers every request with a plausible
/// value (empty string, zero, one-element arrays) so decoding runs through all properties.
private final class SchemaProbe: Decoder {
    let recorded = SchemaRecord()
    let depth: Int
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]

    init(depth: Int) { self.depth = depth }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        if case .keyed = recorded.kind {} else { recorded.kind = .keyed([]) }
        return KeyedDecodingContainer(KeyedProbe<Key>(probe: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        recorded.kind = .unkeyed(nil)
        return UnkeyedProbe(probe: self)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleProbe(probe: self)
    }

    func record(_ property: JSONSchema.Property) {
        guard case .keyed(var properties) = recorded.kind else { return }
        if let index = properties.firstIndex(where: { $0.name == property.name }) {
            properties[index] = property
        } else {
            properties.append(property)
        }
        recorded.kind = .keyed(properties)
    }

    /// Probes a nested type: returns its schema and an instance to hand back to the caller.
    func nested<T: Decodable>(_ type: T.Type) throws -> (JSONSchema, T) {
        if let schema = Self.primitiveSchema(type) {
            return (schema, Self.primitiveExample(type))
        }
        if let providing = type as? any JSONSchemaProviding.Type {
            return (providing.jsonSchema, providing.schemaExample as! T)
        }
        guard depth < 12 else { throw SchemaProbeError() }
        let child = SchemaProbe(depth: depth + 1)
        let value = try T(from: child)
        return (child.recorded.schema, value)
    }

    static func primitiveSchema<T>(_ type: T.Type) -> JSONSchema? {
        switch type {
        case is String.Type: return .string()
        case is Bool.Type: return .boolean
        case is Int.Type, is Int8.Type, is Int16.Type, is Int32.Type, is Int64.Type,
            is UInt.Type, is UInt8.Type, is UInt16.Type, is UInt32.Type, is UInt64.Type:
            return .integer
        case is Double.Type, is Float.Type: return .number
        default: return nil
        }
    }

    static func primitiveExample<T>(_ type: T.Type) -> T {
        switch type {
        case is String.Type: return "" as! T
        case is Bool.Type: return false as! T
        case is Int.Type: return 0 as! T
        case is Int8.Type: return Int8(0) as! T
        case is Int16.Type: return Int16(0) as! T
        case is Int32.Type: return Int32(0) as! T
        case is Int64.Type: return Int64(0) as! T
        case is UInt.Type: return UInt(0) as! T
        case is UInt8.Type: return UInt8(0) as! T
        case is UInt16.Type: return UInt16(0) as! T
        case is UInt32.Type: return UInt32(0) as! T
        case is UInt64.Type: return UInt64(0) as! T
        case is Double.Type: return 0.0 as! T
        case is Float.Type: return Float(0) as! T
        default: fatalError("not a primitive: \(type)")
        }
    }
}

private struct KeyedProbe<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let probe: SchemaProbe
    var codingPath: [any CodingKey] { [] }
    var allKeys: [Key] { [] }

    func contains(_ key: Key) -> Bool { true }

    func decodeNil(forKey key: Key) throws -> Bool { false }

    private func record<T: Decodable>(_ type: T.Type, _ key: Key, required: Bool) throws -> T {
        let (schema, value) = try probe.nested(type)
        probe.record(.init(key.stringValue, schema, required: required))
        return value
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try record(type, key, required: true) }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? { try record(type, key, required: false) }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try record(type, key, required: true) }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try record(type, key, required: false) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try record(type, key, required: true) }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try record(type, key, required: false) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try record(type, key, required: true) }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try record(type, key, required: false) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try record(type, key, required: true) }
    func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { try record(type, key, required: false) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try record(type, key, required: true) }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try record(type, key, required: false) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try record(type, key, required: true) }
    func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { try record(type, key, required: false) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try record(type, key, required: true) }
    func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { try record(type, key, required: false) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try record(type, key, required: true) }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try record(type, key, required: false) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try record(type, key, required: true) }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try record(type, key, required: false) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try record(type, key, required: true) }
    func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { try record(type, key, required: false) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try record(type, key, required: true) }
    func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { try record(type, key, required: false) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try record(type, key, required: true) }
    func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try record(type, key, required: false) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try record(type, key, required: true) }
    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try record(type, key, required: false) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try record(type, key, required: true) }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try record(type, key, required: false) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        throw SchemaProbeError()
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { throw SchemaProbeError() }
    func superDecoder() throws -> any Decoder { throw SchemaProbeError() }
    func superDecoder(forKey key: Key) throws -> any Decoder { throw SchemaProbeError() }
}

private struct UnkeyedProbe: UnkeyedDecodingContainer {
    let probe: SchemaProbe
    var codingPath: [any CodingKey] { [] }
    var count: Int? { 1 }
    var currentIndex = 0
    var isAtEnd: Bool { currentIndex >= 1 }

    mutating func decodeNil() throws -> Bool { false }

    private mutating func element<T: Decodable>(_ type: T.Type) throws -> T {
        currentIndex += 1
        let (schema, value) = try probe.nested(type)
        probe.recorded.kind = .unkeyed(schema)
        return value
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try element(type) }
    mutating func decode(_ type: Bool.Type) throws -> Bool { try element(type) }
    mutating func decode(_ type: String.Type) throws -> String { try element(type) }
    mutating func decode(_ type: Double.Type) throws -> Double { try element(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { try element(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try element(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try element(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try element(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try element(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try element(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try element(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try element(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try element(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try element(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try element(type) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        throw SchemaProbeError()
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { throw SchemaProbeError() }
    mutating func superDecoder() throws -> any Decoder { throw SchemaProbeError() }
}

private struct SingleProbe: SingleValueDecodingContainer {
    let probe: SchemaProbe
    var codingPath: [any CodingKey] { [] }

    func decodeNil() -> Bool { false }

    private func value<T: Decodable>(_ type: T.Type) throws -> T {
        let (schema, value) = try probe.nested(type)
        probe.recorded.kind = .single(schema)
        return value
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try value(type) }
    func decode(_ type: Bool.Type) throws -> Bool { try value(type) }
    func decode(_ type: String.Type) throws -> String { try value(type) }
    func decode(_ type: Double.Type) throws -> Double { try value(type) }
    func decode(_ type: Float.Type) throws -> Float { try value(type) }
    func decode(_ type: Int.Type) throws -> Int { try value(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try value(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try value(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try value(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try value(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try value(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try value(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try value(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try value(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try value(type) }
}
