import Testing

@testable import RPC

@Suite("JSONReader")
struct JSONReaderTests {
    /// `{"name": …, "count": …, "tags": [...]}` as read by a caller that knows its shape.
    struct Shape: Equatable {
        var name: String?
        var count: Int?
        var tags: [String] = []
    }

    static func shape(_ text: String) throws -> Shape {
        try JSONReader.read(text) { reader in
            var shape = Shape()
            try reader.readObject { reader, key in
                switch key {
                case "name": shape.name = try reader.readString()
                case "count": shape.count = try reader.readInt()
                case "tags": try reader.readArray { reader in shape.tags.append(try reader.readString() ?? "-") }
                default: try reader.skip()
                }
            }
            return shape
        }
    }

    @Test("reads the members asked for, skips the others of any kind, null reads as absent")
    func readsAndSkips() throws {
        let text = #" { "skip": {"a": [1, 2.5e3, {"b": null}], "c": "x"}, "name" : "n", "count": -42, "tags": ["a", null, "b"], "more": [true, false] } "#
        #expect(try Self.shape(text) == Shape(name: "n", count: -42, tags: ["a", "-", "b"]))
        #expect(try Self.shape(#"{"name": null, "count": null, "tags": null}"#) == Shape())
        #expect(try Self.shape("{}") == Shape())
    }

    @Test("escapes: quotes, control escapes, \\u of the BMP and a surrogate pair, raw UTF-8")
    func escapes() throws {
        let shape = try Self.shape(#"{"name": "a\"b\\c\nd\te\u00e9\ud83d\ude00 é 😀 \/"}"#)
        #expect(shape.name == "a\"b\\c\nd\te\u{e9}\u{1F600} é 😀 /")
    }

    @Test("a member of another type, invalid JSON, trailing bytes or too deep a document throw")
    func mismatches() {
        for text in [
            #"{"name": 1}"#, #"{"count": "1"}"#, #"{"count": 1.5}"#, #"{"count": 1e3}"#, #"{"count": 99999999999999999999}"#,
            #"{"tags": "a"}"#, #"["name"]"#, #"{"name": "a"} x"#, #"{"name": "a",}"#, #"{"name" "a"}"#, #"{"skip": [1,]}"#,
            #"{"name": "a"#, #"{"skip": tru}"#, "", #"{"name": "\x"}"#,
        ] {
            #expect(throws: JSONReader.Mismatch.self, "\(text)") { try Self.shape(text) }
        }
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSONReader.Mismatch.self) { try Self.shape(#"{"skip": \#(deep)}"#) }
    }
}
