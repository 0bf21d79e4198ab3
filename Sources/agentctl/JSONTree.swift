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

    init(parsing text: String) throws(ParseError) {
        var parser = Parser(bytes: Array(text.utf8))
        parser.skipWhitespace()
        self = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.index == parser.bytes.count else { throw parser.failure("unexpected text after the value") }
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        func failure(_ reason: String) -> ParseError {
            ParseError(description: "\(reason) at byte \(index)")
        }

        mutating func skipWhitespace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func value(depth: Int) throws(ParseError) -> JSONTree {
            guard depth < 512 else { throw failure("nested too deeply") }
            guard index < bytes.count else { throw failure("unexpected end") }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var members: [(key: String, value: JSONTree)] = []
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
                while true {
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw failure("expected a member name") }
                    let key = try string()
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw failure("expected ':'") }
                    index += 1
                    skipWhitespace()
                    members.append((key, try value(depth: depth + 1)))
                    skipWhitespace()
                    guard index < bytes.count else { throw failure("unexpected end") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    guard bytes[index] == UInt8(ascii: "}") else { throw failure("expected ',' or '}'") }
                    index += 1
                    return .object(members)
                }
            case UInt8(ascii: "["):
                index += 1
                var values: [JSONTree] = []
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(values) }
                while true {
                    skipWhitespace()
                    values.append(try value(depth: depth + 1))
                    skipWhitespace()
                    guard index < bytes.count else { throw failure("unexpected end") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    guard bytes[index] == UInt8(ascii: "]") else { throw failure("expected ',' or ']'") }
                    index += 1
                    return .array(values)
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default:
                return .number(try number())
            }
        }

        mutating func literal(_ word: String) throws(ParseError) {
            let expected = Array(word.utf8)
            guard index + expected.count <= bytes.count, Array(bytes[index..<index + expected.count]) == expected else {
                throw failure("unexpected character")
            }
            index += expected.count
        }

        mutating func number() throws(ParseError) -> String {
            let start = index
            func digits() -> Int {
                let from = index
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
                return index - from
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
            let integerStart = index
            guard digits() > 0 else { throw failure("unexpected character") }
            if bytes[integerStart] == UInt8(ascii: "0"), index - integerStart > 1 { throw failure("leading zero") }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard digits() > 0 else { throw failure("expected digits") }
            }
            if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard digits() > 0 else { throw failure("expected digits") }
            }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        mutating func string() throws(ParseError) -> String {
            index += 1
            var result: [UInt8] = []
            var pendingHigh: UInt32?
            func append(_ scalar: UInt32) {
                result += Array(String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8)
            }
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    if pendingHigh != nil { append(0xFFFD) }
                    return String(decoding: result, as: UTF8.self)
                }
                guard byte >= 0x20 else { throw failure("control character in a string") }
                guard byte == UInt8(ascii: "\\") else {
                    if pendingHigh != nil { append(0xFFFD); pendingHigh = nil }
                    result.append(byte)
                    index += 1
                    continue
                }
                guard index + 1 < bytes.count else { break }
                let escape = bytes[index + 1]
                index += 2
                if escape == UInt8(ascii: "u") {
                    guard index + 4 <= bytes.count, let value = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16) else {
                        throw failure("bad \\u escape")
                    }
                    index += 4
                    if let high = pendingHigh {
                        pendingHigh = nil
                        if (0xDC00...0xDFFF).contains(value) { append(0x10000 + ((high - 0xD800) << 10) + (value - 0xDC00)); continue }
                        append(0xFFFD)
                    }
                    if (0xD800...0xDBFF).contains(value) { pendingHigh = value } else { append(value) }
                    continue
                }
                if pendingHigh != nil { append(0xFFFD); pendingHigh = nil }
                switch escape {
                case UInt8(ascii: "b"): result.append(0x08)
                case UInt8(ascii: "f"): result.append(0x0C)
                case UInt8(ascii: "n"): result.append(0x0A)
                case UInt8(ascii: "r"): result.append(0x0D)
                case UInt8(ascii: "t"): result.append(0x09)
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): result.append(escape)
                default: throw failure("bad escape")
                }
            }
            throw failure("unterminated string")
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
            guard !values.isEmpty else { out += "[]"; return }
            out += "[" + newline
            for (index, value) in values.enumerated() {
                out += pad(level + 1)
                value.write(into: &out, indent: indent, colors: colors, level: level + 1)
                out += (index < values.count - 1 ? "," : "") + newline
            }
            out += pad(level) + "]"
        case .object(let members):
            guard !members.isEmpty else { out += "{}"; return }
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
