import Foundation

/// A value from the configuration file or the environment, before it is checked against a setting.
enum ConfigValue: Equatable, Sendable, CustomStringConvertible {
    case string(String)
    case integer(Int)
    case float(Double)
    case bool(Bool)
    case array([ConfigValue])
    /// A one-line inline table, `{model = "x", base_url = "…"}`.
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

/// Reads the subset of TOML that agentd's configuration uses: `[table]` headers, `key = value`
/// lines with basic and literal strings, integers (with `_`), floats, booleans, one-line arrays
/// and one-line inline tables (`{key = value, …}`), and `#` comments. Anything else is an error naming the line — never silently skipped.
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
        var entries: [Entry] = []
        var table = ""
        var seen: Set<String> = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            let content = stripComment(line).trimmed()
            if content.isEmpty { continue }
            if content.hasPrefix("[") {
                guard content.hasSuffix("]"), !content.hasPrefix("[[") else {
                    throw Failure(line: number, reason: "only [table] headers are supported")
                }
                table = String(content.dropFirst().dropLast()).trimmed()
                guard !table.isEmpty, table.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }) else {
                    throw Failure(line: number, reason: "invalid table name [\(table)]")
                }
                continue
            }
            guard let equals = content.firstIndex(of: "=") else {
                throw Failure(line: number, reason: "expected key = value")
            }
            let name = String(content[..<equals]).trimmed()
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                throw Failure(line: number, reason: "invalid key \"\(name)\"")
            }
            let key = table.isEmpty ? name : table + "." + name
            guard seen.insert(key).inserted else { throw Failure(line: number, reason: "\(key) is set twice") }
            var rest = Substring(String(content[content.index(after: equals)...]).trimmed())
            let value = try parseValue(&rest, line: number)
            guard rest.trimmed().isEmpty else { throw Failure(line: number, reason: "unexpected text after the value of \(key)") }
            entries.append(Entry(key: key, value: value, line: number))
        }
        return entries
    }

    /// Removes a `#` comment that is not inside a string.
    private static func stripComment(_ line: Substring) -> Substring {
        var quote: Character?
        var escaped = false
        for index in line.indices {
            let character = line[index]
            if let open = quote {
                if escaped { escaped = false } else if character == "\\" && open == "\"" { escaped = true } else if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "#" {
                return line[..<index]
            }
        }
        return line
    }

    private static func parseValue(_ text: inout Substring, line: Int) throws(Failure) -> ConfigValue {
        text = Substring(String(text).trimmed())
        guard let first = text.first else { throw Failure(line: line, reason: "missing value") }
        switch first {
        case "\"":
            text = text.dropFirst()
            var result = ""
            while let character = text.first {
                text = text.dropFirst()
                if character == "\"" { return .string(result) }
                if character == "\\" {
                    guard let escape = text.first else { break }
                    text = text.dropFirst()
                    switch escape {
                    case "n": result.append("\n")
                    case "t": result.append("\t")
                    case "r": result.append("\r")
                    case "\"": result.append("\"")
                    case "\\": result.append("\\")
                    default: throw Failure(line: line, reason: "unsupported escape \\\(escape)")
                    }
                } else {
                    result.append(character)
                }
            }
            throw Failure(line: line, reason: "unterminated string")
        case "'":
            text = text.dropFirst()
            guard let end = text.firstIndex(of: "'") else { throw Failure(line: line, reason: "unterminated string") }
            let result = String(text[..<end])
            text = text[text.index(after: end)...]
            return .string(result)
        case "[":
            text = text.dropFirst()
            var values: [ConfigValue] = []
            while true {
                text = Substring(String(text).trimmed())
                if text.first == "]" {
                    text = text.dropFirst()
                    return .array(values)
                }
                values.append(try parseValue(&text, line: line))
                text = Substring(String(text).trimmed())
                if text.first == "," {
                    text = text.dropFirst()
                } else if text.first != "]" {
                    throw Failure(line: line, reason: "expected , or ] in array")
                }
            }
        case "{":
            text = text.dropFirst()
            var members: [String: ConfigValue] = [:]
            while true {
                text = Substring(String(text).trimmed())
                if text.first == "}", members.isEmpty {
                    text = text.dropFirst()
                    return .table(members)
                }
                guard let equals = text.firstIndex(of: "=") else { throw Failure(line: line, reason: "expected key = value in inline table") }
                let name = String(text[..<equals]).trimmed()
                guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                    throw Failure(line: line, reason: "invalid key \"\(name)\" in inline table")
                }
                guard members[name] == nil else { throw Failure(line: line, reason: "\(name) is set twice in an inline table") }
                text = text[text.index(after: equals)...]
                members[name] = try parseValue(&text, line: line)
                text = Substring(String(text).trimmed())
                if text.first == "," {
                    text = text.dropFirst()
                } else if text.first == "}" {
                    text = text.dropFirst()
                    return .table(members)
                } else {
                    throw Failure(line: line, reason: "expected , or } in inline table")
                }
            }
        default:
            let end = text.firstIndex { $0 == "," || $0 == "]" || $0 == "}" || $0 == " " || $0 == "\t" } ?? text.endIndex
            let word = String(text[..<end])
            text = text[end...]
            if word == "true" { return .bool(true) }
            if word == "false" { return .bool(false) }
            let digits = word.replacingOccurrences(of: "_", with: "")
            if let integer = Int(digits) { return .integer(integer) }
            if let float = Double(digits), digits.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) { return .float(float) }
            throw Failure(line: line, reason: "cannot read value \(word) (strings need quotes)")
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
