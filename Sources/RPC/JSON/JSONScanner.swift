/// A validating, allocation-free JSON scanner over raw bytes. (`package`: the fuzz targets drive
/// it directly; it is no API.)
///
/// Why not `JSONDecoder` for the envelope: on this machine it costs ~2.4 µs per message for the
/// envelope alone, which is most of the budget of a `system.ping` round trip. The scanner validates
/// the whole message (RFC 8259, including UTF-8 and the nesting limit) in one pass and records only
/// byte ranges; params are later decoded straight into the method's `Params` type.
package struct JSONScanner: ~Copyable {
    package enum Failure: Error, Equatable {
        /// Not JSON: the byte offset where it stopped making sense.
        case syntax(offset: Int)
        /// Nested deeper than allowed.
        case tooDeep
    }

    package enum Kind: Equatable {
        case object, array, string, number, literal
    }

    let base: UnsafePointer<UInt8>
    let count: Int
    let maxDepth: Int
    package var index: Int = 0

    package init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        // An empty buffer still needs a valid pointer; it is never dereferenced (count == 0).
        self.base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!
        self.count = bytes.count
        self.maxDepth = maxDepth
    }

    var atEnd: Bool { index >= count }

    @inline(__always)
    package func peek() -> UInt8? { index < count ? base[index] : nil }

    @inline(__always)
    package mutating func skipWhitespace() {
        while index < count {
            switch base[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    @inline(__always)
    mutating func expect(_ byte: UInt8) throws(Failure) {
        guard index < count, base[index] == byte else { throw .syntax(offset: index) }
        index += 1
    }

    /// Validates one value starting at `index` (no leading whitespace) and returns its kind.
    /// `depth` is the depth of the value's container (0 at the top level).
    package mutating func skipValue(depth: Int) throws(Failure) -> Kind {
        guard index < count else { throw .syntax(offset: index) }
        switch base[index] {
        case UInt8(ascii: "{"):
            try skipObject(depth: depth + 1)
            return .object
        case UInt8(ascii: "["):
            try skipArray(depth: depth + 1)
            return .array
        case UInt8(ascii: "\""):
            _ = try scanString()
            return .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try scanNumber()
            return .number
        case UInt8(ascii: "t"):
            try scanLiteral("true")
            return .literal
        case UInt8(ascii: "f"):
            try scanLiteral("false")
            return .literal
        case UInt8(ascii: "n"):
            try scanLiteral("null")
            return .literal
        default:
            throw .syntax(offset: index)
        }
    }

    mutating func skipObject(depth: Int) throws(Failure) {
        guard depth <= maxDepth else { throw .tooDeep }
        index += 1  // {
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            guard peek() == UInt8(ascii: "\"") else { throw .syntax(offset: index) }
            _ = try scanString()
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            _ = try skipValue(depth: depth)
            skipWhitespace()
            guard index < count else { throw .syntax(offset: index) }
            if base[index] == UInt8(ascii: ",") {
                index += 1
                skipWhitespace()
                continue
            }
            try expect(UInt8(ascii: "}"))
            return
        }
    }

    mutating func skipArray(depth: Int) throws(Failure) {
        guard depth <= maxDepth else { throw .tooDeep }
        index += 1  // [
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            index += 1
            return
        }
        while true {
            _ = try skipValue(depth: depth)
            skipWhitespace()
            guard index < count else { throw .syntax(offset: index) }
            if base[index] == UInt8(ascii: ",") {
                index += 1
                skipWhitespace()
                continue
            }
            try expect(UInt8(ascii: "]"))
            return
        }
    }

    /// Scans a string starting at the opening quote. Returns the range of its contents (between the
    /// quotes) and whether it contains escapes. Validates escapes, control characters and UTF-8.
    mutating func scanString() throws(Failure) -> (contents: Range<Int>, escaped: Bool) {
        index += 1  // opening quote
        let start = index
        var escaped = false
        while true {
            skipPlainASCII()
            guard index < count else { break }
            let byte = base[index]
            if byte == UInt8(ascii: "\"") {
                let range = start..<index
                index += 1
                return (range, escaped)
            }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                index += 1
                guard index < count else { break }
                switch base[index] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                    UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 1
                case UInt8(ascii: "u"):
                    guard index + 4 < count else { throw .syntax(offset: index) }
                    for offset in 1...4 where !base[index + offset].isHexDigit {
                        throw .syntax(offset: index + offset)
                    }
                    index += 5
                default:
                    throw .syntax(offset: index)
                }
                continue
            }
            if byte < 0x20 { throw .syntax(offset: index) }
            if byte < 0x80 {
                index += 1
                continue
            }
            try skipUTF8Sequence()
        }
        throw .syntax(offset: index)
    }

    /// Steps over whole 8-byte words of string content that need no check of their own: printable
    /// ASCII without `"` or `\`. A 5 MiB base64 chunk (`files.upload.chunk`) is such a run, and
    /// byte at a time its scan was the largest cost of the call in the profile (bench/files.sh).
    @inline(__always)
    mutating func skipPlainASCII() {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        while index &+ 8 <= count {
            let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
            // A byte's high bit in `flags` is set by that byte or one below it being < 0x20, ≥ 0x80,
            // `"` or `\` (a zero after the XOR; a borrow reaches only bytes above a flagged one),
            // and never when every byte is plain.
            let quote = word ^ (ones &* 0x22)
            let backslash = word ^ (ones &* 0x5C)
            let flags = (word &- ones &* 0x20) | word | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)
            if flags & high != 0 { return }
            index &+= 8
        }
    }

    /// Validates one multi-byte UTF-8 sequence (RFC 3629: no overlongs, no surrogates, ≤ U+10FFFF).
    @inline(__always)
    mutating func skipUTF8Sequence() throws(Failure) {
        let lead = base[index]
        let length: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            upper = 0x9F
        case 0xF0:
            length = 4
            lower = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            upper = 0x8F
        default: throw .syntax(offset: index)
        }
        guard index + length <= count else { throw .syntax(offset: index) }
        let second = base[index + 1]
        guard second >= lower, second <= upper else { throw .syntax(offset: index + 1) }
        var offset = 2
        while offset < length {
            let continuation = base[index + offset]
            guard continuation & 0xC0 == 0x80 else { throw .syntax(offset: index + offset) }
            offset += 1
        }
        index += length
    }

    mutating func scanNumber() throws(Failure) {
        if base[index] == UInt8(ascii: "-") { index += 1 }
        guard index < count else { throw .syntax(offset: index) }
        if base[index] == UInt8(ascii: "0") {
            index += 1
        } else if base[index].isDigit {
            while index < count, base[index].isDigit { index += 1 }
        } else {
            throw .syntax(offset: index)
        }
        if index < count, base[index] == UInt8(ascii: ".") {
            index += 1
            guard index < count, base[index].isDigit else { throw .syntax(offset: index) }
            while index < count, base[index].isDigit { index += 1 }
        }
        if index < count, base[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < count, base[index] == UInt8(ascii: "+") || base[index] == UInt8(ascii: "-") { index += 1 }
            guard index < count, base[index].isDigit else { throw .syntax(offset: index) }
            while index < count, base[index].isDigit { index += 1 }
        }
    }

    mutating func scanLiteral(_ literal: StaticString) throws(Failure) {
        let length = literal.utf8CodeUnitCount
        guard index + length <= count else { throw .syntax(offset: index) }
        let expected = literal.utf8Start
        for offset in 0..<length where base[index + offset] != expected[offset] {
            throw .syntax(offset: index + offset)
        }
        index += length
    }

    /// Skips one value without validating it, only matching brackets outside strings. Used to find
    /// the `id` of a message that failed a limit, so the error can still name the request.
    /// Returns false when the input ends before the value does.
    package mutating func skipValueLeniently() -> Bool {
        var depth = 0
        while index < count {
            let byte = base[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                while index < count, base[index] != UInt8(ascii: "\"") {
                    index += base[index] == UInt8(ascii: "\\") ? 2 : 1
                    skipPlainASCII()
                }
                // A backslash as the last byte steps past the end: callers measure from index.
                guard index < count else {
                    index = count
                    return false
                }
                index += 1
                if depth == 0 { return true }
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                index += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if depth == 0 { return true }  // end of the enclosing container: value was empty
                depth -= 1
                index += 1
                if depth == 0 { return true }
            case UInt8(ascii: ","):
                if depth == 0 { return true }
                index += 1
            default:
                index += 1
            }
        }
        return false
    }

    /// The deepest nesting in the input, counted without recursion (strings are skipped).
    package static func maximumDepth(of bytes: UnsafeRawBufferPointer) -> Int {
        var depth = 0
        var deepest = 0
        var inString = false
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if inString {
                if byte == UInt8(ascii: "\\") { index += 1 } else if byte == UInt8(ascii: "\"") { inString = false }
            } else {
                switch byte {
                case UInt8(ascii: "\""): inString = true
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                    deepest = max(deepest, depth)
                case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
                default: break
                }
            }
            index += 1
        }
        return deepest
    }
}

extension UInt8 {
    @inline(__always) var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
    @inline(__always) var isHexDigit: Bool {
        isDigit || (self | 0x20 >= UInt8(ascii: "a") && self | 0x20 <= UInt8(ascii: "f"))
    }
}
