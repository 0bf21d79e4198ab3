/// A dictionary with string keys is a JSON object whose names are free: its schema says which
/// values it holds (`additionalProperties`), where the derived schema would list no properties and
/// refuse every name.
extension Dictionary: JSONSchemaProviding where Key == String, Value: Decodable {
    public static var jsonSchema: JSONSchema { .object(properties: [], additionalProperties: JSONSchema.of(Value.self)) }
    public static var schemaExample: [String: Value] { [:] }
}
