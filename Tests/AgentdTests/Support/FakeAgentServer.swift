import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A stand-in for agentd that speaks only what `agentctl chat` needs, following the agent's
/// documented contract (API version 2): `session.hello`; `agent.act {chatId?, moduleId?, message,
/// model?, webSearch?}` streaming `agent.delta {runId, chatId, seq, text}` then answering
/// `{runId, chatId, message: {id, content}, usage}`; `agent.cancel {runId}`; `$/cancelRequest`.
///
/// A message "slow" streams one delta and then waits for a cancel (answered -32800); any other
/// message streams "Hel", "lo" and completes. Every request it received is kept, in order.
///
/// For `agentctl files upload`'s recovery paths, one upload as FilesMethods.swift declares it:
/// `files.import` refused -32020 (as for another uid), `files.upload.begin` answers `upl_fake` with
/// chunkSize 8, chunks are appended only at the upload's offset (else -32070 {expected, actual}),
/// `files.upload.status`, `files.upload.commit` (the test compares the bytes and the SHA-256 begin
/// announced). With `rateLimitOffset` the chunk at that offset is refused once with -32017; with
/// `dropAfterChunk` = n, the connection is closed after the n-th chunk is
/// stored and before it is answered (once): the client must reconnect and ask where it stands.
final class FakeAgentServer: @unchecked Sendable {
    let path: String
    private let listener: Int32
    // Guarded by `lock`: written by the serving thread, read by the test.
    private let lock = NSLock()
    private var _received: [JSON] = []
    private var _uploaded: [UInt8] = []
    private var announcedSHA256: String?
    private var announcedSize = 0
    private var chunksStored = 0
    private var _dropAfterChunk: Int?
    private var _rateLimitOffset: Int?

    var received: [JSON] { lock.withLock { _received } }
    /// The bytes the upload received so far.
    var uploaded: [UInt8] { lock.withLock { _uploaded } }
    var dropAfterChunk: Int? {
        get { lock.withLock { _dropAfterChunk } }
        set { lock.withLock { _dropAfterChunk = newValue } }
    }
    /// The chunk at this offset is refused once with -32017 (retryAfterMs 20).
    var rateLimitOffset: Int? {
        get { lock.withLock { _rateLimitOffset } }
        set { lock.withLock { _rateLimitOffset = newValue } }
    }

    init(path: String) throws {
        self.path = path
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(listener, 4) == 0 else { throw HarnessError("fake server cannot listen on \(path)") }
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    deinit {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func serve() {
        while true {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            Thread { [self] in connection(fd) }.start()
        }
    }

    private func connection(_ fd: Int32) {
        defer { close(fd) }
        var buffer: [UInt8] = []
        var pendingSlow: (id: JSON, runID: String)?
        var runs = 0
        func send(_ text: String) {
            let bytes = Array((text + "\n").utf8)
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        func idText(_ id: JSON) -> String { id.description }
        while true {
            guard let newline = buffer.firstIndex(of: 0x0A) else {
                var chunk = [UInt8](repeating: 0, count: 4096)
                let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { return }
                buffer += chunk[..<count]
                continue
            }
            let line = String(decoding: buffer[..<newline], as: UTF8.self)
            buffer.removeSubrange(...newline)
            guard let request = try? JSON(parsing: line) else { continue }
            lock.withLock { _received.append(request) }
            let id = request["id"]
            let params = request["params"]
            switch request["method"]?.stringValue {
            case "session.hello":
                send(
                    #"{"jsonrpc":"2.0","id":\#(idText(id!)),"result":{"apiVersion":"2","apiVersions":[{"version":"1"},{"version":"2"}],"capabilities":[],"server":{"name":"fake","version":"0"}}}"#
                )
            case "agent.act":
                runs += 1
                let runID = "run_\(runs)"
                let chatID = params?["chatId"]?.stringValue ?? "cht_fake"
                if params?["message"]?.stringValue == "slow" {
                    send(#"{"jsonrpc":"2.0","method":"agent.delta","params":{"runId":"\#(runID)","chatId":"\#(chatID)","seq":1,"text":"thinking"}}"#)
                    pendingSlow = (id!, runID)
                } else {
                    send(#"{"jsonrpc":"2.0","method":"agent.delta","params":{"runId":"\#(runID)","chatId":"\#(chatID)","seq":1,"text":"Hel"}}"#)
                    send(#"{"jsonrpc":"2.0","method":"agent.delta","params":{"runId":"\#(runID)","chatId":"\#(chatID)","seq":2,"text":"lo"}}"#)
                    send(
                        #"{"jsonrpc":"2.0","id":\#(idText(id!)),"result":{"runId":"\#(runID)","chatId":"\#(chatID)","message":{"id":"msg_\#(runs)","content":"Hello"},"usage":{"inputTokens":1,"outputTokens":2}}}"#
                    )
                }
            case "$/cancelRequest":
                if let slow = pendingSlow, params?["id"] == slow.id {
                    send(#"{"jsonrpc":"2.0","id":\#(idText(slow.id)),"error":{"code":-32800,"message":"Request cancelled"}}"#)
                    pendingSlow = nil
                }
            case "agent.cancel":
                send(#"{"jsonrpc":"2.0","id":\#(idText(id!)),"result":{"cancelled":true}}"#)
            case let method? where method.hasPrefix("files."):
                guard let reply = files(method, params) else { return }  // the dropped connection
                send(#"{"jsonrpc":"2.0","id":\#(idText(id!)),\#(reply)}"#)
            default:
                if let id { send(#"{"jsonrpc":"2.0","id":\#(idText(id)),"error":{"code":-32601,"message":"Method not found"}}"#) }
            }
        }
    }

    /// The `result` or `error` member answering a `files.*` call; nil: close the connection.
    private func files(_ method: String, _ params: JSON?) -> String? {
        let expires = #""expiresAt":"2030-01-01T00:00:00Z""#
        return lock.withLock { () -> String? in
            switch method {
            case "files.import":
                return #""error":{"code":-32020,"message":"Unauthorized","data":{"reason":"files.import is only for the daemon's own uid"}}"#
            case "files.upload.begin":
                _uploaded = []
                announcedSHA256 = params?["sha256"]?.stringValue
                announcedSize = params?["size"]?.intValue ?? 0
                return #""result":{"uploadId":"upl_fake","chunkSize":8,\#(expires)}"#
            case "files.upload.chunk":
                guard params?["uploadId"]?.stringValue == "upl_fake" else { return #""error":{"code":-32030,"message":"Not found"}"# }
                let offset = params?["offset"]?.intValue ?? -1
                if offset == _rateLimitOffset {
                    _rateLimitOffset = nil
                    return #""error":{"code":-32017,"message":"Rate limited","data":{"rateClass":"write","cost":1,"retryAfterMs":20}}"#
                }
                guard offset == _uploaded.count else {
                    return #""error":{"code":-32070,"message":"Offset mismatch","data":{"expected":\#(_uploaded.count),"actual":\#(offset)}}"#
                }
                _uploaded += Data(base64Encoded: params?["data"]?.stringValue ?? "") ?? Data()
                chunksStored += 1
                if chunksStored == _dropAfterChunk {
                    _dropAfterChunk = nil
                    return nil
                }
                return #""result":{"uploadId":"upl_fake","offset":\#(_uploaded.count),"size":\#(announcedSize),\#(expires)}"#
            case "files.upload.status":
                return #""result":{"uploadId":"upl_fake","offset":\#(_uploaded.count),"size":\#(announcedSize),\#(expires)}"#
            case "files.upload.commit":
                return
                    #""result":{"id":"fil_fake","name":"fake","mediaType":"text/plain","size":\#(_uploaded.count),"sha256":"\#(announcedSHA256 ?? "")","createdAt":"2030-01-01T00:00:00Z"}"#
            default:
                return #""error":{"code":-32601,"message":"Method not found"}"#
            }
        }
    }
}
