import Testing

@testable import RPC

@Suite("Schemas derived from Codable types")
struct JSONSchemaTests {
    enum Color: String, RPCStringEnum { case red, green }

    struct Inner: Codable { var tags: [String] }

    struct Params: Codable {
        var title: String
        var count: Int?
        var ratio: Double
        var color: Color
        var inner: Inner?
        var raw: JSONFragment?
    }

    @Test("properties in declaration order, optionality, nesting, enums")
    func derives() {
        let schema = JSONSchema.of(Params.self)
        guard let properties = schema.properties else {
            Issue.record("not an object: \(schema)")
            return
        }
        #expect(properties.map(\.name) == ["title", "count", "ratio", "color", "inner", "raw"])
        #expect(properties.map(\.required) == [true, false, true, true, false, false])
        #expect(properties[0].schema == .string())
        #expect(properties[1].schema == .integer)
        #expect(properties[2].schema == .number)
        #expect(properties[3].schema == .string(enumeration: ["red", "green"]))
        #expect(properties[4].schema == .object(properties: [.init("tags", .array(items: .string()), required: true)]))
        #expect(properties[5].schema == .any)
    }

    @Test("no params is an empty object")
    func noParams() {
        #expect(JSONSchema.of(RPCNoParams.self) == .object(properties: []))
    }
}
