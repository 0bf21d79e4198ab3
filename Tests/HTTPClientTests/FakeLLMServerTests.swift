import CurlHTTP
import FakeLLMServer
import Foundation
import Services
import Testing

/// The fake server's default routes and scenarios, as a client sees them on the wire.
@Suite struct FakeLLMServerTests {
    static let timeouts = HTTPTimeouts(connect: .seconds(120), total: .seconds(120), idle: .seconds(120))

    static func post(_ client: CurlHTTPClient, _ url: String, _ json: String, headers: [(name: String, value: String)] = []) async throws -> (
        Int, String, HTTPResponseHead
    ) {
        let (head, body) = try await client.collect(
            HTTPRequest(url: url, headers: headers + [("Content-Type", "application/json")], body: Array(json.utf8), timeouts: timeouts))
        return (head.status, String(decoding: body, as: UTF8.self), head)
    }

    static func withServer(_ configuration: FakeLLMServer.Configuration = .init(), _ body: (FakeLLMServer, CurlHTTPClient) async throws -> Void)
        async throws
    {
        let server = try await FakeLLMServer.start(configuration: configuration)
        let client = CurlHTTPClient(proxy: .none)
        do { try await body(server, client) } catch {
            await client.shutdown()
            await server.shutdown()
            throw error
        }
        await client.shutdown()
        await server.shutdown()
    }

    @Test func echoStreamsDeltasThenUsageThenDone() async throws {
        try await Self.withServer(.init(apiKey: "test-key-not-secret")) { server, client in
            let (status, body, head) = try await Self.post(
                client, server.baseURL + "/v1/chat/completions",
                "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}]}",
                headers: [("Authorization", "Bearer test-key-not-secret")])
            #expect(status == 200)
            #expect(head.header("content-type")?.hasPrefix("text/event-stream") == true)
            let events = body.components(separatedBy: "\n\n").filter { !$0.isEmpty }
            #expect(events.count == 7)  // role, "Echo: ", "hi ", "there", finish, usage, [DONE]
            #expect(events[1].contains("\"delta\":{\"content\":\"Echo: \"}"))
            #expect(events[3].contains("\"delta\":{\"content\":\"there\"}"))
            #expect(events[4].contains("\"finish_reason\":\"stop\""))
            #expect(events[5].contains("\"choices\":[],\"usage\":{\"prompt_tokens\":"))
            #expect(events[6] == "data: [DONE]")
            #expect(events.dropLast().allSatisfy { $0.hasPrefix("data: {") })
        }
    }

    @Test func nonStreamingAnswerAndWrongKey() async throws {
        try await Self.withServer(.init(apiKey: "test-key-not-secret")) { server, client in
            let (status, body, _) = try await Self.post(
                client, server.baseURL + "/v1/chat/completions", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                headers: [("Authorization", "Bearer test-key-not-secret")])
            #expect(status == 200)
            #expect(body.contains("\"object\":\"chat.completion\"") && body.contains("\"content\":\"Echo: x\""))
            let (denied, error, _) = try await Self.post(
                client, server.baseURL + "/v1/chat/completions", "{\"messages\":[]}", headers: [("Authorization", "Bearer sk-wrong-key-not-secret")])
            #expect(denied == 401)
            #expect(error.contains("\"code\":\"invalid_api_key\""))
        }
    }

    @Test("array content: text and image_url parts are accepted, echoed and recorded; a bad image URL or an image outside a user message is a 400")
    func contentParts() async throws {
        try await Self.withServer { server, client in
            let parts = #"[{"type":"text","text":"what is"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw=="}}]"#
            let (status, body, _) = try await Self.post(
                client, server.baseURL + "/v1/chat/completions", #"{"model":"m","messages":[{"role":"user","content":\#(parts)}]}"#)
            #expect(status == 200 && body.contains("\"content\":\"Echo: what is\""), "\(body)")
            let recorded = try #require(server.requests.last)
            #expect(recorded.chatImageURLs == ["data:image/png;base64,iVBORw=="])
            #expect(recorded.chatParts.first?.role == "user" && recorded.chatParts.first?.text == "what is")

            let badURL = #"[{"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]"#
            let (refused, error, _) = try await Self.post(
                client, server.baseURL + "/v1/chat/completions", #"{"model":"m","messages":[{"role":"user","content":\#(badURL)}]}"#)
            #expect(refused == 400 && error.contains("Invalid image URL"), "\(error)")
            let (system, systemError, _) = try await Self.post(
                client, server.baseURL + "/v1/chat/completions", #"{"model":"m","messages":[{"role":"system","content":\#(parts)}]}"#)
            #expect(system == 400 && systemError.contains("only valid in user messages"), "\(systemError)")
        }
    }

    @Test func azureRoutesCheckApiKeyAndApiVersion() async throws {
        try await Self.withServer(.init(apiKey: "test-key-not-secret")) { server, client in
            let chat = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"
            let deployment = server.baseURL + "/openai/deployments/my-gpt/chat/completions"
            let (ok, body, _) = try await Self.post(
                client, deployment + "?api-version=2024-10-21", chat, headers: [("api-key", "test-key-not-secret")])
            #expect(ok == 200)
            #expect(body.contains("\"model\":\"my-gpt\""))
            #expect(try await Self.post(client, deployment, chat, headers: [("api-key", "test-key-not-secret")]).0 == 404)
            #expect(
                try await Self.post(client, deployment + "?api-version=2024-10-21", chat, headers: [("Authorization", "Bearer test-key-not-secret")])
                    .0 == 401)
            #expect(
                try await Self.post(client, server.baseURL + "/openai/v1/chat/completions", chat, headers: [("api-key", "test-key-not-secret")]).0
                    == 200)
        }
    }

    @Test func tavilySearchAndItsErrors() async throws {
        try await Self.withServer(.init(tavilyKey: "tvly-test-key-not-secret")) { server, client in
            let auth = [(name: "Authorization", value: "Bearer tvly-test-key-not-secret")]
            let (status, body, _) = try await Self.post(
                client, server.baseURL + "/search", "{\"query\":\"swift nio\",\"include_usage\":true}", headers: auth)
            #expect(status == 200)
            #expect(body.contains("\"url\":\"https://example.com/swift-nio/1\"") && body.contains("\"usage\":{\"credits\":1}"))
            #expect(try await Self.post(client, server.baseURL + "/search", "{\"query\":\"fake-432\"}", headers: auth).0 == 432)
            #expect(try await Self.post(client, server.baseURL + "/search", "{\"query\":\"q\"}").0 == 401)
        }
    }

    @Test func byteSplitAndCRLFScenariosCarryTheSameEvents() async throws {
        try await Self.withServer { server, client in
            func run(_ model: String) async throws -> String {
                try await Self.post(
                    client, server.baseURL + "/v1/chat/completions",
                    "{\"model\":\"\(model)\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"a b\"}]}"
                ).1
            }
            let plain = try await run("gpt-4o-mini")
            let split = try await run("fake-byte-split")
            let crlf = try await run("fake-crlf")
            // Only the ids (which carry the request index) and model differ.
            func normalise(_ text: String) -> String {
                text.replacingOccurrences(of: "\r\n", with: "\n").replacing(/chatcmpl-fake-\d+/, with: "ID").replacing(/"model":"[^"]*"/, with: "M")
            }
            #expect(normalise(split) == normalise(plain))
            #expect(crlf.contains("\r\n\r\n") && normalise(crlf) == normalise(plain))
        }
    }

    @Test func flakyModelFailsThenAnswers() async throws {
        try await Self.withServer { server, client in
            let body = "{\"model\":\"fake-flaky-2\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"
            let url = server.baseURL + "/v1/chat/completions"
            let first = try await Self.post(client, url, body)
            #expect(first.0 == 503 && first.2.header("retry-after-ms") == "10")
            #expect(try await Self.post(client, url, body).0 == 503)
            #expect(try await Self.post(client, url, body).0 == 200)
        }
    }

    @Test func serverClosingMidBodyIsATransportErrorNotAClientClose() async throws {
        try await Self.withServer { server, client in
            let response = try await client.execute(
                HTTPRequest(
                    url: server.baseURL + "/v1/chat/completions",
                    body: Array("{\"model\":\"fake-disconnect\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"a b c\"}]}".utf8),
                    timeouts: Self.timeouts))
            await #expect {
                for try await _ in response.body {}
            } throws: { error in
                if case .transport = error as? HTTPClientError { return true }
                return false
            }
            #expect(!server.clientClosedEarly(requestIndex: 0))
        }
    }

    @Test func scriptedResponsesByPathComeFirstInOrder() async throws {
        try await Self.withServer { server, client in
            server.enqueue(.insufficientQuota, path: "/v1/chat/completions")
            server.enqueue(.tavilyPayAsYouGoLimit433, path: "/search")
            server.enqueue(.overloaded503, path: "/v1/chat/completions")
            let search = try await Self.post(client, server.baseURL + "/search", "{\"query\":\"q\"}")
            let quota = try await Self.post(client, server.baseURL + "/v1/chat/completions", "{}")
            let overloaded = try await Self.post(client, server.baseURL + "/v1/chat/completions", "{}")
            let unscripted = try await Self.post(client, server.baseURL + "/search", "{\"query\":\"q\"}")
            #expect(search.0 == 433)
            #expect(quota.0 == 429 && quota.1.contains("insufficient_quota"))
            #expect(overloaded.0 == 503)
            #expect(unscripted.0 == 200)
        }
    }
}
