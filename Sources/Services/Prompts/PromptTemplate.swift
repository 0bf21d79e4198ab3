/// A prompt body parsed into text and `{{variable}}` placeholders, and rendered by substitution.
///
/// The grammar is deliberately small: `{{ name }}` (spaces, tabs and line breaks allowed inside the
/// braces) where a name is `[A-Za-z_][A-Za-z0-9_.]*`, and `{{{{`, which stands for a literal `{{`.
/// Nothing else is special: a lone `{`, `}` or `}}` is text. There are no expressions, filters,
/// conditionals or includes, so rendering cannot run anything.
///
/// Rendering is one pass over the parsed template: a value is inserted exactly as given and is
/// never parsed, so a value holding `{{x}}` shows `{{x}}` (no injection into the template).
///
/// ```swift
/// let template = try PromptTemplate(parsing: "Hello {{ user }}, literal {{{{braces}}.")
/// template.variables                                // ["user"]
/// try template.render(["user": "{{date}}"])         // "Hello {{date}}, literal {{braces}}."
/// ```
public struct PromptTemplate: Sendable, Equatable {
    public enum Segment: Sendable, Equatable {
        case text(String)
        case variable(String)
    }

    /// Why a body is not a template. The description says where (line and column, from 1).
    public enum ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        /// A `{{` without its `}}` (before the end, or before the next `{{`).
        case unclosed(line: Int, column: Int)
        /// What stands between `{{` and `}}` is not a variable name.
        case invalidName(String, line: Int, column: Int)

        public var description: String {
            switch self {
            case .unclosed(let line, let column):
                "unclosed {{ at line \(line), column \(column) (write {{{{ for a literal {{)"
            case .invalidName(let name, let line, let column):
                "invalid variable name \"\(name)\" at line \(line), column \(column): a name is letters, digits, _ and ., starting with a letter or _ (write {{{{ for a literal {{)"
            }
        }
    }

    /// Why a template could not be rendered.
    public enum RenderError: Error, Equatable, Sendable {
        /// No value for a placeholder of the body.
        case missing(String)
        /// The text would be longer than the limit (in bytes of UTF-8).
        case tooLarge(limit: Int)
    }

    public let segments: [Segment]

    /// The names of the placeholders, in the order of their first use, each once.
    public let variables: [String]

    /// - Throws: `ParseError`.
    public init(parsing body: String) throws(ParseError) {
        let bytes = Array(body.utf8)
        var segments: [Segment] = []
        var variables: [String] = []
        var seen: Set<String> = []
        var text: [UInt8] = []
        var index = 0

        func flushText() {
            if !text.isEmpty {
                segments.append(.text(String(decoding: text, as: UTF8.self)))
                text.removeAll(keepingCapacity: true)
            }
        }

        while index < bytes.count {
            guard Self.opens(bytes, at: index) else {
                text.append(bytes[index])
                index += 1
                continue
            }
            if Self.opens(bytes, at: index + 2) {  // {{{{: a literal {{
                text.append(contentsOf: [Self.openBrace, Self.openBrace])
                index += 4
                continue
            }
            // The closing }}, unless another {{ comes first.
            var close = index + 2
            while close < bytes.count, !Self.closes(bytes, at: close) {
                if Self.opens(bytes, at: close) {
                    close = bytes.count
                    break
                }
                close += 1
            }
            guard close < bytes.count else {
                let (line, column) = Self.position(of: index, in: bytes)
                throw .unclosed(line: line, column: column)
            }
            var start = index + 2
            var end = close
            while start < end, Self.isSpace(bytes[start]) { start += 1 }
            while end > start, Self.isSpace(bytes[end - 1]) { end -= 1 }
            let name = String(decoding: bytes[start..<end], as: UTF8.self)
            guard Self.isValidName(name) else {
                let (line, column) = Self.position(of: index, in: bytes)
                throw .invalidName(name.count > 40 ? String(name.prefix(40)) + "…" : name, line: line, column: column)
            }
            flushText()
            segments.append(.variable(name))
            if seen.insert(name).inserted { variables.append(name) }
            index = close + 2
        }
        flushText()
        self.segments = segments
        self.variables = variables
    }

    /// The text with every placeholder replaced by its value, inserted as is. Values for names the
    /// body does not use are ignored (`unusedNames(in:)` lists them).
    ///
    /// - Throws: `RenderError.missing` naming the first placeholder (in the body's order) without a
    ///   value; `.tooLarge` when the text would be over `maxBytes`, checked before it is built.
    public func render(_ values: [String: String], maxBytes: Int = .max) throws(RenderError) -> String {
        for name in variables where values[name] == nil { throw .missing(name) }
        var size = 0
        for segment in segments {
            switch segment {
            case .text(let text): size += text.utf8.count
            case .variable(let name): size += values[name]!.utf8.count
            }
            if size > maxBytes { throw .tooLarge(limit: maxBytes) }
        }
        var result = ""
        result.reserveCapacity(size)
        for segment in segments {
            switch segment {
            case .text(let text): result += text
            case .variable(let name): result += values[name]!
            }
        }
        return result
    }

    /// The given names the body does not use, sorted.
    public func unusedNames(in values: [String: String]) -> [String] {
        let used = Set(variables)
        return values.keys.filter { !used.contains($0) }.sorted()
    }

    /// `[A-Za-z_][A-Za-z0-9_.]*`.
    public static func isValidName(_ name: String) -> Bool {
        var utf8 = name.utf8.makeIterator()
        guard let first = utf8.next(), isLetter(first) || first == UInt8(ascii: "_") else { return false }
        while let byte = utf8.next() {
            guard isLetter(byte) || isDigit(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") else { return false }
        }
        return true
    }

    // MARK: Bytes

    private static let openBrace = UInt8(ascii: "{")
    private static let closeBrace = UInt8(ascii: "}")

    private static func opens(_ bytes: [UInt8], at index: Int) -> Bool {
        index + 1 < bytes.count && bytes[index] == openBrace && bytes[index + 1] == openBrace
    }

    private static func closes(_ bytes: [UInt8], at index: Int) -> Bool {
        index + 1 < bytes.count && bytes[index] == closeBrace && bytes[index + 1] == closeBrace
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// Line and column (in characters), both from 1, of a byte offset.
    private static func position(of offset: Int, in bytes: [UInt8]) -> (line: Int, column: Int) {
        var line = 1
        var lineStart = 0
        for index in 0..<offset where bytes[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        return (line, String(decoding: bytes[lineStart..<offset], as: UTF8.self).count + 1)
    }
}
