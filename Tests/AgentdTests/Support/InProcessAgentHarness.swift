import AgentdTesting
import CurlHTTP
import FakeLLMServer
import Foundation
import Services
import Testing

@testable import Daemon

/// The in-process twin of `FakeProviderHarness`: the agent end to end without a process. The
/// daemon's graph runs in this process (`InProcessDaemon`) with the real provider stack — the
/// `[llm]`/`[search]` settings read from the same environment the live daemon gets, the provider
/// and Tavily built by `LLMProviderFactory` over a real libcurl client (`CurlHTTPClient`) — against
/// the fake server on loopback, speaking the real wire format. Only what needs the process
/// (signals, restarts, the daemon's own log, agentctl) stays on `withDaemon`.

/// Starts the fake server, runs `body`, shuts the server down (also when `body` throws). Never
/// blocks a thread: for in-process suites.
func withFakeProviderInProcess<T: Sendable>(
    configuration: FakeLLMServer.Configuration = .init(apiKey: FakeProvider.apiKey, tavilyKey: FakeProvider.tavilyKey),
    _ body: (FakeProvider) async throws -> T
) async throws -> T {
    let server = try await FakeLLMServer.start(configuration: configuration)
    do {
        let result = try await body(FakeProvider(server))
        await server.shutdown()
        return result
    } catch {
        await server.shutdown()
        throw error
    }
}

extension FakeProvider {
    /// `waitForRequests`, awaited instead of blocking.
    func requestsArrived(count: Int) async -> Bool {
        await server.waitForRequests(count: count, timeout: .seconds(30))
    }

    /// `waitForClientClose`, awaited instead of blocking.
    func clientClosed(requestIndex index: Int) async -> Bool {
        await server.waitForClientClose(requestIndex: index, timeout: .seconds(30))
    }
}

/// Runs `body` with an in-process daemon whose agent calls the provider and web search that
/// `environment` configures (`AGENTD_LLM_*`, `AGENTD_TAVILY_*`, as the live daemon reads them),
/// over a real libcurl client. The collaborators are the daemon's (system clock, time-ordered ids)
/// but for the fast hasher and the fake passwd database.
/// `runJobs: false`: no job runs unless the test runs it.
func withAgentDaemon<T: Sendable>(environment: [String: String], runJobs: Bool = true, _ body: (InProcessDaemon) async throws -> T) async throws -> T
{
    // An empty configuration file, so that no user's or /etc's file is read: only the environment's settings.
    let empty = FileManager.default.temporaryDirectory.appendingPathComponent("agentd-empty-\(UUID().uuidString).toml").path
    try Data().write(to: URL(fileURLWithPath: empty))
    defer { try? FileManager.default.removeItem(atPath: empty) }
    var loader = ConfigurationLoader()
    loader.explicitFile = empty
    loader.environment = environment
    let loaded = try loader.load(base: DaemonConfiguration(socketPath: "", databasePath: ":memory:")).configuration
    let logger = Dependencies.quietLogger
    let proxy = CurlProxySettings.environment(ProcessInfo.processInfo.environment.merging(environment) { $1 })
    let factory = LLMProviderFactory(client: CurlHTTPClient(proxy: proxy, logger: logger), logger: logger)
    let collaborators = Dependencies.Collaborators(
        clock: SystemClock(), ids: TimeOrderedIDGenerator(clock: SystemClock()), hasher: FakeHasher(), accounts: FakeAccounts(),
        llmProvider: factory.makeProvider(loaded.llm), webSearch: factory.makeWebSearchClient(loaded.search))
    return try await withInProcessDaemon(collaborators: collaborators, runJobs: runJobs, body)
}

/// `ClientConnection` on an in-process connection: the same calls, awaited. Its own ids are the
/// only ones on the connection (it writes every request itself), so replies match by id.
final class InProcessConnection {
    let client: InProcessClient
    private var nextID = 1
    /// Notifications read while waiting for a reply, oldest first.
    private var kept: [JSON] = []

    init(_ client: InProcessClient) {
        self.client = client
    }

    /// Sends a call without waiting; returns its id.
    @discardableResult
    func send(_ method: String, _ params: String = "{}") async throws -> Int {
        let id = nextID
        nextID += 1
        try await client.write(#"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"# + "\n")
        return id
    }

    func notify(_ method: String, _ params: String) async throws {
        try await client.write(#"{"jsonrpc":"2.0","method":"\#(method)","params":\#(params)}"# + "\n")
    }

    /// Reads until the reply to `id`; returns it with the notifications that came before it (and
    /// any kept earlier), in arrival order. Replies to other calls are an error.
    func reply(to id: Int, timeout: Duration = .seconds(30)) async throws -> (reply: JSON, notifications: [JSON]) {
        var notifications = kept
        kept = []
        while true {
            let message = try JSON(parsing: await client.nextMessage(timeout: timeout))
            guard let replyID = message["id"] else {
                notifications.append(message)
                continue
            }
            guard replyID == .integer(Int64(id)) else { throw HarnessError("expected the reply to call \(id), got \(message)") }
            return (message, notifications)
        }
    }

    /// Sends a call and returns its reply; notifications that come before it are kept.
    func call(_ method: String, _ params: String = "{}") async throws -> JSON {
        let (reply, notifications) = try await reply(to: send(method, params))
        kept = notifications
        return reply
    }

    /// The call's result; records an issue with the reply when it is an error.
    func result(_ method: String, _ params: String = "{}", sourceLocation: SourceLocation = #_sourceLocation) async throws -> JSON {
        let reply = try await call(method, params)
        return try #require(reply["result"], "\(method) \(params): \(reply)", sourceLocation: sourceLocation)
    }

    /// `events.subscribe`: the subscription's id.
    func subscribe(_ params: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let result = try await result("events.subscribe", params, sourceLocation: sourceLocation)
        return try #require(result["subscription"]?.stringValue, "\(result)", sourceLocation: sourceLocation)
    }

    /// The next notification (kept ones first); a reply here is an error.
    func nextNotification(timeout: Duration = .seconds(30)) async throws -> JSON {
        if !kept.isEmpty { return kept.removeFirst() }
        let message = try JSON(parsing: await client.nextMessage(timeout: timeout))
        guard message["id"] == nil else { throw HarnessError("expected a notification, got a reply: \(message)") }
        return message
    }

    /// The params of `events.event` notifications, up to and including the first one `isLast`
    /// accepts. Any other notification is an error.
    func events(until isLast: (JSON) -> Bool) async throws -> [JSON] {
        var events: [JSON] = []
        while true {
            let message = try await nextNotification()
            guard message["method"]?.stringValue == "events.event", let params = message["params"] else {
                throw HarnessError("expected events.event, got \(message) after \(events.count) events")
            }
            events.append(params)
            if isLast(params) { return events }
        }
    }

    /// `agent.delta` notifications until `count` have arrived.
    func deltas(_ count: Int) async throws -> [JSON] {
        var deltas: [JSON] = []
        while deltas.count < count {
            let message = try await nextNotification()
            if message["method"]?.stringValue == "agent.delta" { deltas.append(message["params"] ?? .null) }
        }
        return deltas
    }

    /// `v2.agent.act` (or another streaming method) to its reply: the reply and the `agent.delta` params.
    func act(_ params: String, method: String = "v2.agent.act") async throws -> (reply: JSON, deltas: [JSON]) {
        let (reply, notifications) = try await reply(to: send(method, params))
        return (reply, notifications.filter { $0["method"]?.stringValue == "agent.delta" }.compactMap { $0["params"] })
    }
}
