/// A JSON-RPC method, declared as a type. The router decodes `Params` straight from the request's
/// bytes and encodes `Result`; the registry also generates the method's OpenRPC description.
///
/// ```swift
/// enum Ping: RPCMethod {
///     static let name = "system.ping"
///     static let summary = "Answers \"pong\"; checks that the daemon is alive."
///     static let rateClass: RPCRateClassName = .exempt
///     typealias Params = RPCNoParams
///     typealias Result = String
/// }
/// router.onInline(Ping.self) { _, _ in "pong" }
/// ```
///
/// Params are accepted by name (an object) and by position (an array, in the order the `Params`
/// type declares its properties). Unknown names are refused with `-32602`, so a typo never passes
/// silently.
public protocol RPCMethod: Sendable {
    associatedtype Params: Decodable & Sendable = RPCNoParams
    associatedtype Result: Codable & Sendable

    /// The wire name, `domain.verb`.
    static var name: String { get }
    /// One line for `rpc.discover` and `agentctl methods`.
    static var summary: String { get }
    /// Application errors this method can answer with (documented in `rpc.discover`).
    static var errors: [RPCErrorDescription] { get }
    /// How long a call may run before it is cancelled and answered with `-32001`; nil for the
    /// server's default.
    static var timeout: Duration? { get }
    /// Set when the method is deprecated: what to use instead. Its calls still work; each reply
    /// carries a `deprecation` member and `rpc.discover` says `deprecated: true`.
    static var deprecation: String? { get }
    /// The budget its calls spend (`RPCRateLimitMiddleware`). No default: a new method says how it
    /// may be limited rather than falling silently into a class.
    static var rateClass: RPCRateClassName { get }
    /// How `RPCCacheMiddleware` keeps its results; nil (the default): not cached.
    static var cacheRule: RPCCacheRule? { get }
}

extension RPCMethod {
    public static var errors: [RPCErrorDescription] { [] }
    public static var timeout: Duration? { nil }
    public static var deprecation: String? { nil }
    public static var cacheRule: RPCCacheRule? { nil }
}

/// Params with one string member that may be megabytes long (the base64 data of
/// `files.upload.chunk`). The router copies that string straight out of the message into the
/// member and gives `JSONDecoder` only the rest: its byte-at-a-time scan of the string, the copy of
/// the whole params it decodes from and their page faults were over half the time of a 5 MiB call
/// (bench/files.sh). Nothing changes on the wire or in the schema.
public protocol RPCLargeStringParams: Decodable {
    /// The member's name in a params object.
    static var largeStringName: String { get }
    /// Stores the member's value (decoded as `JSONDecoder` would: escapes resolved).
    mutating func setLargeString(_ value: String)
}

/// A notification the server sends (documented under `x-notifications` in `rpc.discover`).
public protocol RPCNotification: Sendable {
    associatedtype Params: Codable & Sendable
    static var name: String { get }
    static var summary: String { get }
}

/// An error a method documents: its code, message and what `data` holds.
public struct RPCErrorDescription: Sendable, Codable, Hashable {
    public var code: Int
    public var message: String
    public var data: String?

    public init(_ code: RPCError.Code, _ message: String, data: String? = nil) {
        self.code = code.rawValue
        self.message = message
        self.data = data
    }
}

/// Params of a method that takes none. Accepts absent params, `{}` and `[]`.
public struct RPCNoParams: Codable, Sendable, Hashable, JSONSchemaProviding {
    public static var jsonSchema: JSONSchema { .object(properties: []) }
    public static var schemaExample: RPCNoParams { RPCNoParams() }

    public init() {}
    public init(from decoder: any Decoder) throws {}
    public func encode(to encoder: any Encoder) throws {
        _ = encoder.container(keyedBy: AnyCodingKey.self)
    }
}
