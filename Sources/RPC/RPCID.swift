/// A request id exactly as the client wrote it: the raw JSON text of a string, number or `null`.
///
/// Ids are never converted through `Double` or `Int`, so `9007199254740993`, `1.50` and `"x"` come
/// back byte for byte. Short ids (≤ 15 bytes, nearly all of them) fit Swift's small-string storage
/// and cost no allocation.
public struct RPCID: Hashable, Sendable, CustomStringConvertible {
    /// The id's JSON text, e.g. `7`, `"abc"` or `null`.
    public let json: String

    /// Wraps JSON text that is already known to be a valid string, number or `null` literal.
    public init(json: String) { self.json = json }

    public static let null = RPCID(json: "null")

    public init(_ number: Int) { self.json = String(number) }

    public init(string: String) { self.json = JSONWriter.quoted(string) }

    public var description: String { json }
}
