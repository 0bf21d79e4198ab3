/// A policy that wraps every call: logging, metrics, timeouts, and later auth, rate limits and
/// caching. Middleware sees the call before its handler and the outcome after it, and may answer
/// on its own (refuse, serve from cache) without calling `next`.
///
/// Middleware is synchronous and returns an `RPCReply`, so calls answered at once (pings, errors,
/// cache hits) never pay for a task or a thread hop; work that suspends comes back as `.later`.
///
/// ```swift
/// struct Stamp: RPCMiddleware {
///     func handle(_ request: RPCRequest, context: RPCContext, next: RPCNext) -> RPCReply {
///         let start = ContinuousClock.now
///         return next(request, context).map { outcome in
///             context.logger.debug("done in \(ContinuousClock.now - start)")
///             return outcome
///         }
///     }
/// }
/// ```
public protocol RPCMiddleware: Sendable {
    func handle(_ request: RPCRequest, context: RPCContext, next: RPCNext) -> RPCReply
}

/// The rest of the chain, ending in the method's handler.
public struct RPCNext: Sendable {
    let body: @Sendable (RPCRequest, RPCContext) -> RPCReply

    public init(_ body: @escaping @Sendable (RPCRequest, RPCContext) -> RPCReply) {
        self.body = body
    }

    public func callAsFunction(_ request: RPCRequest, _ context: RPCContext) -> RPCReply {
        body(request, context)
    }
}
