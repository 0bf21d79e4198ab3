import NIOCore

/// The outcome of one call: the encoded result, or an error.
public enum RPCOutcome: Sendable {
    /// The encoded JSON of the result.
    case result(ByteBuffer)
    /// A result of a deprecated method or version, with its notice (a JSON object), written as the
    /// response's `deprecation` member.
    case deprecatedResult(ByteBuffer, notice: ByteBuffer)
    case error(RPCError)

    public var error: RPCError? {
        if case .error(let error) = self { return error }
        return nil
    }
}

/// An outcome that is either known now or arrives later. Methods that answer synchronously (and
/// every error found before a handler runs) stay on the `.now` path: no future, no task, no hop.
public enum RPCReply: Sendable {
    case now(RPCOutcome)
    case later(EventLoopFuture<RPCOutcome>)

    /// Transforms the outcome when it is known (at once for `.now`).
    public func map(_ transform: @escaping @Sendable (RPCOutcome) -> RPCOutcome) -> RPCReply {
        switch self {
        case .now(let outcome): return .now(transform(outcome))
        case .later(let future): return .later(future.map(transform))
        }
    }

    /// Runs `body` with the outcome when it is known (at once for `.now`).
    public func whenComplete(_ body: @escaping @Sendable (RPCOutcome) -> Void) {
        switch self {
        case .now(let outcome): body(outcome)
        case .later(let future): future.whenSuccess(body)
        }
    }
}
