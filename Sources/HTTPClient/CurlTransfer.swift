import CCurl
import Services
import Synchronization

/// One request on the multi handle: its easy handle, the head and body state the caller awaits,
/// and the driver thread's bookkeeping (timers, pause).
///
/// `@unchecked Sendable`: the `driver…` properties and the easy handle are touched only on the
/// driver thread (setup happens before the transfer is handed over, teardown on the driver);
/// everything a caller's task touches lives in `shared`, behind its mutex.
final class CurlTransfer: @unchecked Sendable {
    struct Shared {
        var headWaiter: CheckedContinuation<HTTPResponseHead, any Error>?
        var headDone = false
        var chunks: [[UInt8]] = []
        var chunksStart = 0
        var buffered = 0
        var bodyWaiter: CheckedContinuation<[UInt8]?, any Error>?
        /// Set when the transfer ended: nil error for a complete body.
        var ended: HTTPClientError??
        /// The write callback refused data because `buffered` was over the limit.
        var pausedForBackpressure = false
        /// Somebody asked to abort (cancellation, body dropped, idle timeout); the first reason wins.
        var abortRequested: HTTPClientError?
    }

    let easy: UnsafeMutableRawPointer
    let timeouts: HTTPTimeouts
    let bufferLimit: Int
    let summary: String
    let shared = Mutex(Shared())

    // Driver thread only.
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private var parser = ResponseHeadParser()
    private var candidateHead: HTTPResponseHead?
    /// Last time bytes arrived (or the connection came up, or the transfer was unpaused); nil until
    /// connected: the idle timer only runs once connected.
    var driverLastActivity: ContinuousClock.Instant?
    var driverPaused = false
    var driverAbortReason: HTTPClientError?

    /// Sets up the easy handle for `request`. Nothing is sent until the driver adds it.
    /// - Throws: `HTTPClientError.invalidURL` for a URL that is not `http(s)://`, `.transport` for a
    ///   header that would smuggle a line break.
    init(request: HTTPRequest, proxy: CurlProxySettings, userAgent: String?, bufferLimit: Int) throws(HTTPClientError) {
        let scheme = request.url.prefix(8).lowercased()
        guard scheme.hasPrefix("http://") || scheme.hasPrefix("https://"), request.url.utf8.count > 8 || scheme.hasPrefix("http://") else {
            throw .invalidURL(Self.redacted(request.url))
        }
        guard !request.url.contains(where: { $0 == "\r" || $0 == "\n" || $0 == " " }) else {
            throw .invalidURL(Self.redacted(request.url))
        }
        for header in request.headers {
            let bad = { (s: String) in s.contains { $0 == "\r" || $0 == "\n" || $0 == "\0" } }
            if bad(header.name) || bad(header.value) || header.name.isEmpty || header.name.contains(":") {
                throw .transport(detail: "invalid request header name or value for \(header.name.filter { $0.isLetter || $0 == "-" })")
            }
        }
        guard let easy = curl_easy_init() else { throw .transport(detail: "curl_easy_init failed") }
        self.easy = easy
        self.timeouts = request.timeouts
        self.bufferLimit = bufferLimit
        self.summary = "\(request.method) \(Self.redacted(request.url))"
        self.errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        _ = ccurl_setopt_str(easy, CURLOPT_URL, request.url)
        _ = ccurl_setopt_str(easy, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = ccurl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = ccurl_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1)
        _ = ccurl_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0)
        _ = ccurl_setopt_ptr(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        _ = ccurl_setopt_str(easy, CURLOPT_PROXY, proxy.proxy(for: request.url))
        if let noProxy = proxy.noProxy { _ = ccurl_setopt_str(easy, CURLOPT_NOPROXY, noProxy) }
        _ = ccurl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(request.timeouts.connect))
        _ = ccurl_setopt_long(easy, CURLOPT_TIMEOUT_MS, request.timeouts.total.map(Self.milliseconds) ?? 0)

        switch request.method.uppercased() {
        case "GET" where request.body.isEmpty:
            _ = ccurl_setopt_long(easy, CURLOPT_HTTPGET, 1)
        case "HEAD":
            _ = ccurl_setopt_long(easy, CURLOPT_NOBODY, 1)
        default:
            _ = request.body.withUnsafeBytes { ccurl_setopt_body_copy(easy, $0.baseAddress, curl_off_t($0.count)) }
            if request.method.uppercased() != "POST" { _ = ccurl_setopt_str(easy, CURLOPT_CUSTOMREQUEST, request.method) }
        }

        var list: UnsafeMutablePointer<curl_slist>?
        func append(_ line: String) { list = curl_slist_append(list, line) }
        let names = Set(request.headers.map { $0.name.lowercased() })
        for header in request.headers {
            // "Name;" is curl's way to send a header with an empty value ("Name:" would remove it).
            append(header.value.isEmpty ? "\(header.name);" : "\(header.name): \(header.value)")
        }
        // No 100-continue round trip for large bodies, and no form content type nobody asked for.
        if !names.contains("expect") { append("Expect:") }
        if !names.contains("content-type") { append("Content-Type:") }
        if let userAgent, !names.contains("user-agent") { append("User-Agent: \(userAgent)") }
        headerList = list
        _ = ccurl_setopt_slist(easy, CURLOPT_HTTPHEADER, list)

        let me = Unmanaged.passUnretained(self).toOpaque()
        _ = ccurl_setopt_ptr(easy, CURLOPT_PRIVATE, me)
        _ = ccurl_setopt_ptr(easy, CURLOPT_HEADERDATA, me)
        _ = ccurl_setopt_ptr(easy, CURLOPT_WRITEDATA, me)
        _ = ccurl_setopt_header(easy) { pointer, size, count, user in
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(user!).takeUnretainedValue()
            transfer.driverHeaderLine(UnsafeRawBufferPointer(start: pointer, count: size * count))
            return size * count
        }
        _ = ccurl_setopt_write(easy) { pointer, size, count, user in
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(user!).takeUnretainedValue()
            return transfer.driverBody(UnsafeRawBufferPointer(start: pointer, count: size * count))
        }
    }

    deinit {
        curl_easy_cleanup(easy)
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    // MARK: Caller side

    /// Suspends until the head arrives or the transfer fails; `submit` hands the transfer over.
    func awaitHead(submit: () -> Void) async throws -> HTTPResponseHead {
        try await withCheckedThrowingContinuation { continuation in
            shared.withLock { $0.headWaiter = continuation }
            submit()
        }
    }

    /// Records the reason; returns true when this is the first request to abort a live transfer.
    func requestAbort(_ reason: HTTPClientError) -> Bool {
        shared.withLock { state in
            guard state.abortRequested == nil, state.ended == nil else { return false }
            state.abortRequested = reason
            return true
        }
    }

    enum Next {
        case chunk([UInt8], resume: Bool)
        case end(HTTPClientError?)
        case wait
    }

    /// The next body chunk (up to 64 KiB of what is buffered), nil at the end. `resume` is called
    /// when draining brought the buffer back under half the limit after a pause.
    func nextChunk(resume: @Sendable () -> Void) async throws -> [UInt8]? {
        let immediate = shared.withLock { Self.take(&$0, limit: bufferLimit) }
        switch immediate {
        case .chunk(let bytes, let needsResume):
            if needsResume { resume() }
            return bytes
        case .end(let error):
            if let error { throw error }
            return nil
        case .wait:
            break
        }
        return try await withCheckedThrowingContinuation { continuation in
            let next = shared.withLock { state -> Next in
                let next = Self.take(&state, limit: bufferLimit)
                if case .wait = next { state.bodyWaiter = continuation }
                return next
            }
            switch next {
            case .chunk(let bytes, let needsResume):
                if needsResume { resume() }
                continuation.resume(returning: bytes)
            case .end(let error):
                if let error { continuation.resume(throwing: error) } else { continuation.resume(returning: nil) }
            case .wait:
                break
            }
        }
    }

    private static func take(_ state: inout Shared, limit: Int) -> Next {
        if state.chunksStart < state.chunks.count {
            var bytes = state.chunks[state.chunksStart]
            state.chunksStart += 1
            while state.chunksStart < state.chunks.count, bytes.count + state.chunks[state.chunksStart].count <= 64 << 10 {
                bytes += state.chunks[state.chunksStart]
                state.chunksStart += 1
            }
            if state.chunksStart == state.chunks.count {
                state.chunks.removeAll(keepingCapacity: true)
                state.chunksStart = 0
            }
            state.buffered -= bytes.count
            var resume = false
            if state.pausedForBackpressure, state.buffered <= limit / 2 {
                state.pausedForBackpressure = false
                resume = true
            }
            return .chunk(bytes, resume: resume)
        }
        if let ended = state.ended { return .end(ended) }
        return .wait
    }

    // MARK: Driver thread

    var abortRequested: HTTPClientError? { shared.withLock { $0.abortRequested } }

    var connected: Bool {
        var micros: curl_off_t = 0
        _ = ccurl_getinfo_off(easy, CURLINFO_PRETRANSFER_TIME_T, &micros)
        return micros > 0
    }

    private func driverHeaderLine(_ line: UnsafeRawBufferPointer) {
        driverLastActivity = .now
        guard case .blockEnded(let head) = parser.feed(line) else { return }
        candidateHead = head
        // A proxy's CONNECT answer is a block too; libcurl keeps its status apart
        // (CURLINFO_HTTP_CONNECTCODE), so the response code matches only the real response's block.
        var code = 0
        _ = ccurl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &code)
        if code == head.status { publishHead() }
    }

    private func driverBody(_ bytes: UnsafeRawBufferPointer) -> Int {
        driverLastActivity = .now
        publishHead()
        let (waiter, accepted) = shared.withLock { state -> (CheckedContinuation<[UInt8]?, any Error>?, Bool) in
            if state.buffered >= bufferLimit {
                state.pausedForBackpressure = true
                return (nil, false)
            }
            if let waiter = state.bodyWaiter {
                state.bodyWaiter = nil
                return (waiter, true)
            }
            state.chunks.append(Array(bytes))
            state.buffered += bytes.count
            return (nil, true)
        }
        guard accepted else {
            driverPaused = true
            return ccurl_writefunc_pause
        }
        waiter?.resume(returning: Array(bytes))
        return bytes.count
    }

    /// Hands the last complete head to the caller once (later blocks, e.g. trailers, are ignored).
    private func publishHead() {
        guard let head = candidateHead else { return }
        let waiter = shared.withLock { state -> CheckedContinuation<HTTPResponseHead, any Error>? in
            guard !state.headDone else { return nil }
            state.headDone = true
            defer { state.headWaiter = nil }
            return state.headWaiter
        }
        waiter?.resume(returning: head)
    }

    /// Ends the transfer for its callers (the driver has removed the easy handle).
    func driverFinish(_ error: HTTPClientError?) {
        if error == nil { publishHead() }
        let headError = error ?? .transport(detail: "the server sent no response head")
        let (headWaiter, bodyWaiter) = shared.withLock { state in
            state.ended = .some(error)
            let head = state.headDone ? nil : state.headWaiter
            state.headDone = true
            state.headWaiter = nil
            let body = state.bodyWaiter
            state.bodyWaiter = nil
            return (head, body)
        }
        headWaiter?.resume(throwing: headError)
        if let bodyWaiter {
            if let error { bodyWaiter.resume(throwing: error) } else { bodyWaiter.resume(returning: nil) }
        }
    }

    /// What libcurl said went wrong, mapped to the client's errors.
    func driverError(for code: CURLcode) -> HTTPClientError? {
        if code == CURLE_OK { return nil }
        let message = errorBuffer[0] != 0 ? String(cString: errorBuffer) : String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            // libcurl says "timed out" for both limits: not connected yet means the connect limit,
            // unless the total one is the shorter.
            if !connected {
                if let total = timeouts.total, total <= timeouts.connect { return .timedOut(.total) }
                return .timedOut(.connect)
            }
            return .timedOut(.total)
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_SSL_CONNECT_ERROR,
            CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
            CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CRL_BADFILE,
            CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED, CURLE_USE_SSL_FAILED:
            return .connectFailed(detail: message)
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            return .invalidURL(summary)
        default:
            return .transport(detail: message)
        }
    }

    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }

    /// The URL without its query and user info (a query can hold a key), for errors and logs.
    static func redacted(_ url: String) -> String {
        var text = Substring(url)
        if let query = text.firstIndex(where: { $0 == "?" || $0 == "#" }) { text = text[..<query] }
        if let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].firstIndex(of: "@"),
            !text[scheme.upperBound..<at].contains("/")
        {
            text = text[..<scheme.upperBound] + text[text.index(after: at)...]
        }
        return String(text.prefix(200))
    }
}
