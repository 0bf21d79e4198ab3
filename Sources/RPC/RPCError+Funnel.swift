/// The one place that turns any error into what the client sees. Unknown errors become an opaque
/// internal error; their details go to the log only.
public enum RPCErrorFunnel {
    public static func rpcError(for error: any Error, context: RPCContext) -> RPCError {
        if let reason = context.cancellation.reason, error is CancellationError || Task.isCancelled {
            // A handler that ends a client-cancelled call with its own -32800 says what it kept
            // (`data`, such as the agent's partial answer): that reply wins over the bare one.
            if reason == .requestedByClient, let convertible = error as? any RPCErrorConvertible {
                let own = convertible.rpcError
                if own.code == .requestCancelled { return own }
            }
            return rpcError(for: reason)
        }
        if let convertible = error as? any RPCErrorConvertible { return convertible.rpcError }
        if let decoding = error as? DecodingError { return invalidParams(decoding) }
        if let reason = context.cancellation.reason { return rpcError(for: reason) }
        context.logger.error("internal error", metadata: ["error": "\(String(reflecting: error))"])
        return .internalError
    }

    public static func rpcError(for reason: RPCCancellationReason) -> RPCError {
        switch reason {
        case .requestedByClient, .connectionClosed:
            return .cancelled
        case .timedOut(let limit):
            let milliseconds = Int(limit.milliseconds)
            return .limit(.requestTimeout, "Request timed out", setting: "request_timeout_ms", limit: milliseconds, actual: milliseconds)
        case .serverShutdown:
            return RPCError(.shuttingDown, "Server is shutting down")
        }
    }

    static func invalidParams(_ error: DecodingError) -> RPCError {
        func path(_ codingPath: [any CodingKey]) -> String {
            var result = ""
            for key in codingPath {
                if let index = key.intValue {
                    result += "[\(index)]"
                } else {
                    result += result.isEmpty ? key.stringValue : "." + key.stringValue
                }
            }
            return result
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            return .invalidParams(field: field, reason: "required")
        case .typeMismatch(let type, let context):
            return .invalidParams(field: path(context.codingPath), reason: "expected \(describe(type))")
        case .valueNotFound(let type, let context):
            return .invalidParams(field: path(context.codingPath), reason: "expected \(describe(type)), got null")
        case .dataCorrupted(let context):
            return .invalidParams(field: path(context.codingPath), reason: context.debugDescription)
        @unknown default:
            return .invalidParams(field: "", reason: "\(error)")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int8.Type, is Int16.Type, is Int32.Type, is Int64.Type,
            is UInt.Type, is UInt8.Type, is UInt16.Type, is UInt32.Type, is UInt64.Type:
            return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        default:
            let name = "\(type)"
            if name.hasPrefix("Dictionary") { return "an object" }
            if name.hasPrefix("Array") { return "an array" }
            return name
        }
    }
}
