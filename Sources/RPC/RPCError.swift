import NIOCore

/// An error as it appears on the wire: a code, a one-sentence message and optional structured data.
///
/// Codes are an open set: the JSON-RPC standard ones, LSP's cancellation code, and agentd's own in
/// `-32000…-32099` (see docs/ERRORS.md). Domains add theirs with `extension RPCError.Code`.
public struct RPCError: Error, Sendable, Equatable {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public init(_ rawValue: Int) { self.rawValue = rawValue }
        public var description: String { String(rawValue) }

        // JSON-RPC 2.0 §5.1
        public static let parseError = Code(-32700)
        public static let invalidRequest = Code(-32600)
        public static let methodNotFound = Code(-32601)
        public static let invalidParams = Code(-32602)
        public static let internalError = Code(-32603)
        // LSP's convention for a request cancelled by `$/cancelRequest`.
        public static let requestCancelled = Code(-32800)
        // agentd, protocol level (-32000…-32019).
        public static let requestTimeout = Code(-32001)
        public static let shuttingDown = Code(-32002)
        /// A batch member whose result would make the batch's reply pass the bound of reply bytes a
        /// connection may hold unread (or what is left of the daemon's).
        public static let batchReplyTooLarge = Code(-32003)
        public static let messageTooLarge = Code(-32010)
        public static let nestingTooDeep = Code(-32011)
        public static let batchTooLarge = Code(-32012)
        public static let tooManyConnections = Code(-32013)
        public static let tooManyConnectionsForUser = Code(-32014)
        public static let framingError = Code(-32015)
        /// `session.hello` (or `rpc.discover`) with no API version this server serves.
        public static let unsupportedAPIVersion = Code(-32016)
        /// A message begun and not finished within `frame_timeout_ms` (a slow-loris client).
        public static let frameTimeout = Code(-32019)
    }

    public var code: Code
    public var message: String
    /// Already-encoded JSON for the `data` member, or nil for none.
    public var data: JSONFragment?

    public init(_ code: Code, _ message: String, data: JSONFragment? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public init<Data: Encodable>(_ code: Code, _ message: String, data: Data) {
        self.init(code, message, data: try? JSONFragment(encoding: data))
    }
}

/// Domain errors say how they appear on the wire by conforming to this protocol; anything else that
/// reaches the dispatcher becomes an opaque internal error (details only in the log). The one place
/// that turns a thrown error into a reply is `RPCErrorFunnel` (RPCError+Funnel.swift).
public protocol RPCErrorConvertible: Error {
    var rpcError: RPCError { get }
}

extension RPCError: RPCErrorConvertible {
    public var rpcError: RPCError { self }
}

extension RPCError {
    /// The error as one newline-delimited reply with a null id: for a connection refused before any
    /// framing was negotiated (too many connections).
    public var unsolicitedReplyLine: ByteBuffer {
        var buffer = ByteBuffer()
        JSONWriter.writeError(id: .null, error: self, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "\n"))
        return buffer
    }

    public static let parse = RPCError(.parseError, "Parse error")
    public static let invalidRequest = RPCError(.invalidRequest, "Invalid Request")

    public static func invalidRequest(_ reason: String) -> RPCError {
        RPCError(.invalidRequest, "Invalid Request", data: ["reason": reason])
    }

    public static func methodNotFound(_ method: String) -> RPCError {
        RPCError(.methodNotFound, "Method not found", data: ["method": method])
    }

    /// No such method in `apiVersion`; `availableIn` names the versions that have it, if any.
    public static func methodNotFound(_ method: String, apiVersion: String, availableIn: [String]) -> RPCError {
        struct Data: Encodable {
            var method: String
            var apiVersion: String
            var availableIn: [String]?
        }
        let data = Data(method: method, apiVersion: apiVersion, availableIn: availableIn.isEmpty ? nil : availableIn)
        return RPCError(.methodNotFound, "Method not found", data: try? JSONFragment(encoding: data))
    }

    /// Wrong or missing params: `data` names the field (a dotted path, `""` for params as a whole).
    public static func invalidParams(field: String, reason: String) -> RPCError {
        RPCError(.invalidParams, "Invalid params", data: ["field": field, "reason": reason])
    }

    /// A param over a fixed size limit: `data` is `{field, reason, limit, actual}`.
    public static func invalidParams(field: String, reason: String, limit: Int, actual: Int) -> RPCError {
        RPCError(.invalidParams, "Invalid params", data: OverLimitData(field: field, reason: reason, limit: limit, actual: actual))
    }

    struct OverLimitData: Encodable {
        var field: String
        var reason: String
        var limit: Int
        var actual: Int
    }

    public static let internalError = RPCError(.internalError, "Internal error")

    public static let cancelled = RPCError(.requestCancelled, "Request cancelled")

    /// A limit was exceeded. `setting` is the configuration name of the limit.
    public static func limit(_ code: Code, _ message: String, setting: String, limit: Int, actual: Int) -> RPCError {
        RPCError(code, message, data: LimitData(setting: setting, limit: limit, actual: actual))
    }

    struct LimitData: Encodable {
        var setting: String
        var limit: Int
        var actual: Int
    }
}
