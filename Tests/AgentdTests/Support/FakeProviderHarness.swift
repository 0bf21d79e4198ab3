import FakeLLMServer
import Foundation
import Synchronization
import Testing

/// The end-to-end agent tests' harness: the fake provider (`FakeLLMServer`, in this process) and
/// the real daemon (a child process) pointed at it, driven over the socket.
///
/// The socket client blocks (poll with deadlines) while the fake server runs on Swift concurrency:
/// the suites that use it carry the `.blockingIO` trait, so a blocked test body holds a thread of
/// its own, never the cooperative pool the server needs, and waits on the server from there with
/// `FakeProvider`'s blocking wrappers.

/// Starts the fake server, runs `body`, shuts the server down (also when `body` throws). The caller
/// runs on `BlockingIOExecutor` (its suite's `.blockingIO` trait), and so does `body`.
func withFakeProvider<T>(
    configuration: FakeLLMServer.Configuration = .init(apiKey: FakeProvider.apiKey, tavilyKey: FakeProvider.tavilyKey),
    _ body: (FakeProvider) throws -> T
) async throws -> T {
    try requireBlockingIOThread("the fake provider's test body")
    let server = try await FakeLLMServer.start(configuration: configuration)
    let outcome = Result { try body(FakeProvider(server)) }
    await server.shutdown()
    return try outcome.get()
}

/// The fake provider seen from a test's own thread: scripting is the server's, waits block.
final class FakeProvider: Sendable {
    static let apiKey = "sk-test-key-not-secret"
    static let tavilyKey = "tvly-test-key-not-secret"
    static let chatPath = "/v1/chat/completions"

    let server: FakeLLMServer

    init(_ server: FakeLLMServer) {
        self.server = server
    }

    var baseURL: String { server.baseURL }
    var requests: [FakeRecordedRequest] { server.requests }
    /// The chat completion requests (any provider form), in order.
    var chatRequests: [FakeRecordedRequest] { server.requests.filter { $0.path.hasSuffix("/chat/completions") } }
    var searchRequests: [FakeRecordedRequest] { server.requests.filter { $0.path == "/search" } }

    func enqueue(_ response: FakeResponse, path: String? = FakeProvider.chatPath) {
        server.enqueue(response, path: path)
    }

    func openGate(_ gate: String) { server.openGate(gate) }

    func waitForRequests(count: Int) -> Bool {
        blockingAwait { [server] in await server.waitForRequests(count: count, timeout: .seconds(30)) }
    }

    func waitForClientClose(requestIndex index: Int) -> Bool {
        blockingAwait { [server] in await server.waitForClientClose(requestIndex: index, timeout: .seconds(30)) }
    }

    func waitForChunksSent(requestIndex index: Int, count: Int) -> Bool {
        blockingAwait { [server] in await server.waitForChunksSent(requestIndex: index, count: count, timeout: .seconds(30)) }
    }

    /// The daemon's environment for an OpenAI provider at this server (the Tavily fake too).
    func openAIEnvironment(maxRetries: Int = 2, _ extra: [String: String] = [:]) -> [String: String] {
        environment(
            [
                "AGENTD_LLM_PROVIDER": "openai", "AGENTD_LLM_BASE_URL": baseURL + "/v1", "AGENTD_LLM_API_KEY": Self.apiKey,
                "AGENTD_LLM_MODEL": "gpt-4o-mini", "AGENTD_LLM_MAX_RETRIES": String(maxRetries),
            ].merging(extra) { $1 })
    }

    /// `settings`, Tavily at this server, and no proxy for loopback (libcurl reads the usual
    /// proxy variables). No chat titles unless `settings` asks: a title job is one more request
    /// to the fake provider, which the tests count.
    func environment(_ settings: [String: String]) -> [String: String] {
        [
            "AGENTD_TAVILY_API_KEY": Self.tavilyKey, "AGENTD_TAVILY_BASE_URL": baseURL, "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost", "AGENTD_AGENT_AUTO_TITLE": "false",
        ].merging(settings) { $1 }
    }
}

/// Blocks this (non-cooperative) thread until `operation` finishes.
func blockingAwait<T: Sendable>(_ operation: @escaping @Sendable () async -> T) -> T {
    let result = Mutex<T?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        let value = await operation()
        result.withLock { $0 = value }
        done.signal()
    }
    done.wait()
    return result.withLock { $0! }
}

extension FakeRecordedRequest {
    /// The body as parsed JSON (`.null` when it is not JSON).
    var json: JSON { (try? JSON(parsing: Data(body))) ?? .null }

    /// The `messages` of a chat request as `(role, content)`.
    var chatMessages: [(role: String, content: String?)] {
        (json["messages"]?.arrayValue ?? []).map { ($0["role"]?.stringValue ?? "?", $0["content"]?.stringValue) }
    }
}

/// What a chat client does on its connection: wait for deltas, run a call to its reply.
extension ClientConnection {
    /// `agent.delta` notifications until `count` have arrived.
    func deltas(_ count: Int) throws -> [JSON] {
        var deltas: [JSON] = []
        while deltas.count < count {
            let message = try nextNotification()
            if message["method"]?.stringValue == "agent.delta" { deltas.append(message["params"] ?? .null) }
        }
        return deltas
    }

    /// `v2.agent.act` (or another streaming method) to its reply: the reply and the `agent.delta` params.
    func act(_ params: String, method: String = "v2.agent.act") throws -> (reply: JSON, deltas: [JSON]) {
        let (reply, notifications) = try reply(to: send(method, params))
        return (reply, notifications.filter { $0["method"]?.stringValue == "agent.delta" }.compactMap { $0["params"] })
    }
}

/// A JSON string literal for building params.
func quoted(_ text: String) -> String { JSON.string(text).description }
