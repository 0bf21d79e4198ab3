import Testing

@testable import RPC

@Suite("Schemas of dictionaries")
struct DictionarySchemaTests {
    struct Params: Codable {
        var values: [String: String]?
        var counts: [String: [Int]]
    }

    @Test("a string-keyed dictionary is an object with free names whose values have the value's schema")
    func dictionaries() {
        let properties = JSONSchema.of(Params.self).properties ?? []
        #expect(properties.map(\.name) == ["values", "counts"])
        #expect(properties.map(\.required) == [false, true])
        #expect(properties.first?.schema == .object(properties: [], additionalProperties: .string()))
        #expect(properties.last?.schema == .object(properties: [], additionalProperties: .array(items: .integer)))
        #expect(
            JSONSchema.of([String: String].self).jsonValue
                == .object(["type": .string("object"), "properties": .object([:]), "additionalProperties": .object(["type": .string("string")])]))
    }
}
