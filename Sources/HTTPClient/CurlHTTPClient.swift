import Foundation
import Logging
import Services

/// `HTTPClient` on libcurl's multi interface: one multi handle (one connection cache, one DNS
/// cache) driven by one dedicated thread, whatever the number of requests in flight. Nothing
/// blocks Swift's cooperative pool: callers suspend on continuations the driver thread resumes.
///
/// ```swift
/// let http = CurlHTTPClient(logger: logger)
/// let response = try await http.execute(HTTPRequest(url: "https://api.example.com/v1/x", body: body))
/// for try await chunk in response.body { … }
/// await http.shutdown()
/// ```
///
/// - Timeouts: `connect` and `total` are libcurl's own; `idle` (no byte for that long once
///   connected, not counting time paused because the consumer is slow) is timed by the driver
///   thread and ends the transfer with `.timedOut(.idle)`.
/// - Backpressure: when more than `bufferLimit` bytes wait for the consumer, the transfer is
///   paused; it resumes once the consumer has drained half of them.
/// - Cancellation: cancelling `execute`, cancelling the task iterating the body, or dropping the
///   body unfinished removes the transfer at once and closes its connection (never reused).
/// - Proxies: from `proxy` (by default the usual environment variables, read at init; see
///   `CurlProxySettings`). TLS uses the system CA store. Request headers are never logged.
public final class CurlHTTPClient: HTTPClient {
    private let driver: CurlMultiDriver
    private let proxy: CurlProxySettings
    private let userAgent: String?
    private let bufferLimit: Int

    /// - Parameters:
    ///   - proxy: which proxies to use; `.environment(ProcessInfo.processInfo.environment)` by default.
    ///   - maxConnectionsPerHost: the most connections open to one host at a time (transfers beyond
    ///     it wait for a free one; HTTP/2 multiplexes on one connection).
    ///   - bufferLimit: bytes buffered for a slow consumer before the transfer is paused.
    ///   - userAgent: sent unless the request names its own; nil sends none.
    ///   - logger: transfers at `trace`, failures at `debug`: method and URL without its query only.
    public init(
        proxy: CurlProxySettings = .environment(ProcessInfo.processInfo.environment),
        maxConnectionsPerHost: Int = 128,
        bufferLimit: Int = 1 << 20,
        userAgent: String? = "agentd",
        logger: Logger = Logger(label: "agentd.http")
    ) {
        self.proxy = proxy
        self.userAgent = userAgent
        self.bufferLimit = max(1, bufferLimit)
        driver = CurlMultiDriver(maxConnectionsPerHost: maxConnectionsPerHost, logger: logger)
        driver.start()
        var metadata: Logger.Metadata = [:]
        if proxy.http != nil { metadata["http_proxy"] = "\(CurlTransfer.redacted(proxy.http!))" }
        if proxy.https != nil { metadata["https_proxy"] = "\(CurlTransfer.redacted(proxy.https!))" }
        if let noProxy = proxy.noProxy { metadata["no_proxy"] = "\(noProxy)" }
        if !metadata.isEmpty { logger.info("http client uses proxies", metadata: metadata) }
    }

    deinit {
        driver.requestStop()
    }

    /// Stops the driver thread; transfers still running end with `.cancelled`, later calls to
    /// `execute` throw `.transport`. Idempotent.
    public func shutdown() async {
        await driver.stop()
    }

    public func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        if Task.isCancelled { throw HTTPClientError.cancelled }
        let transfer = try CurlTransfer(request: request, proxy: proxy, userAgent: userAgent, bufferLimit: bufferLimit)
        let driver = self.driver
        let head = try await withTaskCancellationHandler {
            try await transfer.awaitHead {
                if !driver.post(.add(transfer)) { transfer.driverFinish(.transport(detail: "the HTTP client is shut down")) }
            }
        } onCancel: {
            if transfer.requestAbort(.cancelled) { driver.post(.abort(transfer)) }
        }
        let body = ResponseBody(transfer: transfer, driver: driver)
        if Task.isCancelled {
            body.abort()
            throw HTTPClientError.cancelled
        }
        return HTTPResponse(head: head, body: AsyncThrowingStream(unfolding: { try await body.next() }))
    }
}

/// The body's consumer side. Owned by the body stream: when the stream goes away unfinished
/// (the consumer stopped iterating), `deinit` aborts the transfer.
private final class ResponseBody: Sendable {
    let transfer: CurlTransfer
    let driver: CurlMultiDriver

    init(transfer: CurlTransfer, driver: CurlMultiDriver) {
        self.transfer = transfer
        self.driver = driver
    }

    deinit { abort() }

    func abort() {
        if transfer.requestAbort(.cancelled) { driver.post(.abort(transfer)) }
    }

    func next() async throws -> [UInt8]? {
        if Task.isCancelled {
            abort()
            throw HTTPClientError.cancelled
        }
        return try await withTaskCancellationHandler {
            try await transfer.nextChunk { [driver, transfer] in driver.post(.resume(transfer)) }
        } onCancel: {
            abort()
        }
    }
}
