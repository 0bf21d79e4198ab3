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
}
