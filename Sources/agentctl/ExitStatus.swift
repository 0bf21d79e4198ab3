import RPC

/// agentctl's exit statuses: one per class of failure, so that a script can tell "try again later"
/// from "wrong arguments" from "no such thing" without parsing messages. `--help` and the README
/// show this table.
enum ExitStatus: Int32, CaseIterable {
    case ok = 0
    /// Bad arguments or input (unknown option, params that are not JSON or `key=value`).
    case usage = 1
    /// No daemon at the socket, or the connection was lost.
    case cannotConnect = 2
    /// -32020 Unauthorized, -32021 invalid username or password, a refused saved token.
    case unauthorized = 3
    /// -32030 Not found, -32601 Method not found.
    case notFound = 4
    /// -32602 Invalid params, -32600 Invalid Request, -32700 Parse error.
    case invalidParams = 5
    /// -32017 rate limited, -32018 too many calls in progress, -32023 too many failed logins,
    /// -32013/-32014 too many connections.
    case rateLimited = 6
    /// -32050…-32061: the LLM provider (not configured, refused, failed, timed out).
    case provider = 7
    /// Any other error reply (timeouts, cancellations, internal errors, …).
    case otherRPCError = 8

    static func forCode(_ code: RPCError.Code) -> ExitStatus {
        switch code.rawValue {
        case -32020, -32021: .unauthorized
        case -32030, -32601: .notFound
        case -32602, -32600, -32700: .invalidParams
        case -32017, -32018, -32023, -32013, -32014: .rateLimited
        case -32061 ... -32050: .provider
        default: .otherRPCError
        }
    }

    static let table = """
        Exit status:
          0  success
          1  usage: bad arguments or input
          2  cannot connect: no daemon at the socket, or the connection was lost
          3  unauthorized (-32020, -32021, a saved token that was refused)
          4  not found (-32030, -32601 method not found)
          5  invalid params or request (-32602, -32600, -32700)
          6  rate limited or busy (-32017, -32018, -32023, -32013, -32014)
          7  LLM provider error (-32050 … -32061)
          8  any other error reply
        """
}

/// A failure that ends agentctl: a message for stderr and the exit status.
struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    let status: ExitStatus
    /// The error reply this failure reports, for a command that reacts to its code or data
    /// (`files upload` continues from a -32070's expected offset).
    let rpcError: RPCError?

    init(_ description: String, status: ExitStatus, rpcError: RPCError? = nil) {
        self.description = description
        self.status = status
        self.rpcError = rpcError
    }

    /// An error reply, as `-32030 Not found {"id":"…","kind":"module"}`.
    static func rpc(_ error: RPCError) -> CLIFailure {
        CLIFailure(describe(error), status: .forCode(error.code), rpcError: error)
    }

    static func describe(_ error: RPCError) -> String {
        var text = "error \(error.code.rawValue): \(error.message)"
        if let data = error.data {
            text += " " + ((try? JSONTree(parsing: data.text).compact) ?? data.text)
        }
        return text
    }

    static func usage(_ message: String) -> CLIFailure {
        CLIFailure(message, status: .usage)
    }
}
