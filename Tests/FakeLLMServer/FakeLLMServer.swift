// FakeLLMServer: a loopback HTTP/1.1 server that speaks OpenAI Chat Completions, Azure OpenAI,
// OpenAI-compatible servers and Tavily search, for tests and benchmarks.
//
// Start, script, observe:
//
//     let server = try await FakeLLMServer.start()              // 127.0.0.1, a free port
//     server.enqueue(.rateLimited(retryAfterMs: 20))            // next request (any path) gets this
//     server.enqueue(.chatStream(["Hi"]).gating(chunk: 2, on: "go"), path: "/v1/chat/completions")
//     … point the client at server.baseURL …
//     server.openGate("go")
//     let closed = await server.waitForClientClose(requestIndex: 1, timeout: .seconds(30))
//     server.requests[0].header("authorization"); server.connectionCount
//     await server.shutdown()
//
// Routes when nothing is scripted (POST only):
//   /v1/chat/completions, /chat/completions        OpenAI / OpenAI-compatible (`Authorization: Bearer`)
//   /openai/deployments/{d}/chat/completions?api-version=…   Azure (`api-key`; 404 without api-version)
//   /openai/v1/chat/completions                    Azure v1 (`api-key` or Bearer)
//   /search                                        Tavily (`Authorization: Bearer tvly-…`)
// Keys are checked only when `Configuration.apiKey` / `tavilyKey` are set (otherwise any or none).
// `"stream": true` answers SSE (`data: {…}\n\n` … `data: [DONE]`), with a final usage chunk
// (`choices: []`) when `stream_options.include_usage` is true; otherwise a `chat.completion` body.
//
// A message's `content` may be a string or OpenAI's parts (`text`, `image_url` with a `data:image/…;
// base64,` or `https://` URL, images in user messages only); other parts get OpenAI's 400. What
// arrived is in `requests[i].chatParts` / `.chatImageURLs`.
// The default answer echoes the last user message: "Echo: <text>", streamed one word per delta.
// Scenarios by model name (so a daemon run as a subprocess or a benchmark can pick behaviour):
//   fake-slow                 the echo, 100 ms between deltas
//   fake-stream-<N>x<MS>      N deltas "tok1 " … "tokN ", MS ms apart (0 for no delay): benchmarks
//   fake-timestamped[-<N>x<MS>]  N deltas (default 20, 10 ms apart), each the CLOCK_MONOTONIC
//                             nanoseconds at which it was written, then a space (bench/agent.sh)
//   fake-stall                one delta, then silence with the connection open
//   fake-disconnect           two events, then the server closes the connection mid-body
//   fake-flaky-<N>            the first N requests naming this model get 503 (retry-after-ms: 10)
//   fake-reasoning            400 unsupported_parameter when the body has `max_tokens`, else the echo
//   fake-tool-loop            a `web_search` tool call for the user's text until a `tool` message
//                             follows it, then "Echo: <tool content>"
//   fake-byte-split, fake-crlf, fake-comments, fake-fields, fake-multiline, fake-obfuscation,
//   fake-usage-empty, fake-usage-null, fake-usage-missing, fake-azure, fake-content-filter,
//   fake-error-event, fake-llamacpp-error, fake-parallel-tools, fake-whole-tool
//                             the quirk streams of FakeResponse+Chat.swift
//   fake-401, fake-404, fake-context-overflow, fake-max-tokens, fake-413, fake-429, fake-429-date,
//   fake-429-too-large, fake-quota, fake-500, fake-502, fake-503, fake-content-filter-400
//                             the error bodies of FakeResponse+Errors.swift
// Tavily queries: "fake-401", "fake-429", "fake-432", "fake-433", "fake-500" answer those errors.

import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

public final class FakeLLMServer: Sendable {
    public struct Configuration: Sendable {
        /// When set, OpenAI routes require `Authorization: Bearer <apiKey>` and Azure routes
        /// `api-key: <apiKey>`; a wrong or missing key gets the provider's 401.
        public var apiKey: String?
        /// When set, `/search` requires `Authorization: Bearer <tavilyKey>`.
        public var tavilyKey: String?

        public init(apiKey: String? = nil, tavilyKey: String? = nil) {
            self.apiKey = apiKey
            self.tavilyKey = tavilyKey
        }
    }

    typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    struct Watcher {
        var id: Int
        var isSatisfied: @Sendable (State) -> Bool
        var continuation: CheckedContinuation<Bool, Never>
    }

    struct State {
        var scripted: [(path: String?, response: FakeResponse)] = []
        var requests: [FakeRecordedRequest] = []
        var responseEnded: Set<Int> = []
        var serverClosed: Set<Int> = []
        var clientClosed: Set<Int> = []
        var chunksSent: [Int: Int] = [:]
        var connections = 0
        var openGates: Set<String> = []
        var modelCounters: [String: Int] = [:]
        var watchers: [Watcher] = []
        var nextWatcher = 0
    }

    /// The bound port on 127.0.0.1.
    public let port: Int
    public let configuration: Configuration
    let state = Mutex(State())
    private let channel: NIOAsyncChannel<Connection, Never>
    private let runTask = Mutex<Task<Void, Never>?>(nil)

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    private init(port: Int, configuration: Configuration, channel: NIOAsyncChannel<Connection, Never>) {
        self.port = port
        self.configuration = configuration
        self.channel = channel
    }

    /// Listens on 127.0.0.1:`port` (0: any free port, see `port`) and serves until `shutdown()`.
    public static func start(port: Int = 0, configuration: Configuration = .init()) async throws -> FakeLLMServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    // No pipelining assistance: it stops reading while a response is in flight,
                    // which would hide the client's close until the response ended.
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
                    return try Connection(wrappingChannelSynchronously: channel)
                }
            }
        let server = FakeLLMServer(port: channel.channel.localAddress?.port ?? port, configuration: configuration, channel: channel)
        let task = Task { await server.acceptLoop() }
        server.runTask.withLock { $0 = task }
        return server
    }

    /// Stops listening and drops every connection (stalled responses included).
    public func shutdown() async {
        let task = runTask.withLock { $0 }
        task?.cancel()
        try? await channel.channel.close()
        await task?.value
    }

    // MARK: Scripting

    /// Queues `response` for the next request (FIFO), or the next one to `path` (exact path,
    /// without the query). Unscripted requests get the default route's answer.
    public func enqueue(_ response: FakeResponse, path: String? = nil) {
        state.withLock { $0.scripted.append((path, response)) }
    }

    /// The placeholder a chunk's text may hold: replaced, when the chunk is written, by the
    /// CLOCK_MONOTONIC time in nanoseconds (one clock for every process on the machine), so a
    /// receiver elsewhere measures the delta's latency from here (bench/agentload.c).
    public static let stampPlaceholder = "@@STAMP@@"

    static func stamped(_ bytes: [UInt8]) -> [UInt8] {
        let placeholder = Array(stampPlaceholder.utf8)
        guard let start = bytes.firstRange(of: placeholder) else { return bytes }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        var out = bytes
        out.replaceSubrange(start, with: Array(String(Int(now.tv_sec) * 1_000_000_000 + Int(now.tv_nsec)).utf8))
        return out
    }

    /// Lets chunks waiting on `gate` go (now and later).
    public func openGate(_ gate: String) {
        mutate { $0.openGates.insert(gate) }
    }

    // MARK: Observing

    /// Every request received so far, in order.
    public var requests: [FakeRecordedRequest] { state.withLock { $0.requests } }

    /// TCP connections accepted so far.
    public var connectionCount: Int { state.withLock { $0.connections } }

    /// Whether the client closed the connection before the response to request `index` ended.
    public func clientClosedEarly(requestIndex index: Int) -> Bool {
        state.withLock { $0.clientClosed.contains(index) }
    }

    /// Waits until `count` requests have arrived; false on timeout.
    @discardableResult
    public func waitForRequests(count: Int, timeout: Duration = .seconds(30)) async -> Bool {
        await waitUntil(timeout: timeout) { $0.requests.count >= count }
    }

    /// Waits until the client has closed the connection of request `index` before its response
    /// ended (a cancelled or timed-out transfer); false on timeout.
    public func waitForClientClose(requestIndex index: Int, timeout: Duration = .seconds(30)) async -> Bool {
        await waitUntil(timeout: timeout) { $0.clientClosed.contains(index) }
    }

    /// Waits until `count` chunks of request `index`'s streamed response were written; false on timeout.
    public func waitForChunksSent(requestIndex index: Int, count: Int, timeout: Duration = .seconds(30)) async -> Bool {
        await waitUntil(timeout: timeout) { ($0.chunksSent[index] ?? 0) >= count }
    }

    /// Waits until request `index`'s response was sent completely; false on timeout.
    public func waitForResponseEnd(requestIndex index: Int, timeout: Duration = .seconds(30)) async -> Bool {
        await waitUntil(timeout: timeout) { $0.responseEnded.contains(index) }
    }

    // MARK: Waiting machinery

    func mutate(_ change: (inout State) -> Void) {
        let ready = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            change(&state)
            var ready: [CheckedContinuation<Bool, Never>] = []
            var waiting: [Watcher] = []
            let snapshot = state
            for watcher in state.watchers {
                if watcher.isSatisfied(snapshot) { ready.append(watcher.continuation) } else { waiting.append(watcher) }
            }
            state.watchers = waiting
            return ready
        }
        for continuation in ready { continuation.resume(returning: true) }
    }

    /// True once `condition` holds; false after `timeout` or when the waiting task is cancelled.
    func waitUntil(timeout: Duration, _ condition: @escaping @Sendable (State) -> Bool) async -> Bool {
        let id = state.withLock { state in
            state.nextWatcher += 1
            return state.nextWatcher
        }
        let resign: @Sendable () -> Void = { [self] in
            let continuation = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                guard let at = state.watchers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.watchers.remove(at: at).continuation
            }
            continuation?.resume(returning: false)
        }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let now = self.state.withLock { state -> Bool in
                            if condition(state) { return true }
                            state.watchers.append(Watcher(id: id, isSatisfied: condition, continuation: continuation))
                            return false
                        }
                        if now { continuation.resume(returning: true) }
                    }
                } onCancel: {
                    resign()
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                resign()
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    // MARK: Serving

    private func acceptLoop() async {
        try? await channel.executeThenClose { inbound in
            await withDiscardingTaskGroup { group in
                do {
                    for try await connection in inbound {
                        group.addTask { await self.serve(connection) }
                    }
                } catch {}
                // Shutting down: drop connections whose responses stall.
                group.cancelAll()
            }
        }
    }

    private func serve(_ connection: Connection) async {
        var connectionID = 0
        mutate {
            $0.connections += 1
            connectionID = $0.connections
        }
        try? await connection.executeThenClose { inbound, outbound in
            await withTaskGroup(of: Void.self) { group in
                var head: HTTPRequestHead?
                var body: [UInt8] = []
                var inFlight: [Int] = []
                do {
                    for try await part in inbound {
                        switch part {
                        case .head(let h):
                            head = h
                            body = []
                        case .body(let buffer):
                            body += buffer.readableBytesView
                        case .end:
                            guard let h = head else { continue }
                            let request = record(h, body: body, connection: connectionID)
                            inFlight.append(request.index)
                            let response = respond(to: request)
                            group.addTask { await self.send(response, for: request.index, outbound: outbound, channel: connection.channel) }
                            head = nil
                        }
                    }
                } catch {}
                // The client went (or the server closed it): any response not yet ended was cut.
                mutate { state in
                    for index in inFlight where !state.responseEnded.contains(index) && !state.serverClosed.contains(index) {
                        state.clientClosed.insert(index)
                    }
                }
                group.cancelAll()
            }
        }
    }

    private func record(_ head: HTTPRequestHead, body: [UInt8], connection: Int) -> FakeRecordedRequest {
        var recorded: FakeRecordedRequest!
        mutate { state in
            recorded = FakeRecordedRequest(
                index: state.requests.count, connection: connection, method: head.method.rawValue, uri: head.uri,
                headers: head.headers.map { (name: $0.name, value: $0.value) }, body: body)
            state.requests.append(recorded)
        }
        return recorded
    }

    private func respond(to request: FakeRecordedRequest) -> FakeResponse {
        let scripted = state.withLock { state -> FakeResponse? in
            guard let at = state.scripted.firstIndex(where: { $0.path == nil || $0.path == request.path }) else { return nil }
            return state.scripted.remove(at: at).response
        }
        return scripted ?? defaultResponse(to: request)
    }

    private func send(_ response: FakeResponse, for index: Int, outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, channel: any Channel)
        async
    {
        do {
            for status in response.interimStatuses {
                try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status))))
            }
            var headers = HTTPHeaders(response.headers.map { ($0.name, $0.value) })
            switch response.body {
            case .whole(let bytes):
                headers.replaceOrAdd(name: "Content-Length", value: String(bytes.count))
                try await outbound.write(
                    .head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)))
                if !bytes.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: bytes)))) }
                mutate { $0.responseEnded.insert(index) }
                try await outbound.write(.end(nil))
            case .stream(let chunks, let end):
                try await outbound.write(
                    .head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)))
                for (number, chunk) in chunks.enumerated() {
                    if let gate = chunk.gate {
                        guard await waitUntil(timeout: .seconds(600), { $0.openGates.contains(gate) }) else { return }
                    }
                    if let delay = chunk.delay { try await Task.sleep(for: delay) }
                    try Task.checkCancellation()
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: Self.stamped(chunk.bytes)))))
                    mutate { $0.chunksSent[index] = number + 1 }
                }
                switch end {
                case .finish:
                    mutate { $0.responseEnded.insert(index) }
                    try await outbound.write(.end(nil))
                case .stallForever:
                    try await Task.sleep(for: .seconds(86_400))
                case .closeConnection:
                    mutate { $0.serverClosed.insert(index) }
                    try await channel.close()
                }
            }
        } catch {
            // The connection went while we wrote or waited: `serve` records who closed it.
        }
    }
}
