import RPC

/// A JSON value as a person reads it: members in the order they came, numbers as their text (an
/// id like `9007199254740993` or an amount like `1.50` is shown as sent, never through `Double`).
enum JSONTree: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONTree])
    case object([(key: String, value: JSONTree)])

    static func == (lhs: JSONTree, rhs: JSONTree) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: false
        }
    }

    subscript(key: String) -> JSONTree? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    var integer: Int? {
        if case .number(let text) = self { return Int(text) }
        return nil
    }

    var array: [JSONTree]? {
        if case .array(let values) = self { return values }
        return nil
    }

    /// The value as a table cell: strings bare, everything else as compact JSON.
    var cellText: String {
        switch self {
        case .string(let value): value
        case .null: ""
        case .array(let values) where values.allSatisfy({ $0.string != nil }): values.compactMap(\.string).joined(separator: ",")
        default: compact
        }
    }

    // MARK: Parsing

    struct ParseError: Error, CustomStringConvertible {
        let description: String
    }

    /// RPC's validating reader (RFC 8259), nested up to 512 deep.
    init(parsing text: String) throws(ParseError) {
        do {
            self = try JSONReader.read(text, maxDepth: 512) { reader in try Self.value(&reader) }
        } catch {
            throw ParseError(description: "\(error)")
        }
    }

    private static func value(_ reader: inout JSONReader) throws -> JSONTree {
        switch reader.nextKind {
        case .object:
            var members: [(key: String, value: JSONTree)] = []
            try reader.readObject { reader, key in members.append((key, try value(&reader))) }
            return .object(members)
        case .array:
            var values: [JSONTree] = []
            try reader.readArray { reader in values.append(try value(&reader)) }
            return .array(values)
        case .string: return try reader.readString().map(JSONTree.string) ?? .null
        case .number: return try reader.readNumberText().map(JSONTree.number) ?? .null
        case .bool: return try reader.readBool().map(JSONTree.bool) ?? .null
        case .null:
            _ = try reader.readNull()
            return .null
        case nil: throw JSONReader.Mismatch()
        }
    }

    // MARK: Printing

    /// One line, no spaces: what a script reads.
    var compact: String {
        var out = ""
        write(into: &out, indent: nil, colors: nil, level: 0)
        return out
    }

    /// Indented by two spaces, coloured when `colors` is given: what a person reads.
    func pretty(colors: Palette?) -> String {
        var out = ""
        write(into: &out, indent: "  ", colors: colors, level: 0)
        return out
    }

    /// ANSI colours (jq's choice of roles).
    struct Palette {
        var key = "\u{1B}[34;1m"
        var string = "\u{1B}[32m"
        var number = "\u{1B}[36m"
        var literal = "\u{1B}[35m"
        var null = "\u{1B}[90m"
        var reset = "\u{1B}[0m"
    }

    private func write(into out: inout String, indent: String?, colors: Palette?, level: Int) {
        func paint(_ text: String, _ color: KeyPath<Palette, String>) {
            if let colors { out += colors[keyPath: color] + text + colors.reset } else { out += text }
        }
        let newline = indent == nil ? "" : "\n"
        func pad(_ level: Int) -> String { indent.map { String(repeating: $0, count: level) } ?? "" }
        switch self {
        case .null: paint("null", \.null)
        case .bool(let value): paint(value ? "true" : "false", \.literal)
        case .number(let text): paint(text, \.number)
        case .string(let value): paint(Self.quoted(value), \.string)
        case .array(let values):
            guard !values.isEmpty else {
                out += "[]"
                return
            }
            out += "[" + newline
            for (index, value) in values.enumerated() {
                out += pad(level + 1)
                value.write(into: &out, indent: indent, colors: colors, level: level + 1)
                out += (index < values.count - 1 ? "," : "") + newline
            }
            out += pad(level) + "]"
        case .object(let members):
            guard !members.isEmpty else {
                out += "{}"
                return
            }
            out += "{" + newline
            for (index, member) in members.enumerated() {
                out += pad(level + 1)
                paint(Self.quoted(member.key), \.key)
                out += indent == nil ? ":" : ": "
                member.value.write(into: &out, indent: indent, colors: colors, level: level + 1)
                out += (index < members.count - 1 ? "," : "") + newline
            }
            out += pad(level) + "}"
        }
    }

    static func quoted(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
