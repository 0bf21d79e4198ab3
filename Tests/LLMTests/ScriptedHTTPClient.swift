import Foundation
import Services
import Synchronization

/// An in-memory `HTTPClient`: answers each request with the next scripted reply and records what
/// was sent.
final class ScriptedHTTPClient: HTTPClient {
    enum Reply: Sendable {
        /// A head, then the body as these chunks, then `ending` (nil: the body ends cleanly).
        case response(status: Int, headers: [(name: String, value: String)], chunks: [[UInt8]], ending: HTTPClientError?)
        /// No head at all.
        case failure(HTTPClientError)
    }

    // Only touched under the mutex.
    private let state = Mutex<(replies: [Reply], requests: [HTTPRequest])>(([], []))

    init(_ replies: [Reply] = []) {
        state.withLock { $0.replies = replies }
    }

    var requests: [HTTPRequest] { state.withLock { $0.requests } }

    func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        let reply: Reply? = state.withLock {
            $0.requests.append(request)
            return $0.replies.isEmpty ? nil : $0.replies.removeFirst()
        }
        switch reply {
        case nil:
            throw HTTPClientError.connectFailed(detail: "no scripted reply left")
        case .failure(let error):
            throw error
        case .response(let status, let headers, let chunks, let ending):
            let body = AsyncThrowingStream<[UInt8], any Error> { continuation in
                for chunk in chunks { continuation.yield(chunk) }
                continuation.finish(throwing: ending)
            }
            return HTTPResponse(head: HTTPResponseHead(status: status, headers: headers), body: body)
        }
    }
}

extension ScriptedHTTPClient.Reply {
    /// A 200 SSE stream of `text`, cut into chunks of `chunkSize` bytes.
    static func sse(_ text: String, chunkSize: Int = 7, headers: [(name: String, value: String)] = [], ending: HTTPClientError? = nil) -> Self {
        let bytes = Array(text.utf8)
        let chunks = stride(from: 0, to: bytes.count, by: chunkSize).map { Array(bytes[$0..<min($0 + chunkSize, bytes.count)]) }
        return .response(status: 200, headers: [("Content-Type", "text/event-stream")] + headers, chunks: chunks, ending: ending)
    }

    static func json(_ status: Int, _ body: String, headers: [(name: String, value: String)] = []) -> Self {
        .response(status: status, headers: [("Content-Type", "application/json")] + headers, chunks: [Array(body.utf8)], ending: nil)
    }
}

/// A sleeper that records the delays asked for and returns at once.
final class RecordingSleeper: Sendable {
    private let recorded = Mutex<[Duration]>([])
    var delays: [Duration] { recorded.withLock { $0 } }

    var sleep: RetryingLLMProvider.Sleeper {
        { duration in self.recorded.withLock { $0.append(duration) } }
    }
}

struct FixedClock: WallClock {
    var date: Date
    func now() -> Date { date }
}

/// Collects a stream's events, and its error if it threw.
func collect(_ stream: AsyncThrowingStream<LLMStreamEvent, any Error>) async -> (events: [LLMStreamEvent], error: (any Error)?) {
    var events: [LLMStreamEvent] = []
    do {
        for try await event in stream { events.append(event) }
        return (events, nil)
    } catch {
        return (events, error)
    }
}

func text(of events: [LLMStreamEvent]) -> String {
    events.compactMap { if case .text(let piece) = $0 { piece } else { nil } }.joined()
}

/// The JSON object of a request body.
func bodyObject(_ request: HTTPRequest) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(request.body))) as? [String: Any] ?? [:]
}

func header(_ request: HTTPRequest, _ name: String) -> String? {
    request.headers.first { $0.name.lowercased() == name.lowercased() }?.value
}

let testKey = "sk-test-key-not-secret-0123456789"
