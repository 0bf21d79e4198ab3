/// Reads a few members out of a JSON document without building it: a pull reader over
/// `JSONScanner` (which validates as it goes) and `RPCMessageParser.decodeString` (escapes).
///
/// For hot decoders of a known shape, where `JSONDecoder`'s generic machinery costs more than the
/// work: an OpenAI stream chunk took ~110 µs through `JSONDecoder` when it arrived every 10 ms to a
/// cold cache, on every delta's path. Any member of an unexpected type throws `Mismatch`, so the
/// caller can fall back to a general decoder; any invalid JSON throws too.
///
/// ```swift
/// let model: String? = try JSONReader.read(text) { reader in
///     var model: String?
///     try reader.readObject { reader, key in
///         if key == "model" { model = try reader.readString() } else { try reader.skip() }
///     }
///     return model
/// }
/// ```
public struct JSONReader: ~Copyable {
    /// The document is not what the caller reads it as (or not JSON at all).
    public struct Mismatch: Error, CustomStringConvertible {
        /// The byte offset where reading stopped, when `read` knows it.
        public internal(set) var offset: Int?

        public init() {}

        public var description: String { offset.map { "stopped at byte \($0)" } ?? "mismatch" }
    }

    /// What the next value is, from its first byte.
    public enum Kind: Sendable {
        case object, array, string, number, bool, null
    }

    private var scanner: JSONScanner

    private init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        scanner = JSONScanner(bytes, maxDepth: maxDepth)
    }

    /// Reads `text` as one JSON value with `body`, then requires nothing but whitespace after it.
    public static func read<T>(_ text: String, maxDepth: Int = 64, _ body: (inout JSONReader) throws -> T) throws -> T {
        var text = text
        return try text.withUTF8 { utf8 in
            var reader = JSONReader(UnsafeRawBufferPointer(utf8), maxDepth: maxDepth)
            do {
                reader.scanner.skipWhitespace()
                let value = try body(&reader)
                reader.scanner.skipWhitespace()
                guard reader.scanner.atEnd else { throw Mismatch() }
                return value
            } catch var mismatch as Mismatch {
                mismatch.offset = reader.scanner.index
                throw mismatch
            }
        }
    }

    /// The kind of the next value (not consumed), or nil when no value starts here: for a caller
    /// that reads documents of any shape (agentctl prints whatever a method returns).
    public var nextKind: Kind? {
        switch scanner.peek() {
        case UInt8(ascii: "{"): .object
        case UInt8(ascii: "["): .array
        case UInt8(ascii: "\""): .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): .bool
        case UInt8(ascii: "n"): .null
        case UInt8(ascii: "-"): .number
        case let byte? where byte.isDigit: .number
        default: nil
        }
    }

    /// `true` or `false`, or nil for `null`; `Mismatch` for anything else.
    public mutating func readBool() throws -> Bool? {
        if try readNull() { return nil }
        let value = scanner.peek() == UInt8(ascii: "t")
        do { try scanner.scanLiteral(value ? "true" : "false") } catch { throw Mismatch() }
        scanner.skipWhitespace()
        return value
    }

    /// A number exactly as written (`1.50`, `9007199254740993`: nothing is lost to `Double`), or
    /// nil for `null`; `Mismatch` for anything else.
    public mutating func readNumberText() throws -> String? {
        if try readNull() { return nil }
        let start = scanner.index
        guard nextKind == .number else { throw Mismatch() }
        do { try scanner.scanNumber() } catch { throw Mismatch() }
        let text = String(decoding: UnsafeBufferPointer(start: scanner.base + start, count: scanner.index - start), as: UTF8.self)
        scanner.skipWhitespace()
        return text
    }

    /// The next value is `null` (consumed when it is).
    public mutating func readNull() throws -> Bool {
        guard scanner.peek() == UInt8(ascii: "n") else { return false }
        do { try scanner.scanLiteral("null") } catch { throw Mismatch() }
        scanner.skipWhitespace()
        return true
    }

    /// An object: `member` is called with each key and must consume its value (read or skip).
    /// `null` reads as no members. Throws `Mismatch` for anything else.
    public mutating func readObject(_ member: (inout JSONReader, String) throws -> Void) throws {
        if try readNull() { return }
        guard scanner.peek() == UInt8(ascii: "{") else { throw Mismatch() }
        try enter()
        scanner.index += 1
        scanner.skipWhitespace()
        if scanner.peek() == UInt8(ascii: "}") { return close() }
        while true {
            guard scanner.peek() == UInt8(ascii: "\"") else { throw Mismatch() }
            let key = try string()
            scanner.skipWhitespace()
            guard scanner.peek() == UInt8(ascii: ":") else { throw Mismatch() }
            scanner.index += 1
            scanner.skipWhitespace()
            try member(&self, key)
            if try endOfContainer(UInt8(ascii: "}")) { return close() }
        }
    }

    /// An array: `element` is called for each element and must consume it. `null` reads as no
    /// elements. Throws `Mismatch` for anything else.
    public mutating func readArray(_ element: (inout JSONReader) throws -> Void) throws {
        if try readNull() { return }
        guard scanner.peek() == UInt8(ascii: "[") else { throw Mismatch() }
        try enter()
        scanner.index += 1
        scanner.skipWhitespace()
        if scanner.peek() == UInt8(ascii: "]") { return close() }
        while true {
            try element(&self)
            if try endOfContainer(UInt8(ascii: "]")) { return close() }
        }
    }

    /// A string, or nil for `null`; `Mismatch` for anything else.
    public mutating func readString() throws -> String? {
        if try readNull() { return nil }
        guard scanner.peek() == UInt8(ascii: "\"") else { throw Mismatch() }
        let value = try string()
        scanner.skipWhitespace()
        return value
    }

    /// An integer (no fraction or exponent) that fits in `Int`, or nil for `null`; `Mismatch` for
    /// anything else.
    public mutating func readInt() throws -> Int? {
        if try readNull() { return nil }
        let start = scanner.index
        guard scanner.peek() == UInt8(ascii: "-") || scanner.peek()?.isDigit == true else { throw Mismatch() }
        do { try scanner.scanNumber() } catch { throw Mismatch() }
        let text = String(decoding: UnsafeBufferPointer(start: scanner.base + start, count: scanner.index - start), as: UTF8.self)
        guard let value = Int(text) else { throw Mismatch() }
        scanner.skipWhitespace()
        return value
    }

    /// Skips one value of any kind, validating it.
    public mutating func skip() throws {
        do { _ = try scanner.skipValue(depth: depth) } catch { throw Mismatch() }
        scanner.skipWhitespace()
    }

    // MARK: Private

    /// How deep the reader is inside containers (the scanner's depth limit counts from here).
    private var depth = 0

    private mutating func enter() throws {
        depth += 1
        guard depth <= scanner.maxDepth else { throw Mismatch() }
    }

    private mutating func close() {
        scanner.index += 1
        depth -= 1
        scanner.skipWhitespace()
    }

    /// After a member or element: true at the container's closing byte (not consumed), false after
    /// a comma.
    private mutating func endOfContainer(_ closing: UInt8) throws -> Bool {
        scanner.skipWhitespace()
        switch scanner.peek() {
        case closing: return true
        case UInt8(ascii: ","):
            scanner.index += 1
            scanner.skipWhitespace()
            return false
        default: throw Mismatch()
        }
    }

    /// The string at the scanner (at its opening quote), unescaped.
    private mutating func string() throws -> String {
        let start = scanner.index
        let scanned: (contents: Range<Int>, escaped: Bool)
        do { scanned = try scanner.scanString() } catch { throw Mismatch() }
        if !scanned.escaped {
            return String(
                decoding: UnsafeBufferPointer(start: scanner.base + scanned.contents.lowerBound, count: scanned.contents.count), as: UTF8.self)
        }
        return RPCMessageParser.decodeString(scanner.base, start..<scanner.index)
    }
}
