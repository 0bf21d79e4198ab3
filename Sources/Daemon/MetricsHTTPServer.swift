import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Services

/// `--metrics-listen HOST:PORT`: the smallest HTTP/1.1 server a Prometheus scraper needs.
/// `GET /metrics` (or `HEAD`) answers the exposition with `Content-Type: text/plain;
/// version=0.0.4; charset=utf-8`; any other path is 404, any other method on `/metrics` 405.
/// Keep-alive is honoured. At most `Limits.maxConnections` scrapers at once (the next one gets 503
/// and is closed) and a connection that neither sends nor receives for `Limits.idleTimeout` is
/// closed: the listener is unauthenticated, so nobody may pin descriptors with idle connections.
/// `bind` listens at once, before the Unix socket does (a bad address stops
/// startup before any client is served) and logs `metrics listening` with the address it got (the
/// real port when given port 0); `run` serves until graceful shutdown, then stops listening and
/// closes the scrapers' connections.
final class MetricsHTTPServer: Service, Sendable {
    private let channel: any Channel
    private let logger: Logger
    /// Scrapers' open connections, closed on shutdown.
    private let connections: NIOLockedValueBox<[ObjectIdentifier: any Channel]>

    private init(channel: any Channel, connections: NIOLockedValueBox<[ObjectIdentifier: any Channel]>, logger: Logger) {
        self.channel = channel
        self.connections = connections
        self.logger = logger
    }

    /// - Throws: a `DaemonError` naming the address when it cannot be bound (in use, not local,
    ///   unknown host).
    struct Limits: Sendable {
        /// `server.metrics_max_connections`: a Prometheus server or two, with room.
        var maxConnections = 16
        /// `server.metrics_idle_timeout_ms`: well above a scrape interval's silence is not needed,
        /// scrapers reconnect; 30 s matches the socket's frame timeout.
        var idleTimeout: Duration = .seconds(30)
    }

    static let refusal: String = {
        let body = "too many connections to /metrics\n"
        return
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
            + body
    }()

    static func bind(
        address: ListenAddress, limits: Limits = Limits(), exposition: any MetricsExposition, group: any EventLoopGroup, logger: Logger
    ) async throws(DaemonError) -> MetricsHTTPServer {
        let connections = NIOLockedValueBox([ObjectIdentifier: any Channel]())
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    let id = ObjectIdentifier(channel)
                    let admitted = connections.withLockedValue { open in
                        guard open.count < limits.maxConnections else { return false }
                        open[id] = channel
                        return true
                    }
                    guard admitted else {
                        logger.debug("metrics connection refused: too many", metadata: ["limit": "\(limits.maxConnections)"])
                        let reply = channel.allocator.buffer(string: Self.refusal)
                        channel.writeAndFlush(reply).whenComplete { _ in channel.close(promise: nil) }
                        return channel.eventLoop.makeSucceededVoidFuture()
                    }
                    channel.closeFuture.whenComplete { _ in _ = connections.withLockedValue { $0.removeValue(forKey: id) } }
                    return channel.eventLoop.makeCompletedFuture {
                        let idle = TimeAmount.nanoseconds(
                            Int64(limits.idleTimeout.components.seconds) * 1_000_000_000 + limits.idleTimeout.components.attoseconds / 1_000_000_000)
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: idle))
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(exposition: exposition))
                    }
                }
                .bind(host: address.host, port: address.port)
                .get()
        } catch {
            throw DaemonError("cannot listen for metrics on \(address): \(error)")
        }
        let bound = ListenAddress(host: address.host, port: channel.localAddress?.port ?? address.port)
        logger.info("metrics listening", metadata: ["address": "\(bound)"])
        return MetricsHTTPServer(channel: channel, connections: connections, logger: logger)
    }

    func run() async throws {
        try? await gracefulShutdown()
        try? await channel.close()
        for connection in connections.withLockedValue({ Array($0.values) }) { connection.close(promise: nil) }
        logger.info("metrics listener stopped")
    }
}

/// One scraper connection: answers each request once its end has arrived (a body is ignored).
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let contentType = System.MetricsText.prometheusContentType + "; charset=utf-8"

    private let exposition: any MetricsExposition
    private var request: HTTPRequestHead?

    init(exposition: any MetricsExposition) {
        self.exposition = exposition
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)  // nothing sent or received for the idle timeout
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): request = head
        case .body: break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? head.uri
        var headers = HTTPHeaders()
        let status: HTTPResponseStatus
        let body: String
        if path != "/metrics" {
            (status, body) = (.notFound, "not found: the metrics are at /metrics\n")
        } else if head.method != .GET && head.method != .HEAD {
            (status, body) = (.methodNotAllowed, "method not allowed: use GET\n")
            headers.add(name: "Allow", value: "GET, HEAD")
        } else {
            (status, body) = (.ok, exposition.render())
        }
        headers.add(name: "Content-Type", value: status == .ok ? Self.contentType : "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }

        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

/// `HOST:PORT` (`[IPv6]:PORT` for an IPv6 address): where a TCP listener binds.
struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    var host: String
    var port: Int

    /// Accepts `127.0.0.1:9464`, `localhost:9464`, `[::1]:9464`; port 0 lets the system choose.
    init?(parsing text: String) {
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
            guard host.contains(":"), host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return nil }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
            guard host.allSatisfy({ ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "." || $0 == "-" }) else { return nil }
        }
        guard !host.isEmpty, !port.isEmpty, port.count <= 5, port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber),
            let number = Int(port), (0...65535).contains(number)
        else { return nil }
        self.init(host: String(host), port: number)
    }

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
