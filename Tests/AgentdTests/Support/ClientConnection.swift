import Testing

/// One connection used as a client uses it: each call is matched to its reply by id, and the
/// notifications that arrive meanwhile (`agent.delta`, `events.event`, …) are kept, in order, for
/// `nextNotification`.
final class ClientConnection {
    let client: RPCTestClient
    private var nextID = 1
    /// Notifications read while waiting for a reply, oldest first.
    private var kept: [JSON] = []

    init(_ client: RPCTestClient) {
        self.client = client
    }

    /// Sends a call without waiting; returns its id.
    @discardableResult
    func send(_ method: String, _ params: String = "{}") throws -> Int {
        let id = nextID
        nextID += 1
        try client.send(line: #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"#)
        return id
    }

    func notify(_ method: String, _ params: String) throws {
        try client.send(line: #"{"jsonrpc":"2.0","method":"\#(method)","params":\#(params)}"#)
    }

    /// Reads until the reply to `id`; returns it with the notifications that came before it (and
    /// any kept earlier), in arrival order. Replies to other calls are an error.
    func reply(to id: Int, timeout: Duration = .seconds(30)) throws -> (reply: JSON, notifications: [JSON]) {
        let deadline = Deadline(timeout)
        var notifications = kept
        kept = []
        while true {
            let message = try client.readJSON(timeout: deadline.remaining)
            guard let replyID = message["id"] else {
                notifications.append(message)
                continue
            }
            guard replyID == .integer(Int64(id)) else { throw HarnessError("expected the reply to call \(id), got \(message)") }
            return (message, notifications)
        }
    }

    /// Sends a call and returns its reply; notifications that come before it are kept.
    func call(_ method: String, _ params: String = "{}", timeout: Duration = .seconds(30)) throws -> JSON {
        let (reply, notifications) = try reply(to: send(method, params), timeout: timeout)
        kept = notifications
        return reply
    }

    /// The call's result; records an issue with the reply when it is an error.
    func result(_ method: String, _ params: String = "{}", sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON {
        let reply = try call(method, params)
        return try #require(reply["result"], "\(method) \(params): \(reply)", sourceLocation: sourceLocation)
    }

    /// `events.subscribe`: the subscription's id and `after`. Records an issue when an event of
    /// the new subscription came before the reply (the client could not know its id yet).
    func subscribe(_ params: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> (id: String, after: Int64) {
        let keptBefore = kept.count
        let result = try result("events.subscribe", params, sourceLocation: sourceLocation)
        let id = try #require(result["subscription"]?.stringValue, "\(result)", sourceLocation: sourceLocation)
        let after = try #require(result["after"]?.intValue, "\(result)", sourceLocation: sourceLocation)
        let early = kept[keptBefore...].filter { $0["params"]?["subscription"]?.stringValue == id }
        #expect(early.isEmpty, "events of \(id) before its subscribe reply: \(early)", sourceLocation: sourceLocation)
        return (id, Int64(after))
    }

    /// The next notification (kept ones first); a reply here is an error.
    func nextNotification(timeout: Duration = .seconds(30)) throws -> JSON {
        if !kept.isEmpty { return kept.removeFirst() }
        let message = try client.readJSON(timeout: timeout)
        guard message["id"] == nil else { throw HarnessError("expected a notification, got a reply: \(message)") }
        return message
    }

    /// The params of `events.event` notifications, up to and including the first one `isLast`
    /// accepts. Any other notification (`events.overflow`) is an error.
    func events(until isLast: (JSON) -> Bool, timeout: Duration = .seconds(30)) throws -> [JSON] {
        let deadline = Deadline(timeout)
        var events: [JSON] = []
        while true {
            let message = try nextNotification(timeout: deadline.remaining)
            guard message["method"]?.stringValue == "events.event", let params = message["params"] else {
                throw HarnessError("expected events.event, got \(message) after \(events.count) events")
            }
            events.append(params)
            if isLast(params) { return events }
        }
    }

    /// Records an issue when a notification was kept or any byte arrives within `within`.
    func expectNothing(within: Duration, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(kept.isEmpty, "unexpected notifications: \(kept)\(comment.map { " (\($0))" } ?? "")", sourceLocation: sourceLocation)
        try client.expectNoData(within: within, comment, sourceLocation: sourceLocation)
    }
}
