import RPC

/// Which rate class (`RPCLimits.rateClasses`) each method is in: the policy `RPCRateLimitMiddleware`
/// applies, kept in one table here rather than in the methods or their handlers.
enum RateLimitClasses {
    /// The classes whose rate is set per second (`limits.rate_<class>_per_second`); `register` is
    /// set per minute (`limits.rate_register_per_minute`).
    static let names = ["read", "write", "expensive", "auth", "agent"]

    /// Never limited: the protocol's own methods, liveness checks and what ends work.
    static let exempt: Set<String> = [
        "rpc.discover", "session.hello", "system.ping", "system.echo", "system.version", "system.metrics", "test.sleep",
        "auth.whoami", "auth.logout", "events.unsubscribe", "agent.cancel",
    ]

    /// Passwords and tokens: guessing them is what a limit must make slow.
    static let auth: Set<String> = ["auth.login", "auth.authenticate", "auth.changePassword"]

    /// New accounts: each one would be a budget of its own were calls not also charged to the uid;
    /// a few at once, then one a minute per uid.
    static let register: Set<String> = ["auth.register"]

    /// Calls whose cost grows with the data (full-text search, whole transcripts, history scans).
    static let expensive: Set<String> = ["search.query", "chats.export", "chats.fork", "events.replay"]

    static let writeVerbs: Set<String> = ["create", "update", "delete", "rename", "append", "select", "subscribe"]

    /// Long calls that a user runs a few of at once (`RPCRateClass.maxConcurrent`).
    static let agent: Set<String> = ["agent.act", "agent.regenerate"]

    /// The class of `method`; nil when it is never limited.
    static func classify(_ method: String) -> String? {
        if exempt.contains(method) { return nil }
        if auth.contains(method) { return "auth" }
        if register.contains(method) { return "register" }
        if agent.contains(method) { return "agent" }
        if expensive.contains(method) { return "expensive" }
        if let verb = method.split(separator: ".").last, writeVerbs.contains(String(verb)) { return "write" }
        return "read"
    }
}
