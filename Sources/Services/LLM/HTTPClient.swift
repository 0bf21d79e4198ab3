/// An HTTP/1.1 or HTTP/2 client, as the providers need it: one request, a response head, then the
/// body as a stream of chunks. The daemon's implementation is libcurl's multi interface
/// (`CurlHTTPClient` in the `HTTPClient` target); services and providers only know this protocol.
public protocol HTTPClient: Sendable {
    /// Sends `request` and returns when the response head has arrived (any status: a 4xx or 5xx is a
    /// response, not an error). The body then arrives through `response.body`.
    ///
    /// Cancelling the task that awaits this call, or the task that iterates the body, aborts the
    /// transfer at once: the connection is closed, so the server sees the client go.
    ///
    /// - Throws: `HTTPClientError` when no response head arrives (connect failure, timeout,
    ///   cancellation, TLS or protocol error).
    func execute(_ request: HTTPRequest) async throws -> HTTPResponse
}

extension HTTPClient {
    /// Sends `request` and collects the whole body, refusing one larger than `maxBodyBytes`.
    public func collect(_ request: HTTPRequest, maxBodyBytes: Int = 16 << 20) async throws -> (head: HTTPResponseHead, body: [UInt8]) {
        let response = try await execute(request)
        var body: [UInt8] = []
        for try await chunk in response.body {
            body += chunk
            if body.count > maxBodyBytes { throw HTTPClientError.bodyTooLarge(limit: maxBodyBytes) }
        }
        return (response.head, body)
    }
}

public struct HTTPRequest: Sendable {
    public var method: String
    /// An absolute `http://` or `https://` URL.
    public var url: String
    /// In order; names are sent as given.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    public var timeouts: HTTPTimeouts

    public init(
        method: String = "POST", url: String, headers: [(name: String, value: String)] = [], body: [UInt8] = [], timeouts: HTTPTimeouts = .init()
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeouts = timeouts
    }
}

public struct HTTPTimeouts: Sendable, Equatable {
    /// Until the connection (and TLS) is up.
    public var connect: Duration
    /// The whole transfer, from sending to the body's last byte; nil for no limit.
    public var total: Duration?
    /// The longest silence between two body chunks (or before the head) once connected; nil for
    /// no limit. What catches a stream that stalls without closing.
    public var idle: Duration?

    public init(connect: Duration = .seconds(10), total: Duration? = .seconds(600), idle: Duration? = .seconds(60)) {
        self.connect = connect
        self.total = total
        self.idle = idle
    }
}

public struct HTTPResponseHead: Sendable {
    public var status: Int
    /// In the order received; names as the server sent them.
    public var headers: [(name: String, value: String)]

    public init(status: Int, headers: [(name: String, value: String)]) {
        self.status = status
        self.headers = headers
    }

    /// The first value of the header `name`, compared without case.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

public struct HTTPResponse: Sendable {
    public var head: HTTPResponseHead
    /// The body's chunks as they arrive. It ends after the last byte, or throws `HTTPClientError`
    /// (`.timedOut(.idle)`, `.transport`, …) when the transfer breaks. Stopping the iteration (or
    /// cancelling its task) aborts the transfer.
    public var body: AsyncThrowingStream<[UInt8], any Error>

    public init(head: HTTPResponseHead, body: AsyncThrowingStream<[UInt8], any Error>) {
        self.head = head
        self.body = body
    }
}

public enum HTTPClientError: Error, Sendable, Equatable {
    public enum Phase: String, Sendable {
        case connect, total, idle
    }

    /// No connection: refused, unreachable, DNS failure, TLS handshake failure. `detail` is the
    /// transport's message (never the request's headers).
    case connectFailed(detail: String)
    case timedOut(Phase)
    case cancelled
    /// The connection broke or the server spoke something that is not HTTP.
    case transport(detail: String)
    case bodyTooLarge(limit: Int)
    case invalidURL(String)
}
