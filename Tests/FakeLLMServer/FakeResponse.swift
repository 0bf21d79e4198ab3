/// One scripted answer of the fake server: interim 1xx heads, a status and headers, then either a
/// whole body or a stream of chunks (each sent and flushed on its own, optionally after a gate or
/// a delay), ending normally, stalling forever, or with the server closing the connection.
public struct FakeResponse: Sendable {
    public struct Chunk: Sendable {
        public var bytes: [UInt8]
        /// Sent only once `FakeLLMServer.openGate(gate)` was called (before or after).
        public var gate: String?
        /// Waited before sending (after the gate).
        public var delay: Duration?

        public init(_ bytes: [UInt8], gate: String? = nil, delay: Duration? = nil) {
            self.bytes = bytes
            self.gate = gate
            self.delay = delay
        }

        public init(_ text: String, gate: String? = nil, delay: Duration? = nil) {
            self.init(Array(text.utf8), gate: gate, delay: delay)
        }
    }

    public enum StreamEnd: Sendable, Equatable {
        /// The last chunk, then the end of the body.
        case finish
        /// No more bytes and no end: the connection stays open until the client goes.
        case stallForever
        /// The server closes the connection (mid-body: the chunked body never terminates).
        case closeConnection
    }

    public enum Body: Sendable {
        /// Sent with `Content-Length`.
        case whole([UInt8])
        /// Sent chunked (`Transfer-Encoding: chunked`), one flush per chunk.
        case stream([Chunk], end: StreamEnd)
    }

    public var status: Int
    public var headers: [(name: String, value: String)]
    /// 1xx heads sent first (e.g. `[103]`): a client must skip them and keep the last head.
    public var interimStatuses: [Int]
    public var body: Body

    public init(status: Int = 200, headers: [(name: String, value: String)] = [], interimStatuses: [Int] = [], body: Body) {
        self.status = status
        self.headers = headers
        self.interimStatuses = interimStatuses
        self.body = body
    }

    // MARK: Generic builders

    /// A whole JSON (or any) body with `Content-Type: application/json` unless `headers` name one.
    public static func json(status: Int = 200, headers: [(name: String, value: String)] = [], _ body: String) -> FakeResponse {
        var all = headers
        if !all.contains(where: { $0.name.lowercased() == "content-type" }) { all.append(("Content-Type", "application/json")) }
        return FakeResponse(status: status, headers: all, body: .whole(Array(body.utf8)))
    }

    /// Raw body chunks (any bytes), `text/event-stream` unless `headers` name a content type.
    public static func chunks(status: Int = 200, headers: [(name: String, value: String)] = [], _ chunks: [Chunk], end: StreamEnd = .finish)
        -> FakeResponse
    {
        var all = headers
        if !all.contains(where: { $0.name.lowercased() == "content-type" }) { all.append(("Content-Type", "text/event-stream")) }
        return FakeResponse(status: status, headers: all, body: .stream(chunks, end: end))
    }

    /// Server-sent events, one chunk per string as given (add the `\n\n` yourself, or use `SSE`).
    public static func sse(_ events: [String], end: StreamEnd = .finish) -> FakeResponse {
        chunks(events.map { Chunk($0) }, end: end)
    }

    /// Headers, then nothing at all, ever.
    public static func stall(status: Int = 200) -> FakeResponse {
        chunks(status: status, [], end: .stallForever)
    }

    // MARK: Transformations

    private func mapChunks(_ transform: ([Chunk]) -> [Chunk]) -> FakeResponse {
        var copy = self
        switch body {
        case .whole(let bytes): copy.body = .stream(transform([Chunk(bytes)]), end: .finish)
        case .stream(let chunks, let end): copy.body = .stream(transform(chunks), end: end)
        }
        return copy
    }

    /// Every byte in a chunk of its own (events split at every possible boundary).
    public func splitAtEveryByte() -> FakeResponse {
        mapChunks { chunks in
            chunks.flatMap { chunk in
                chunk.bytes.enumerated().map { Chunk([$1], gate: $0 == 0 ? chunk.gate : nil, delay: $0 == 0 ? chunk.delay : nil) }
            }
        }
    }

    /// All chunks joined, then cut every `size` bytes (boundaries that fall inside events and lines).
    public func rechunked(every size: Int) -> FakeResponse {
        mapChunks { chunks in
            let all = chunks.flatMap(\.bytes)
            return stride(from: 0, to: all.count, by: max(1, size)).map { Chunk(Array(all[$0..<min($0 + size, all.count)])) }
        }
    }

    /// Every `\n` written as `\r\n` (JSON payloads carry no raw newlines, so only line ends change).
    public func withCRLF() -> FakeResponse {
        mapChunks { chunks in
            chunks.map { chunk in
                var copy = chunk
                copy.bytes = chunk.bytes.flatMap { $0 == 10 ? [13, 10] : [$0] }
                return copy
            }
        }
    }

    /// The first `count` chunks, then the server closes the connection.
    public func closingConnection(afterChunks count: Int) -> FakeResponse {
        var copy = mapChunks { Array($0.prefix(count)) }
        if case .stream(let chunks, _) = copy.body { copy.body = .stream(chunks, end: .closeConnection) }
        return copy
    }

    /// The first `count` chunks, then silence with the connection open.
    public func stalling(afterChunks count: Int) -> FakeResponse {
        var copy = mapChunks { Array($0.prefix(count)) }
        if case .stream(let chunks, _) = copy.body { copy.body = .stream(chunks, end: .stallForever) }
        return copy
    }

    /// Chunk `index` (0-based) waits for `gate`.
    public func gating(chunk index: Int, on gate: String) -> FakeResponse {
        mapChunks { chunks in
            var chunks = chunks
            if chunks.indices.contains(index) { chunks[index].gate = gate }
            return chunks
        }
    }

    /// Every chunk after the first waits `delay`.
    public func spaced(by delay: Duration) -> FakeResponse {
        mapChunks { chunks in
            chunks.enumerated().map {
                var c = $1
                if $0 > 0 { c.delay = delay }
                return c
            }
        }
    }

    public func adding(header name: String, _ value: String) -> FakeResponse {
        var copy = self
        copy.headers.append((name, value))
        return copy
    }
}
