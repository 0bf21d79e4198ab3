import Foundation

/// A parsed JSON value (decoded with `JSONSerialization`) that compares by meaning, not by bytes:
/// member order and whitespace do not matter, `1`, `1.0` and `1.00` are equal numbers.
///
/// Tests compare replies as parsed JSON; only where exact bytes are the point (echo, big ids) do
/// they look at the raw line.
enum JSON: Equatable, CustomStringConvertible, Sendable {
    case null
    case bool(Bool)
    /// An integer that fits in 64 bits, kept exact (9007199254740993 is not a Double).
    case integer(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    struct ParseError: Error, CustomStringConvertible {
        let description: String
    }

    /// Parses one JSON text (any value, not only objects and arrays).
    init(parsing text: String) throws {
        try self.init(parsing: Data(text.utf8))
    }

    init(parsing data: Data) throws {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw ParseError(description: "not JSON (\(error)): \(String(decoding: data, as: UTF8.self).prefix(500))")
        }
        self = try JSON(foundation: object)
    }

    init(foundation value: Any) throws {
        switch value {
        case is NSNull:
            self = .null
        case let number as NSNumber:
            self = JSON(number: number)
        case let string as String:
            self = .string(string)
        case let array as [Any]:
            self = .array(try array.map { try JSON(foundation: $0) })
        case let dictionary as [String: Any]:
            self = .object(try dictionary.mapValues { try JSON(foundation: $0) })
        default:
            throw ParseError(description: "unexpected JSONSerialization value \(type(of: value)): \(value)")
        }
    }

    private init(number: NSNumber) {
        let type = String(cString: number.objCType)
        switch type {
        case "c", "B":
            // JSONSerialization gives booleans as NSNumber(value: Bool).
            self = .bool(number.boolValue)
        case "f", "d":
            self = .double(number.doubleValue)
        case "Q", "L", "I", "S", "C":
            let value = number.uint64Value
            self = value <= UInt64(Int64.max) ? .integer(Int64(value)) : .double(number.doubleValue)
        default:
            self = .integer(number.int64Value)
        }
    }

    static func == (lhs: JSON, rhs: JSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.integer(let a), .integer(let b)): a == b
        case (.integer(let a), .double(let b)), (.double(let b), .integer(let a)): Double(a) == b
        case (.double(let a), .double(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a == b
        default: false
        }
    }

    subscript(key: String) -> JSON? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    subscript(index: Int) -> JSON? {
        if case .array(let items) = self, items.indices.contains(index) { return items[index] }
        return nil
    }

    var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    var intValue: Int? {
        switch self {
        case .integer(let value): Int(value)
        case .double(let value) where value == value.rounded(): Int(value)
        default: nil
        }
    }

    var arrayValue: [JSON]? {
        if case .array(let items) = self { return items }
        return nil
    }

    var objectValue: [String: JSON]? {
        if case .object(let members) = self { return members }
        return nil
    }

    var isNull: Bool { self == .null }

    /// Where `other` first differs from this value, as a path and both sides (nil when equal):
    /// a readable failure message for large documents.
    func firstDifference(from other: JSON, path: String = "$") -> String? {
        switch (self, other) {
        case (.object(let mine), .object(let theirs)):
            for key in Set(mine.keys).union(theirs.keys).sorted() {
                switch (mine[key], theirs[key]) {
                case (let a?, let b?):
                    if let difference = a.firstDifference(from: b, path: "\(path).\(key)") { return difference }
                case (let a?, nil): return "\(path).\(key): \(a) vs absent"
                case (nil, let b?): return "\(path).\(key): absent vs \(b)"
                case (nil, nil): break
                }
            }
            return nil
        case (.array(let mine), .array(let theirs)):
            for index in 0..<min(mine.count, theirs.count) {
                if let difference = mine[index].firstDifference(from: theirs[index], path: "\(path)[\(index)]") { return difference }
            }
            return mine.count == theirs.count ? nil : "\(path): \(mine.count) items vs \(theirs.count) items"
        default:
            return self == other ? nil : "\(path): \(self) vs \(other)"
        }
    }

    /// The reply's error code, when it is an error reply.
    var errorCode: Int? { self["error"]?["code"]?.intValue }

    /// This reply (or batch of replies) without `error.data`: the JSON-RPC spec's examples show no
    /// `data`, which is optional (§5.1), so spec conformance checks compare everything else.
    var withoutErrorData: JSON {
        switch self {
        case .array(let items):
            return .array(items.map(\.withoutErrorData))
        case .object(var members):
            if case .object(var error)? = members["error"] {
                error["data"] = nil
                members["error"] = .object(error)
            }
            return .object(members)
        default:
            return self
        }
    }

    /// Compact JSON text with sorted keys (for messages and for sorting replies by id).
    var description: String {
        switch self {
        case .null: "null"
        case .bool(let value): value ? "true" : "false"
        case .integer(let value): String(value)
        case .double(let value): String(value)
        case .string(let value): Self.quote(value)
        case .array(let items): "[" + items.map(\.description).joined(separator: ",") + "]"
        case .object(let members):
            "{" + members.sorted { $0.key < $1.key }.map { Self.quote($0.key) + ":" + $0.value.description }.joined(separator: ",") + "}"
        }
    }

    private static func quote(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
