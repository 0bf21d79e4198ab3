import Foundation

/// A piece of JSON text that is passed through as it is: `system.echo`'s params, error `data`,
/// results that are already encoded.
///
/// `RPCJSONEncoder` writes a fragment byte for byte, also nested in another value (an event's
/// `data`); Foundation's `JSONEncoder` goes through `JSONValue` (correct, but slower).
public struct JSONFragment: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Valid JSON text (UTF-8).
    public let text: String

    /// Wraps text that is already valid JSON. The caller guarantees validity.
    public init(unchecked text: String) { self.text = text }

    /// Encodes a value with the engine's encoder settings.
    public init<T: Encodable>(encoding value: T) throws {
        self.text = try JSONWriter.encodeToString(value)
    }

    public static let null = JSONFragment(unchecked: "null")

    public var description: String { text }

    public init(from decoder: any Decoder) throws {
        let value = try JSONValue(from: decoder)
        self.text = try JSONWriter.encodeToString(value)
    }

    public func encode(to encoder: any Encoder) throws {
        let value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        try value.encode(to: encoder)
    }

    /// Decodes the fragment into a type.
    public func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }
}

extension JSONFragment: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, String)...) {
        var text = "{"
        for (index, (key, value)) in elements.enumerated() {
            if index > 0 { text += "," }
            text += JSONWriter.quoted(key) + ":" + JSONWriter.quoted(value)
        }
        self.text = text + "}"
    }
}

/// Any JSON value. Only for the slow paths (nested fragments, tests); the request path never
/// decodes into it.
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        if var array = try? decoder.unkeyedContainer() {
            var values: [JSONValue] = []
            while !array.isAtEnd { values.append(try array.decode(JSONValue.self)) }
            self = .array(values)
            return
        }
        if let object = try? decoder.container(keyedBy: AnyCodingKey.self) {
            var values: [String: JSONValue] = [:]
            for key in object.allKeys { values[key.stringValue] = try object.decode(JSONValue.self, forKey: key) }
            self = .object(values)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let bool = try? single.decode(Bool.self) {
            self = .bool(bool)
        } else if let number = try? single.decode(Double.self) {
            self = .number(number)
        } else {
            self = .string(try single.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var single = encoder.singleValueContainer()
            try single.encodeNil()
        case .bool(let value):
            var single = encoder.singleValueContainer()
            try single.encode(value)
        case .number(let value):
            var single = encoder.singleValueContainer()
            if value.rounded() == value, abs(value) < 9.0e15 { try single.encode(Int64(value)) } else { try single.encode(value) }
        case .string(let value):
            var single = encoder.singleValueContainer()
            try single.encode(value)
        case .array(let values):
            var array = encoder.unkeyedContainer()
            for value in values { try array.encode(value) }
        case .object(let values):
            var object = encoder.container(keyedBy: AnyCodingKey.self)
            for (key, value) in values { try object.encode(value, forKey: AnyCodingKey(key)) }
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let values) = self { return values[key] }
        return nil
    }
}

struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(_ string: String) { self.stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

extension JSONFragment {
    /// The fragment re-encoded with indentation and sorted keys (for files people read and diff).
    public func prettyPrinted() throws -> String {
        let value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        let encoder = JSONWriter.makeEncoder()
        encoder.outputFormatting.insert(.prettyPrinted)
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
