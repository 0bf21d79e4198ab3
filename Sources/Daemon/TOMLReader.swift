import Foundation

/// A value from the configuration file or the environment, before it is checked against a setting.
enum ConfigValue: Equatable, Sendable, CustomStringConvertible {
    case string(String)
    case integer(Int)
    case float(Double)
    case bool(Bool)
    case array([ConfigValue])
    /// An inline table, `{model = "x", base_url = "…"}`.
    case table([String: ConfigValue])

    var description: String {
        switch self {
        case .string(let value): "\"\(value)\""
        case .integer(let value): String(value)
        case .float(let value): String(value)
        case .bool(let value): String(value)
        case .array(let values): "[" + values.map(\.description).joined(separator: ", ") + "]"
        case .table(let members): "{" + members.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }.joined(separator: ", ") + "}"
        }
    }

    /// For messages: "a string", "an integer", …
    var kindName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a number"
        case .bool: "a boolean"
        case .array: "an array"
        case .table: "a table"
        }
    }
}

/// Reads TOML 1.0 as people write it: `[table]` headers, dotted and quoted keys, all four string
/// forms (basic with escapes, literal, and their multi-line forms), integers (decimal with `_`,
/// hex, octal, binary), floats (with exponents, `inf`, `nan`), booleans, arrays over several lines
/// (comments and a trailing comma inside), inline tables, and `#` comments.
///
/// Not supported, each an error naming its line: dates and times and arrays of tables (`[[x]]`),
/// which no setting takes. Every error names the line, and nothing is skipped silently.
///
/// The result is flat, one entry per key as the settings name them (`[llm]` + `model = …` is
/// `llm.model`), with the line the key is on, for the messages and `--print-config`. Why not a
/// TOML library (LebJe/TOMLKit, toml++ underneath): its values carry no source position, and the
/// settings' messages name the line of every key.
struct TOMLReader {
    struct Entry: Equatable {
        /// `table.key`
        var key: String
        var value: ConfigValue
        var line: Int
    }

    struct Failure: Error, CustomStringConvertible {
        var line: Int
        var reason: String
        var description: String { "line \(line): \(reason)" }
    }

    static func read(_ text: String) throws(Failure) -> [Entry] {
        var parser = Parser(bytes: Array(text.utf8))
        return try parser.document()
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0
        var line = 1

        var entries: [Entry] = []
        /// Every key given a value, and every table (header, or the prefix of a dotted key).
        var values: Set<String> = []
        var tables: Set<String> = []
        var headers: Set<String> = []

        init(bytes: [UInt8]) { self.bytes = bytes }

        func failure(_ reason: String) -> Failure { Failure(line: line, reason: reason) }

        var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        func peek(_ offset: Int) -> UInt8? { index + offset < bytes.count ? bytes[index + offset] : nil }

        func lookingAt(_ literal: String) -> Bool {
            let expected = Array(literal.utf8)
            return index + expected.count <= bytes.count && bytes[index..<index + expected.count].elementsEqual(expected)
        }

        // MARK: Lines

        mutating func document() throws(Failure) -> [Entry] {
            var table: [String] = []
            while index < bytes.count {
                skipSpaces()
                guard let byte = current else { break }
                if try consumeLineEnd() { continue }
                let what: String
                if byte == UInt8(ascii: "[") {
                    table = try header()
                    what = "the table header [\(table.joined(separator: "."))]"
                } else {
                    let keyLine = line
                    let path = try key()
                    skipSpaces()
                    guard current == UInt8(ascii: "=") else { throw failure("expected key = value") }
                    index += 1
                    skipSpaces()
                    let value = try value()
                    try define(table + path, value, line: keyLine)
                    what = "the value of \((table + path).joined(separator: "."))"
                }
                try endOfLine(after: what)
            }
            return entries
        }

        /// `[a.b]`: the table that the following keys belong to.
        mutating func header() throws(Failure) -> [String] {
            index += 1
            if current == UInt8(ascii: "[") { throw failure("arrays of tables ([[…]]) are not supported: no setting takes one") }
            skipSpaces()
            let path = try key()
            skipSpaces()
            guard current == UInt8(ascii: "]") else { throw failure("expected ] after the table name") }
            index += 1
            let name = path.joined(separator: ".")
            guard headers.insert(name).inserted else { throw failure("table [\(name)] is defined twice") }
            guard !values.contains(name) else { throw failure("\(name) is both a value and a table") }
            for end in 1...path.count { tables.insert(path[..<end].joined(separator: ".")) }
            return path
        }

        mutating func define(_ path: [String], _ value: ConfigValue, line: Int) throws(Failure) {
            let key = path.joined(separator: ".")
            guard !values.contains(key) else { throw Failure(line: line, reason: "\(key) is set twice") }
            guard !tables.contains(key) else { throw Failure(line: line, reason: "\(key) is both a table and a value") }
            for end in 1..<path.count {
                let prefix = path[..<end].joined(separator: ".")
                guard !values.contains(prefix) else { throw Failure(line: line, reason: "\(prefix) is both a value and a table") }
                tables.insert(prefix)
            }
            values.insert(key)
            entries.append(Entry(key: key, value: value, line: line))
        }

        /// After a header or a key's value: spaces, a comment, then the line's end (or the file's).
        mutating func endOfLine(after what: String) throws(Failure) {
            skipSpaces()
            guard try consumeLineEnd() else { throw failure("unexpected text after \(what)") }
        }

        mutating func skipSpaces() {
            while let byte = current, byte == 0x20 || byte == 0x09 { index += 1 }
        }

        /// A comment and/or a newline, consumed; false when neither is here.
        mutating func consumeLineEnd() throws(Failure) -> Bool {
            if current == UInt8(ascii: "#") {
                while let byte = current, byte != 0x0A, byte != 0x0D { index += 1 }
            }
            switch current {
            case nil: return true
            case 0x0A:
                index += 1
                line += 1
                return true
            case 0x0D:
                guard peek(1) == 0x0A else { throw failure("a carriage return without a line feed") }
                index += 2
                line += 1
                return true
            default:
                return false
            }
        }

        /// Spaces, newlines and comments, as arrays allow between their elements.
        mutating func skipBlank() throws(Failure) {
            while true {
                skipSpaces()
                guard let byte = current, byte == UInt8(ascii: "#") || byte == 0x0A || byte == 0x0D else { return }
                _ = try consumeLineEnd()
            }
        }

        // MARK: Keys

        /// `a`, `"quoted key"`, `'literal'`, or any of them dotted: `a."b".c`.
        mutating func key() throws(Failure) -> [String] {
            var path: [String] = []
            while true {
                switch current {
                case UInt8(ascii: "\""):
                    if lookingAt("\"\"\"") { throw failure("a key cannot be a multi-line string") }
                    path.append(try basicString())
                case UInt8(ascii: "'"):
                    if lookingAt("'''") { throw failure("a key cannot be a multi-line string") }
                    path.append(try literalString())
                default:
                    let start = index
                    while let byte = current, Self.isBareKey(byte) { index += 1 }
                    guard index > start else {
                        let rest = String(decoding: bytes[start..<min(bytes.count, start + 20)], as: UTF8.self)
                        throw failure("invalid key \"\(rest.prefix { $0 != "\n" && $0 != "=" }.trimmed())\"")
                    }
                    path.append(String(decoding: bytes[start..<index], as: UTF8.self))
                }
                skipSpaces()
                guard current == UInt8(ascii: ".") else { return path }
                index += 1
                skipSpaces()
            }
        }

        static func isBareKey(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "_"), UInt8(ascii: "-"):
                true
            default: false
            }
        }

        // MARK: Values

        mutating func value() throws(Failure) -> ConfigValue {
            switch current {
            case nil, 0x0A, 0x0D, UInt8(ascii: "#"): throw failure("missing value")
            case UInt8(ascii: "\""): return .string(lookingAt("\"\"\"") ? try multiLineBasicString() : try basicString())
            case UInt8(ascii: "'"): return .string(lookingAt("'''") ? try multiLineLiteralString() : try literalString())
            case UInt8(ascii: "["): return try array()
            case UInt8(ascii: "{"): return try inlineTable()
            default: return try scalar()
            }
        }

        mutating func array() throws(Failure) -> ConfigValue {
            index += 1
            var values: [ConfigValue] = []
            while true {
                try skipBlank()
                guard let byte = current else { throw failure("unterminated array") }
                if byte == UInt8(ascii: "]") {
                    index += 1
                    return .array(values)
                }
                values.append(try value())
                try skipBlank()
                switch current {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "]"): continue
                case nil: throw failure("unterminated array")
                default: throw failure("expected , or ] in array")
                }
            }
        }

        /// `{a = 1, b.c = "x"}`: on one line, no trailing comma (TOML 1.0).
        mutating func inlineTable() throws(Failure) -> ConfigValue {
            index += 1
            var members: [String: ConfigValue] = [:]
            skipSpaces()
            if current == UInt8(ascii: "}") {
                index += 1
                return .table(members)
            }
            while true {
                skipSpaces()
                if current == 0x0A || current == 0x0D || current == nil { throw failure("an inline table must end on the line it starts on") }
                if current == UInt8(ascii: "}") { throw failure("an inline table takes no trailing comma") }
                let path = try key()
                skipSpaces()
                guard current == UInt8(ascii: "=") else { throw failure("expected key = value in inline table") }
                index += 1
                skipSpaces()
                let value = try value()
                guard Self.insert(value, at: path[...], into: &members) else {
                    throw failure("\(path.joined(separator: ".")) is set twice in an inline table")
                }
                skipSpaces()
                switch current {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "}"):
                    index += 1
                    return .table(members)
                default: throw failure("expected , or } in inline table")
                }
            }
        }

        /// Sets `path` in nested tables; false when it (or a prefix of it, as a value) is set already.
        static func insert(_ value: ConfigValue, at path: ArraySlice<String>, into members: inout [String: ConfigValue]) -> Bool {
            let name = path.first!
            if path.count == 1 {
                guard members[name] == nil else { return false }
                members[name] = value
                return true
            }
            var inner: [String: ConfigValue]
            switch members[name] {
            case nil: inner = [:]
            case .table(let existing): inner = existing
            default: return false
            }
            guard insert(value, at: path.dropFirst(), into: &inner) else { return false }
            members[name] = .table(inner)
            return true
        }

        /// A boolean or a number; anything else is a bare word that needed quotes.
        mutating func scalar() throws(Failure) -> ConfigValue {
            let start = index
            while let byte = current,
                ![UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"), UInt8(ascii: "#"), 0x20, 0x09, 0x0A, 0x0D].contains(byte)
            {
                index += 1
            }
            let word = String(decoding: bytes[start..<index], as: UTF8.self)
            if word.isEmpty { throw failure("missing value") }
            if word == "true" { return .bool(true) }
            if word == "false" { return .bool(false) }
            if let number = try Self.number(word, failure: failure) { return number }
            if Self.looksLikeDate(word) { throw failure("dates and times are not supported (\(word)): no setting takes one") }
            throw failure("cannot read value \(word) (strings need quotes)")
        }

        /// TOML's integers and floats; nil when `word` is not shaped like one.
        static func number(_ word: String, failure: (String) -> Failure) throws(Failure) -> ConfigValue? {
            var body = Substring(word)
            var sign = ""
            if let first = body.first, first == "+" || first == "-" {
                sign = first == "-" ? "-" : ""
                body = body.dropFirst()
            }
            switch body {
            case "inf": return .float(sign == "-" ? -.infinity : .infinity)
            case "nan": return .float(.nan)
            default: break
            }
            for (prefix, radix, digits) in [("0x", 16, "0123456789abcdefABCDEF"), ("0o", 8, "01234567"), ("0b", 2, "01")] where body.hasPrefix(prefix)
            {
                guard word.first != "+", word.first != "-" else { throw failure("\(word): a hex, octal or binary integer takes no sign") }
                let rest = body.dropFirst(2)
                guard underscoresBetweenDigits(rest, digits: digits) else { return nil }
                guard let value = Int(rest.replacingOccurrences(of: "_", with: ""), radix: radix) else {
                    throw failure("\(word) is out of range for an integer")
                }
                return .integer(value)
            }
            // Decimal: an integer part without leading zeros, then an optional fraction and exponent.
            var integerPart = body
            var fraction: Substring?
            var exponent: Substring?
            if let e = integerPart.firstIndex(where: { $0 == "e" || $0 == "E" }) {
                exponent = integerPart[integerPart.index(after: e)...]
                integerPart = integerPart[..<e]
            }
            if let dot = integerPart.firstIndex(of: ".") {
                fraction = integerPart[integerPart.index(after: dot)...]
                integerPart = integerPart[..<dot]
            }
            let decimal = "0123456789"
            guard underscoresBetweenDigits(integerPart, digits: decimal) else { return nil }
            guard integerPart == "0" || !integerPart.hasPrefix("0") else { throw failure("\(word): leading zeros are not allowed") }
            if let fraction, !underscoresBetweenDigits(fraction, digits: decimal) { return nil }
            if var exponent {
                if let first = exponent.first, first == "+" || first == "-" { exponent = exponent.dropFirst() }
                guard underscoresBetweenDigits(exponent, digits: decimal) else { return nil }
            }
            let plain = sign + word.drop { $0 == "+" || $0 == "-" }.replacingOccurrences(of: "_", with: "")
            if fraction == nil, exponent == nil {
                guard let value = Int(plain) else { throw failure("\(word) is out of range for an integer") }
                return .integer(value)
            }
            guard let value = Double(plain) else { return nil }
            return .float(value)
        }

        /// Digits from `digits`, at least one, with each `_` between two digits.
        static func underscoresBetweenDigits(_ text: Substring, digits: String) -> Bool {
            var previousWasDigit = false
            for character in text {
                if character == "_" {
                    guard previousWasDigit else { return false }
                    previousWasDigit = false
                } else if digits.contains(character) {
                    previousWasDigit = true
                } else {
                    return false
                }
            }
            return previousWasDigit
        }

        static func looksLikeDate(_ word: String) -> Bool {
            let bytes = Array(word.utf8)
            let digit = { (i: Int) in i < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) }
            let dashDate = bytes.count >= 10 && (0..<4).allSatisfy(digit) && bytes[4] == UInt8(ascii: "-")
            let time = bytes.count >= 8 && digit(0) && digit(1) && bytes[2] == UInt8(ascii: ":")
            return dashDate || time
        }

        // MARK: Strings

        /// `"…"` with escapes, on one line.
        mutating func basicString() throws(Failure) -> String {
            index += 1
            var result: [UInt8] = []
            while let byte = current {
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    return String(decoding: result, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    try escape(into: &result)
                case 0x0A, 0x0D:
                    throw failure("unterminated string (a basic string ends on its line; use \"\"\" for several lines)")
                default:
                    try plain(byte, into: &result)
                }
            }
            throw failure("unterminated string")
        }

        /// `"""…"""`: a newline right after the opening quotes is dropped, and a `\` at the end of a
        /// line removes the line break and the blank space that follows it.
        mutating func multiLineBasicString() throws(Failure) -> String {
            index += 3
            try dropOpeningNewline()
            var result: [UInt8] = []
            while let byte = current {
                switch byte {
                case UInt8(ascii: "\""):
                    if lookingAt("\"\"\"") {
                        // Up to two quotes may sit just before the closing three.
                        var extra = 0
                        while extra < 2, peek(3 + extra) == UInt8(ascii: "\"") { extra += 1 }
                        result += Array(repeating: UInt8(ascii: "\""), count: extra)
                        index += 3 + extra
                        return String(decoding: result, as: UTF8.self)
                    }
                    result.append(byte)
                    index += 1
                case UInt8(ascii: "\\"):
                    if try lineEndingBackslash() { continue }
                    try escape(into: &result)
                case 0x0A, 0x0D:
                    try newline(into: &result)
                default:
                    try plain(byte, into: &result)
                }
            }
            throw failure("unterminated multi-line string")
        }

        /// `'…'`: no escapes, on one line.
        mutating func literalString() throws(Failure) -> String {
            index += 1
            let start = index
            while let byte = current {
                switch byte {
                case UInt8(ascii: "'"):
                    defer { index += 1 }
                    return String(decoding: bytes[start..<index], as: UTF8.self)
                case 0x0A, 0x0D: throw failure("unterminated string (a literal string ends on its line; use ''' for several lines)")
                default:
                    var ignored: [UInt8] = []
                    try plain(byte, into: &ignored)
                }
            }
            throw failure("unterminated string")
        }

        /// `'''…'''`: no escapes; a newline right after the opening quotes is dropped.
        mutating func multiLineLiteralString() throws(Failure) -> String {
            index += 3
            try dropOpeningNewline()
            var result: [UInt8] = []
            while let byte = current {
                switch byte {
                case UInt8(ascii: "'") where lookingAt("'''"):
                    var extra = 0
                    while extra < 2, peek(3 + extra) == UInt8(ascii: "'") { extra += 1 }
                    result += Array(repeating: UInt8(ascii: "'"), count: extra)
                    index += 3 + extra
                    return String(decoding: result, as: UTF8.self)
                case 0x0A, 0x0D:
                    try newline(into: &result)
                default:
                    try plain(byte, into: &result)
                }
            }
            throw failure("unterminated multi-line string")
        }

        mutating func dropOpeningNewline() throws(Failure) {
            if current == 0x0A || current == 0x0D {
                var ignored: [UInt8] = []
                try newline(into: &ignored)
            }
        }

        /// A line break inside a multi-line string, kept as `\n`.
        mutating func newline(into result: inout [UInt8]) throws(Failure) {
            if current == 0x0D {
                guard peek(1) == 0x0A else { throw failure("a carriage return without a line feed") }
                index += 1
            }
            index += 1
            line += 1
            result.append(0x0A)
        }

        /// One byte of string text: control characters other than tab must be escaped.
        mutating func plain(_ byte: UInt8, into result: inout [UInt8]) throws(Failure) {
            guard byte >= 0x20 || byte == 0x09, byte != 0x7F else { throw failure("a control character in a string must be escaped") }
            result.append(byte)
            index += 1
        }

        /// `\` then spaces up to the line's end: the break and all blank space after it vanish.
        mutating func lineEndingBackslash() throws(Failure) -> Bool {
            var probe = index + 1
            while probe < bytes.count, bytes[probe] == 0x20 || bytes[probe] == 0x09 { probe += 1 }
            guard probe < bytes.count, bytes[probe] == 0x0A || bytes[probe] == 0x0D else { return false }
            index = probe
            while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
                if byte == 0x20 || byte == 0x09 {
                    index += 1
                } else {
                    var ignored: [UInt8] = []
                    try newline(into: &ignored)
                }
            }
            return true
        }

        mutating func escape(into result: inout [UInt8]) throws(Failure) {
            guard let escape = peek(1) else { throw failure("unterminated string") }
            index += 2
            switch escape {
            case UInt8(ascii: "b"): result.append(0x08)
            case UInt8(ascii: "t"): result.append(0x09)
            case UInt8(ascii: "n"): result.append(0x0A)
            case UInt8(ascii: "f"): result.append(0x0C)
            case UInt8(ascii: "r"): result.append(0x0D)
            case UInt8(ascii: "\""): result.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): result.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "u"), UInt8(ascii: "U"):
                let count = escape == UInt8(ascii: "u") ? 4 : 8
                guard index + count <= bytes.count,
                    bytes[index..<index + count].allSatisfy({ Character(Unicode.Scalar($0)).isHexDigit }),
                    let value = UInt32(String(decoding: bytes[index..<index + count], as: UTF8.self), radix: 16)
                else { throw failure("\\\(Character(Unicode.Scalar(escape))) needs \(count) hex digits") }
                guard let scalar = Unicode.Scalar(value) else {
                    throw failure("\\\(Character(Unicode.Scalar(escape)))\(String(value, radix: 16, uppercase: true)) is not a Unicode scalar value")
                }
                index += count
                result += Array(String(Character(scalar)).utf8)
            default:
                throw failure("unsupported escape \\\(Character(Unicode.Scalar(escape)))")
            }
        }
    }
}

extension StringProtocol {
    func trimmed() -> String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
