import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A blocking Unix-socket client for one connection, in plain POSIX calls: what a test sees on the
/// wire is exactly what `socat` would see. Every read takes a timeout.
final class RPCTestClient {
    let path: String
    private var fd: Int32
    /// Bytes received and not consumed yet.
    private var buffer: [UInt8] = []
    private var sawEOF = false

    /// Connects once; throws when nothing accepts on `path`.
    init(path: String) throws {
        self.path = path
        fd = try Self.connectOnce(path: path)
    }

    /// Connects, retrying until the daemon listens or `timeout` passes.
    static func connect(path: String, timeout: Duration = .seconds(30), whileAlive isAlive: () -> Bool = { true }) throws -> RPCTestClient {
        let deadline = Deadline(timeout)
        var lastError = "no attempt"
        while true {
            do {
                return try RPCTestClient(path: path)
            } catch {
                lastError = "\(error)"
            }
            guard isAlive() else { throw HarnessError("the daemon exited before \(path) accepted a connection (\(lastError))") }
            guard !deadline.hasPassed else { throw HarnessError("\(path) did not accept a connection in \(timeout): \(lastError)") }
            // The socket does not exist yet: a short pause between attempts, bounded by the deadline.
            var pause = timespec(tv_sec: 0, tv_nsec: 5_000_000)
            nanosleep(&pause, nil)
        }
    }

    static func connectOnce(path: String) throws -> Int32 {
        try requireBlockingIOThread("a connection to \(path)")
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket(): \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(fd)
            throw HarnessError("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            Glibc.close(fd)
            throw HarnessError("connect(\(path)): \(String(cString: strerror(code)))")
        }
        return fd
    }

    deinit { close() }

    func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    // MARK: Sending

    /// Sends the bytes of `raw` exactly (no newline added).
    func send(raw: String, timeout: Duration = .seconds(30)) throws {
        try send(bytes: Array(raw.utf8), timeout: timeout)
    }

    /// Sends one NDJSON message: `json` followed by `\n`.
    func send(line json: String, timeout: Duration = .seconds(30)) throws {
        try send(raw: json + "\n", timeout: timeout)
    }

    /// Sends one message with LSP framing: `Content-Length` (the body's byte count), any extra
    /// header lines, a blank line, the body.
    func sendLSP(body: String, extraHeaders: [String] = [], timeout: Duration = .seconds(30)) throws {
        try send(raw: Self.lspFrame(body: body, extraHeaders: extraHeaders), timeout: timeout)
    }

    static func lspFrame(body: String, extraHeaders: [String] = []) -> String {
        var header = "Content-Length: \(body.utf8.count)\r\n"
        for line in extraHeaders { header += line + "\r\n" }
        return header + "\r\n" + body
    }

    func send(bytes: [UInt8], timeout: Duration = .seconds(30)) throws {
        let deadline = Deadline(timeout)
        var offset = 0
        while offset < bytes.count {
            try wait(for: Int16(POLLOUT), deadline: deadline, what: "room to send")
            let sent = bytes[offset...].withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            }
            if sent < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                throw HarnessError("send: \(String(cString: strerror(errno)))")
            }
            offset += sent
        }
    }

    /// Half-closes: the server sees end of input but can still answer.
    func shutdownWrite() {
        Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    // MARK: Receiving

    /// The next NDJSON line, without its `\n`.
    func readLine(timeout: Duration = .seconds(30)) throws -> String {
        let deadline = Deadline(timeout)
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            try fill(deadline: deadline, waitingFor: "a line")
        }
    }

    /// The next NDJSON line, parsed.
    func readJSON(timeout: Duration = .seconds(30)) throws -> JSON {
        try JSON(parsing: readLine(timeout: timeout))
    }

    /// The next LSP-framed message: checks the header block, returns the body.
    func readLSPMessage(timeout: Duration = .seconds(30)) throws -> String {
        let deadline = Deadline(timeout)
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headerEnd: Int?
        while headerEnd == nil {
            headerEnd = buffer.firstRange(of: separator)?.lowerBound
            if headerEnd == nil { try fill(deadline: deadline, waitingFor: "an LSP header") }
        }
        let header = String(decoding: buffer[..<headerEnd!], as: UTF8.self)
        var length: Int?
        for line in header.components(separatedBy: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { throw HarnessError("malformed LSP header line \(line.debugDescription) in \(header.debugDescription)") }
            if parts[0].lowercased() == "content-length" {
                length = Int(parts[1].trimmingCharacters(in: .whitespaces))
            }
        }
        guard let length else { throw HarnessError("LSP header without a valid Content-Length: \(header.debugDescription)") }
        let bodyStart = headerEnd! + separator.count
        while buffer.count < bodyStart + length {
            try fill(deadline: deadline, waitingFor: "an LSP body of \(length) bytes")
        }
        let body = String(decoding: buffer[bodyStart..<(bodyStart + length)], as: UTF8.self)
        buffer.removeSubrange(..<(bodyStart + length))
        return body
    }

    func readLSPJSON(timeout: Duration = .seconds(30)) throws -> JSON {
        try JSON(parsing: readLSPMessage(timeout: timeout))
    }

    /// Whatever arrives within `within`: nil when nothing did (end of stream counts as nothing).
    /// Does not consume a partial message already buffered.
    func dataArriving(within: Duration) throws -> String? {
        if !buffer.isEmpty { return String(decoding: buffer, as: UTF8.self) }
        let deadline = Deadline(within)
        while !sawEOF {
            do {
                try fill(deadline: deadline, waitingFor: "")
            } catch is TimeoutError {
                return nil
            } catch is EndOfStream {
                return nil
            }
            if !buffer.isEmpty { return String(decoding: buffer, as: UTF8.self) }
        }
        return nil
    }

    /// Records an issue when any byte arrives within `within` (a poll with a deadline).
    func expectNoData(within: Duration, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
        if let data = try dataArriving(within: within) {
            Issue.record("expected no bytes, received \(data.debugDescription)\(comment.map { " (\($0))" } ?? "")", sourceLocation: sourceLocation)
        }
    }

    /// Waits for the server to close the connection. Returns the bytes that came before the end
    /// (throws on timeout).
    @discardableResult
    func readUntilEOF(timeout: Duration = .seconds(30)) throws -> String {
        let deadline = Deadline(timeout)
        while !sawEOF {
            do {
                try fill(deadline: deadline, waitingFor: "end of stream")
            } catch is EndOfStream {
                break
            }
        }
        defer { buffer.removeAll() }
        return String(decoding: buffer, as: UTF8.self)
    }

    private struct TimeoutError: Error, CustomStringConvertible {
        let description: String
    }

    private struct EndOfStream: Error, CustomStringConvertible {
        let description: String
    }

    /// Reads what is available (waiting up to the deadline) into the buffer.
    private func fill(deadline: Deadline, waitingFor what: String) throws {
        if sawEOF {
            throw EndOfStream(
                description:
                    "connection closed by the server while waiting for \(what); unconsumed: \(String(decoding: buffer, as: UTF8.self).debugDescription)"
            )
        }
        try wait(for: Int16(POLLIN), deadline: deadline, what: what)
        var chunk = [UInt8](repeating: 0, count: 65536)
        let received = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if received < 0 {
            if errno == EAGAIN || errno == EINTR { return }
            if errno == ECONNRESET {
                sawEOF = true
                throw EndOfStream(description: "connection reset while waiting for \(what)")
            }
            throw HarnessError("recv: \(String(cString: strerror(errno)))")
        }
        if received == 0 {
            sawEOF = true
            throw EndOfStream(
                description:
                    "connection closed by the server while waiting for \(what); unconsumed: \(String(decoding: buffer, as: UTF8.self).debugDescription)"
            )
        }
        buffer.append(contentsOf: chunk[..<received])
    }

    private func wait(for events: Int16, deadline: Deadline, what: String) throws {
        while true {
            var descriptor = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&descriptor, 1, deadline.pollMilliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                throw HarnessError("poll: \(String(cString: strerror(errno)))")
            }
            if ready > 0 { return }  // readable, writable, or hung up: the next call says which
            if deadline.hasPassed {
                throw TimeoutError(
                    description: "timed out waiting for \(what); unconsumed: \(String(decoding: buffer.prefix(500), as: UTF8.self).debugDescription)")
            }
        }
    }
}

extension RPCTestClient {
    /// Sends a ping and returns its reply: a ping's answer proves every earlier message on this
    /// connection has been read (messages are read in order).
    func ping(id: Int = 1, timeout: Duration = .seconds(30)) throws -> JSON {
        try send(line: #"{"jsonrpc":"2.0","id":\#(id),"method":"system.ping"}"#)
        return try readJSON(timeout: timeout)
    }
}
