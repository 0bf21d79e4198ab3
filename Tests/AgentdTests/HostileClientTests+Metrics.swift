import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 17, smaller items: the metrics (they show everyone's activity) and their HTTP listener.
extension HostileClientTests {
    // `system.metrics` needing an authenticated caller is a route-level check:
    // SystemMetricsTests.metricsNeedAuthentication, in process. What stays here is the `/metrics`
    // HTTP listener, a TCP socket only the process has.

    /// Everything `fd` receives until the server closes it (or `timeout` passes: then throws).
    static func readUntilClosed(_ fd: Int32, timeout: Duration = .seconds(10)) throws -> String {
        let deadline = ContinuousClock.now + timeout
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = deadline - .now
            guard left > .zero else { throw HarnessError("still open after \(timeout)") }
            guard poll(&descriptor, 1, Int32(left.components.seconds * 1000 + 1)) > 0 else { continue }
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { return String(decoding: bytes, as: UTF8.self) }
            bytes += chunk[0..<count]
        }
    }

    /// The first line `fd` receives ("" when the server closes it first).
    static func readStatusLine(_ fd: Int32, timeout: Duration = .seconds(10)) throws -> String {
        let deadline = ContinuousClock.now + timeout
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while !bytes.suffix(2).elementsEqual([13, 10]) {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = deadline - .now
            guard left > .zero else { throw HarnessError("no line after \(timeout)") }
            guard poll(&descriptor, 1, Int32(left.components.seconds * 1000 + 1)) > 0 else { continue }
            guard recv(fd, &byte, 1, 0) == 1 else { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("/metrics: past 16 connections a scraper gets 503 and is closed; the admitted ones are served")
    func metricsConnectionCap() throws {
        try withDaemon(["--metrics-listen", "127.0.0.1:0"]) { daemon in
            try daemon.waitForLog(containing: "metrics listening")
            let port = try #require(MetricsTests.loggedPort(daemon.stderr), "stderr: \(daemon.stderr)")
            var fds = try (0..<20).map { _ in try HTTPTestClient.connectLoopback(port: port) }
            defer { for fd in fds { _ = Glibc.close(fd) } }
            var statuses: [String] = []
            // Keep-alive: every admitted scraper stays open until the end, so exactly 16 are admitted
            // whatever order the server accepts the 20 in.
            for fd in fds {
                let request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                _ = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                let reply = (try? Self.readStatusLine(fd)) ?? "still open"
                statuses.append(reply.isEmpty ? "closed" : reply)
            }
            #expect(statuses.filter { $0.contains(" 200 ") }.count == 16, "\(statuses)")
            #expect(statuses.filter { $0.contains(" 503 ") || $0 == "closed" }.count == 4, "\(statuses)")
            for fd in fds { _ = Glibc.close(fd) }
            fds = []
            // The connections are gone: a new scraper is served again.
            let deadline = Deadline(.seconds(10))
            var served = false
            while !served, !deadline.hasPassed { served = (try? HTTPTestClient.request(port: port, "GET", "/metrics"))?.status == 200 }
            #expect(served, "no scrape served after the others closed")
        }
    }

    @Test("/metrics: a connection that sends nothing is closed after --metrics-idle-timeout-ms")
    func metricsIdleTimeout() throws {
        try withDaemon(["--metrics-listen", "127.0.0.1:0", "--metrics-idle-timeout-ms", "200"]) { daemon in
            try daemon.waitForLog(containing: "metrics listening")
            let port = try #require(MetricsTests.loggedPort(daemon.stderr), "stderr: \(daemon.stderr)")
            let fd = try HTTPTestClient.connectLoopback(port: port)
            defer { Glibc.close(fd) }
            #expect(try Self.readUntilClosed(fd, timeout: .seconds(10)).isEmpty)
        }
    }
}
