import CurlHTTP
import FakeLLMServer
import Services
import Testing

/// CurlHTTPClient against the fake server on 127.0.0.1. Ordering comes from the server's gates and
/// recorded events, never from sleeps; every wait has a 30 s hang guard.
@Suite struct CurlHTTPClientTests {
    static func withServer(
        proxy: CurlProxySettings = .none, bufferLimit: Int = 1 << 20,
        _ body: (FakeLLMServer, CurlHTTPClient) async throws -> Void
    ) async throws {
        let server = try await FakeLLMServer.start()
        let client = CurlHTTPClient(proxy: proxy, bufferLimit: bufferLimit)
        do {
            try await body(server, client)
        } catch {
            await client.shutdown()
            await server.shutdown()
            throw error
        }
        await client.shutdown()
        await server.shutdown()
    }

    // Limits that only stop a hung test: generous, because a starved machine (2 cores, many suites)
    // can delay a test by tens of seconds.
    static let guardTimeouts = HTTPTimeouts(connect: .seconds(120), total: .seconds(120), idle: .seconds(120))

    @Test func statusHeadersAndRequestAsSent() async throws {
        try await Self.withServer { server, client in
            server.enqueue(.json(status: 201, headers: [("X-Answer", "forty two")], "{\"ok\":true}"))
            let request = HTTPRequest(
                url: server.baseURL + "/v1/things?x=1",
                headers: [("Authorization", "Bearer test-key-not-secret"), ("Content-Type", "application/json")],
                body: Array("{\"a\":1}".utf8), timeouts: Self.guardTimeouts)
            let (head, body) = try await client.collect(request)
            #expect(head.status == 201)
            #expect(head.header("x-answer") == "forty two")
            #expect(String(decoding: body, as: UTF8.self) == "{\"ok\":true}")
            let recorded = try #require(server.requests.first)
            #expect(recorded.method == "POST")
            #expect(recorded.path == "/v1/things")
            #expect(recorded.query == "x=1")
            #expect(recorded.header("authorization") == "Bearer test-key-not-secret")
            #expect(recorded.header("content-type") == "application/json")
            #expect(recorded.header("expect") == nil)
            #expect(recorded.bodyText == "{\"a\":1}")
        }
    }

    @Test func getWithoutBodySendsNoContentType() async throws {
        try await Self.withServer { server, client in
            server.enqueue(.json("[]"))
            let (head, _) = try await client.collect(HTTPRequest(method: "GET", url: server.baseURL + "/x", timeouts: Self.guardTimeouts))
            #expect(head.status == 200)
            #expect(server.requests.first?.method == "GET")
            #expect(server.requests.first?.header("content-type") == nil)
        }
    }

    @Test func executeReturnsAtTheHeadAndKeepsTheLastHeaderBlock() async throws {
        try await Self.withServer { server, client in
            // A 103 interim head first; the body waits for a gate opened only after `execute` returned.
            server.enqueue(
                FakeResponse(
                    status: 200, headers: [("X-Final", "yes")], interimStatuses: [103],
                    body: .stream([.init("body", gate: "body")], end: .finish)))
            let response = try await client.execute(HTTPRequest(url: server.baseURL + "/x", timeouts: Self.guardTimeouts))
            #expect(response.head.status == 200)
            #expect(response.head.header("X-Final") == "yes")
            server.openGate("body")
            var body: [UInt8] = []
            for try await chunk in response.body { body += chunk }
            #expect(String(decoding: body, as: UTF8.self) == "body")
        }
    }

    @Test func chunksArriveIncrementally() async throws {
        try await Self.withServer { server, client in
            server.enqueue(.sse(["data: one\n\n", "data: two\n\n"]).gating(chunk: 1, on: "second"))
            let response = try await client.execute(HTTPRequest(url: server.baseURL + "/v1/chat/completions", timeouts: Self.guardTimeouts))
            var iterator = response.body.makeAsyncIterator()
            // The second chunk cannot have been sent yet: its gate is closed.
            let first = try await iterator.next()
            #expect(first.map { String(decoding: $0, as: UTF8.self) } == "data: one\n\n")
            server.openGate("second")
            var rest: [UInt8] = []
            while let chunk = try await iterator.next() { rest += chunk }
            #expect(String(decoding: rest, as: UTF8.self) == "data: two\n\n")
        }
    }

    @Test func errorStatusesAreResponsesWithReadableBodies() async throws {
        try await Self.withServer { server, client in
            server.enqueue(.rateLimited(retryAfterMs: 20, retryAfter: "1"))
            let (head, body) = try await client.collect(HTTPRequest(url: server.baseURL + "/v1/chat/completions", timeouts: Self.guardTimeouts))
            #expect(head.status == 429)
            #expect(head.header("retry-after-ms") == "20")
            #expect(head.header("retry-after") == "1")
            #expect(String(decoding: body, as: UTF8.self).contains("\"code\":\"rate_limit_exceeded\""))
        }
    }

    @Test func connectionRefusedIsConnectFailed() async throws {
        let server = try await FakeLLMServer.start()
        let url = server.baseURL + "/x"
        await server.shutdown()
        let client = CurlHTTPClient(proxy: .none)
        defer { Task { await client.shutdown() } }
        await #expect {
            _ = try await client.execute(HTTPRequest(url: url, timeouts: Self.guardTimeouts))
        } throws: { error in
            guard case .connectFailed(let detail) = error as? HTTPClientError else { return false }
            return !detail.isEmpty
        }
    }

    @Test func invalidURLsAreRefusedBeforeSending() async throws {
        let client = CurlHTTPClient(proxy: .none)
        defer { Task { await client.shutdown() } }
        for url in ["ftp://example.com/x", "example.com", "http://exa mple.com/"] {
            await #expect(throws: HTTPClientError.self) { _ = try await client.execute(HTTPRequest(url: url)) }
        }
        await #expect(throws: HTTPClientError.self) {
            _ = try await client.execute(HTTPRequest(url: "http://127.0.0.1:1/", headers: [("X-Bad", "a\r\nInjected: 1")]))
        }
    }

    @Test func idleTimeoutEndsAStalledStream() async throws {
        try await Self.withServer { server, client in
            server.enqueue(.sse(["data: one\n\n"], end: .stallForever))
            let timeouts = HTTPTimeouts(connect: .seconds(120), total: .seconds(120), idle: .seconds(1))
            let started = ContinuousClock.now
            var received: [UInt8] = []
            // On a starved machine the head itself can come later than the idle limit: the same
            // error then comes from `execute` (the limit covers the wait for the head too).
            await #expect(throws: HTTPClientError.timedOut(.idle)) {
                let response = try await client.execute(HTTPRequest(url: server.baseURL + "/x", timeouts: timeouts))
                for try await chunk in response.body { received += chunk }
            }
            let elapsed = ContinuousClock.now - started
            #expect(received.isEmpty || String(decoding: received, as: UTF8.self) == "data: one\n\n")
            #expect(elapsed >= .seconds(1))
            #expect(elapsed < .seconds(60))
            // The connection is closed, not parked for reuse.
            #expect(await server.waitForClientClose(requestIndex: 0))
        }
    }

    @Test func totalTimeoutEndsASlowStream() async throws {
        try await Self.withServer { server, client in
            server.enqueue(.chatStream(Array(repeating: "x", count: 50), delay: .milliseconds(100)))
            let timeouts = HTTPTimeouts(connect: .seconds(30), total: .milliseconds(500), idle: nil)
            await #expect(throws: HTTPClientError.timedOut(.total)) {
                _ = try await client.collect(HTTPRequest(url: server.baseURL + "/x", timeouts: timeouts))
            }
            #expect(await server.waitForClientClose(requestIndex: 0))
        }
    }

    @Test func cancellingTheConsumerClosesTheConnection() async throws {
        try await Self.withServer { server, client in
            server.enqueue(.sse(["data: one\n\n", "data: two\n\n"]).gating(chunk: 1, on: "never"))
            let (firstChunk, firstChunkSeen) = AsyncStream.makeStream(of: Void.self)
            let task = Task {
                let response = try await client.execute(HTTPRequest(url: server.baseURL + "/x", timeouts: Self.guardTimeouts))
                for try await _ in response.body { firstChunkSeen.yield() }
            }
            for await _ in firstChunk { break }
            task.cancel()
            #expect(await server.waitForClientClose(requestIndex: 0))
            // A cancelled consumer's loop either ends (the stream answers nil to a cancelled
            // iterator) or throws `.cancelled`, depending on which side sees the cancel first
            // (CI saw both); never another error.
            if case .failure(let error) = await task.result {
                #expect(error as? HTTPClientError == .cancelled, "\(error)")
            }
        }
    }

    @Test func droppingTheBodyClosesTheConnection() async throws {
        try await Self.withServer { server, client in
            server.enqueue(.sse(["data: one\n\n", "data: two\n\n"]).gating(chunk: 1, on: "never"))
            do {
                let response = try await client.execute(HTTPRequest(url: server.baseURL + "/x", timeouts: Self.guardTimeouts))
                for try await _ in response.body { break }
            }
            #expect(await server.waitForClientClose(requestIndex: 0))
        }
    }

    @Test func sequentialRequestsReuseOneConnection() async throws {
        try await Self.withServer { server, client in
            for _ in 0..<3 {
                let (head, _) = try await client.collect(
                    HTTPRequest(url: server.baseURL + "/v1/chat/completions", body: Array("{\"messages\":[]}".utf8), timeouts: Self.guardTimeouts))
                #expect(head.status == 200)
            }
            #expect(server.connectionCount == 1)
            #expect(server.requests.map(\.connection) == [1, 1, 1])
        }
    }

    @Test func fiftyConcurrentStreamsAllComplete() async throws {
        try await Self.withServer { server, client in
            let body = Array("{\"model\":\"fake-stream-20x5\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}".utf8)
            let url = server.baseURL + "/v1/chat/completions"
            let texts = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        let (head, bytes) = try await client.collect(HTTPRequest(url: url, body: body, timeouts: Self.guardTimeouts))
                        #expect(head.status == 200)
                        return String(decoding: bytes, as: UTF8.self)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(texts.count == 50)
            #expect(texts.allSatisfy { $0.contains("tok20 ") && $0.hasSuffix("data: [DONE]\n\n") })
            #expect(server.requests.count == 50)
        }
    }

    @Test func aSlowConsumerPausesAndResumesWithoutLosingBytes() async throws {
        // 2 MiB through a 32 KiB buffer: the transfer pauses and resumes many times.
        let pattern = (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
        try await Self.withServer(bufferLimit: 32 << 10) { server, client in
            server.enqueue(.chunks([.init(pattern)]).rechunked(every: 8192))
            let response = try await client.execute(HTTPRequest(url: server.baseURL + "/x", timeouts: Self.guardTimeouts))
            var received: [UInt8] = []
            received.reserveCapacity(pattern.count)
            for try await chunk in response.body {
                #expect(chunk.count <= 64 << 10)
                received += chunk
                await Task.yield()
            }
            #expect(received == pattern)
        }
    }

    @Test func httpProxyFromTheEnvironmentGetsTheAbsoluteURI() async throws {
        let server = try await FakeLLMServer.start()
        // The fake server stands in for the proxy: a proxied request carries the absolute URI.
        let client = CurlHTTPClient(proxy: .environment(["http_proxy": server.baseURL]))
        server.enqueue(.json("{}"))
        let (head, _) = try await client.collect(
            HTTPRequest(method: "GET", url: "http://api.example.invalid/v1/models", timeouts: Self.guardTimeouts))
        #expect(head.status == 200)
        #expect(server.requests.first?.uri == "http://api.example.invalid/v1/models")
        #expect(server.requests.first?.header("host") == "api.example.invalid")
        await client.shutdown()
        await server.shutdown()
    }

    @Test func noProxyBypassesTheProxy() async throws {
        try await Self.withServer(proxy: .environment(["ALL_PROXY": "http://127.0.0.1:1", "NO_PROXY": "localhost,127.0.0.1"])) { server, client in
            server.enqueue(.json("{}"))
            let (head, _) = try await client.collect(HTTPRequest(method: "GET", url: server.baseURL + "/direct", timeouts: Self.guardTimeouts))
            #expect(head.status == 200)
            #expect(server.requests.first?.uri == "/direct")
        }
    }

    @Test func proxySettingsFollowCurlsVariables() {
        let all = CurlProxySettings.environment(["ALL_PROXY": "http://all:3128", "no_proxy": "internal"])
        #expect(all == CurlProxySettings(http: "http://all:3128", https: "http://all:3128", noProxy: "internal"))
        let specific = CurlProxySettings.environment([
            "all_proxy": "http://all:1", "https_proxy": "http://s:2", "HTTP_PROXY": "http://h:3", "NO_PROXY": "*",
        ])
        #expect(specific == CurlProxySettings(http: "http://h:3", https: "http://s:2", noProxy: "*"))
        #expect(CurlProxySettings.environment([:]) == .none)
        #expect(CurlProxySettings.environment(["http_proxy": "  "]) == .none)
    }

    @Test func shutdownEndsTransfersInFlight() async throws {
        let server = try await FakeLLMServer.start()
        let client = CurlHTTPClient(proxy: .none)
        server.enqueue(.sse(["data: one\n\n"], end: .stallForever))
        let response = try await client.execute(HTTPRequest(url: server.baseURL + "/x", timeouts: Self.guardTimeouts))
        await client.shutdown()
        await #expect(throws: HTTPClientError.cancelled) {
            for try await _ in response.body {}
        }
        #expect(await server.waitForClientClose(requestIndex: 0))
        await #expect(throws: HTTPClientError.self) {
            _ = try await client.execute(HTTPRequest(url: server.baseURL + "/x", timeouts: Self.guardTimeouts))
        }
        await server.shutdown()
    }
}
