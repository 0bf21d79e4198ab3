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
        let text =
            #" { "skip": {"a": [1, 2.5e3, {"b": null}], "c": "x"}, "name" : "n", "count": -42, "tags": ["a", null, "b"], "more": [true, false] } "#
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

@Suite("JSONReader, any shape")
struct JSONReaderAnyShapeTests {
    /// A document of any shape back as compact JSON, numbers as written: what agentctl does with it.
    static func echo(_ reader: inout JSONReader) throws -> String {
        switch reader.nextKind {
        case .object:
            var members: [String] = []
            try reader.readObject { reader, key in members.append("\"\(key)\":" + (try echo(&reader))) }
            return "{" + members.joined(separator: ",") + "}"
        case .array:
            var values: [String] = []
            try reader.readArray { reader in values.append(try echo(&reader)) }
            return "[" + values.joined(separator: ",") + "]"
        case .string: return "\"\(try reader.readString()!)\""
        case .number: return try reader.readNumberText()!
        case .bool: return String(try reader.readBool()!)
        case .null:
            #expect(try reader.readNull())
            return "null"
        case nil: throw JSONReader.Mismatch()
        }
    }

    @Test("kinds, booleans and numbers exactly as written (no Double in between), members in order")
    func anyShape() throws {
        let text = #" {"z": 9007199254740993, "a": [1.50, -0, 2e-3, true, false, null, {}, []], "m": "x"} "#
        #expect(try JSONReader.read(text, Self.echo) == #"{"z":9007199254740993,"a":[1.50,-0,2e-3,true,false,null,{},[]],"m":"x"}"#)
    }

    @Test("invalid JSON throws with the byte offset where reading stopped")
    func offsets() {
        for (text, offset) in [("[1, tru]", 4), (#"{"a": 01}"#, 7), ("[1] x", 4), ("[-]", 2), ("", 0)] {
            do {
                _ = try JSONReader.read(text, Self.echo)
                Issue.record("accepted \(text)")
            } catch let mismatch as JSONReader.Mismatch {
                #expect(mismatch.offset == offset, "\(text)")
                #expect(mismatch.description == "stopped at byte \(offset)")
            } catch {
                Issue.record("\(error)")
            }
        }
    }
}
