import Testing

@testable import RPC

@Suite("JSON scanner")
struct JSONScannerTests {
    private func validate(_ text: String, maxDepth: Int = 64) -> Result<JSONScanner.Kind, JSONScanner.Failure> {
        Array(text.utf8).withUnsafeBytes { bytes in
            var scanner = JSONScanner(bytes, maxDepth: maxDepth)
            do throws(JSONScanner.Failure) {
                scanner.skipWhitespace()
                let kind = try scanner.skipValue(depth: 0)
                scanner.skipWhitespace()
                guard scanner.atEnd else { throw .syntax(offset: scanner.index) }
                return .success(kind)
            } catch {
                return .failure(error)
            }
        }
    }

    @Test(
        "accepts valid JSON",
        arguments: [
            "{}", "[]", "0", "-0", "1.5e10", "-12.25E-3", "\"\"", "true", "false", "null",
            "{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\\n\\\"\"}", " [ 1 , 2 ] ", "\"é中😀\"", "\"\\ud83d\\ude00\"",
        ])
    func acceptsValid(_ text: String) {
        #expect(throws: Never.self) { try validate(text).get() }
    }

    @Test(
        "rejects invalid JSON",
        arguments: [
            "", "{", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "+1", "1e", "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12\"",
            "{a:1}", "[1 2]", "{\"a\" 1}", "\"tab\there\"", "1 2", "'x'", "[\"\u{7}\"]",
        ])
    func rejectsInvalid(_ text: String) {
        guard case .failure(.syntax) = validate(text) else {
            Issue.record("accepted invalid JSON: \(text)")
            return
        }
    }

    @Test("rejects malformed UTF-8 inside strings")
    func rejectsBadUTF8() {
        let cases: [[UInt8]] = [
            [0x22, 0xC0, 0xAF, 0x22],  // overlong
            [0x22, 0xED, 0xA0, 0x80, 0x22],  // surrogate
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
            [0x22, 0xE2, 0x82, 0x22],  // truncated
            [0x22, 0xFF, 0x22],
        ]
        for bytes in cases {
            let result = bytes.withUnsafeBytes { raw -> Bool in
                var scanner = JSONScanner(raw, maxDepth: 8)
                return (try? scanner.skipValue(depth: 0)) != nil
            }
            #expect(result == false, "accepted \(bytes)")
        }
    }

    @Test("enforces the nesting limit and measures the actual depth")
    func depthLimit() {
        #expect((try? validate("[[[1]]]", maxDepth: 3).get()) == .array)
        #expect(validate("[[[[1]]]]", maxDepth: 3) == .failure(.tooDeep))
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(validate(deep, maxDepth: 64) == .failure(.tooDeep))
        let depth = Array("{\"a\":[\"[[[\",{\"b\":[]}]}".utf8).withUnsafeBytes { JSONScanner.maximumDepth(of: $0) }
        #expect(depth == 4)
    }

    /// Strings are stepped over 8 bytes at a time while the bytes are plain ASCII: every special
    /// byte must still be seen wherever it falls in a word, and at the end (a tail under 8 bytes).
    @Test("a special byte is seen at every position of a long string")
    func specialBytesAtEveryPosition() {
        func scan(_ bytes: [UInt8]) -> (contents: Range<Int>, escaped: Bool)? {
            bytes.withUnsafeBytes { raw in
                var scanner = JSONScanner(raw, maxDepth: 8)
                return try? scanner.scanString()
            }
        }
        let plain = Array(repeating: UInt8(ascii: "A"), count: 40)
        for position in 0..<plain.count {
            func string(_ inserted: [UInt8]) -> [UInt8] {
                var bytes = plain
                bytes.replaceSubrange(position..<position + 1, with: inserted)
                return [0x22] + bytes + [0x22]
            }
            // A quote ends the string there.
            #expect(scan(string([0x22]))?.contents == 1..<1 + position, "quote at \(position)")
            // A control character, a bad escape or bad UTF-8 is refused.
            for refused: [UInt8] in [[0x01], [0x1F], [0x5C, 0x78], [0xFF], [0xC0, 0xAF], [0xE2, 0x82]] {
                #expect(scan(string(refused)) == nil, "\(refused) at \(position)")
            }
            // An escape and valid UTF-8 are accepted, the escape noted.
            let escaped = string([0x5C, 0x22])
            #expect(scan(escaped)?.contents == 1..<escaped.count - 1, "escape at \(position)")
            #expect(scan(escaped)?.escaped == true)
            let utf8 = string(Array("é中😀".utf8))
            #expect(scan(utf8)?.contents == 1..<utf8.count - 1, "UTF-8 at \(position)")
            #expect(scan(utf8)?.escaped == false)
            // 0x20, 0x7F and the neighbours of `"` and `\` are plain.
            #expect(scan(string([0x20, 0x7F, 0x21, 0x23, 0x5B, 0x5D]))?.escaped == false)
        }
        // Unterminated: the scan runs to the end and fails.
        #expect(scan([0x22] + plain) == nil)
    }

    @Test("the lenient skip steps over a long string and its escapes")
    func lenientSkipOfLongString() {
        let body = String(repeating: "abcdefgh", count: 9) + "\\\"" + String(repeating: "x", count: 13)
        let text = "\"\(body)\",1"
        let end = Array(text.utf8).withUnsafeBytes { raw in
            var scanner = JSONScanner(raw, maxDepth: 8)
            _ = scanner.skipValueLeniently()
            return scanner.index
        }
        #expect(end == text.utf8.count - 2)
    }
}
