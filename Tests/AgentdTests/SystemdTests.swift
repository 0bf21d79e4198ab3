import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A datagram socket standing in for systemd's notification socket: what agentd sends with
/// sd_notify arrives here.
final class NotifyListener {
    let path: String
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw HarnessError("bind \(path): \(errno)") }
    }

    deinit { close(fd) }

    /// The next datagram and when it arrived; throws when none comes within `timeout`.
    func next(timeout: Duration = .seconds(30)) throws -> (text: String, at: ContinuousClock.Instant) {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard poll(&poller, 1, milliseconds) == 1 else { throw HarnessError("no notification within \(timeout)") }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        guard count > 0 else { throw HarnessError("recv: \(errno)") }
        return (String(decoding: buffer[..<count], as: UTF8.self), .now)
    }

    /// Skips datagrams until one contains `text`.
    func next(containing text: String, timeout: Duration = .seconds(30)) throws -> (text: String, at: ContinuousClock.Instant) {
        let deadline = ContinuousClock.now + timeout
        while true {
            let message = try next(timeout: max(.zero, deadline - .now))
            if message.text.contains(text) { return message }
        }
    }
}

@Suite("systemd integration", .blockingIO, .timeLimit(.minutes(1)))
struct SystemdTests {
    // Alone (no other live test meanwhile): it measures the watchdog's period, which a loaded
    // machine stretches (the daemon's timer, or this test's reads, running late).
    @Test("NOTIFY_SOCKET: READY=1 once the socket listens, WATCHDOG=1 at half the interval with STATUS, STOPPING=1 on SIGTERM", .blockingIOAlone)
    func notifications() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let listener = try NotifyListener(path: "\(directory.path)/notify.sock")
        let daemon = try DaemonProcess(
            socketPath: "\(directory.path)/agentd.sock", arguments: [],
            environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "200000"])
        defer { daemon.kill() }

        let ready = try listener.next()
        #expect(ready.text.contains("READY=1"), "first notification: \(ready.text)")
        // READY=1 means serving: the socket answers at once.
        let client = try RPCTestClient(path: daemon.socketPath)
        #expect(try client.ping()["result"] == .string("pong"))

        var pings: [ContinuousClock.Instant] = []
        while pings.count < 4 {
            let message = try listener.next(containing: "WATCHDOG=1", timeout: .seconds(2))
            #expect(message.text.contains("STATUS=serving"), "watchdog ping without status: \(message.text)")
            pings.append(message.at)
        }
        // Half of the 200 ms interval, with slack for a loaded test machine.
        for (earlier, later) in zip(pings, pings.dropFirst()) {
            let gap = later - earlier
            #expect(gap > .milliseconds(40) && gap < .milliseconds(190), "watchdog gap \(gap)")
        }

        daemon.terminate()
        let stopping = try listener.next(containing: "STOPPING=1")
        #expect(stopping.text.contains("STATUS=draining"))
        #expect(try daemon.waitForExit() == .exited(0))
    }

    @Test("socket activation: systemd-socket-activate holds the socket, the first client starts agentd and is served; the socket is not unlinked")
    func socketActivation() throws {
        let activate = "/usr/bin/systemd-socket-activate"
        try #require(
            FileManager.default.isExecutableFile(atPath: activate), "systemd-socket-activate missing: make test installs the systemd package")
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socketPath = "\(directory.path)/activated.sock"
        let child = try ChildProcess(
            executable: activate,
            arguments: ["-l", socketPath, TestPaths.agentdBinary, "--socket", socketPath, "--database", "\(directory.path)/a.sqlite"],
            stdout: nil, stderr: "\(directory.path)/activate.stderr")
        defer { child.signal(SIGKILL) }

        // The listener exists before agentd runs; this connection is what starts it.
        let client = try RPCTestClient.connect(path: socketPath, whileAlive: { child.isRunning })
        #expect(try client.ping()["result"] == .string("pong"))
        client.close()

        child.signal(SIGTERM)
        #expect(try child.waitForExit(timeout: .seconds(10)) == .exited(0))
        var status = stat()
        #expect(lstat(socketPath, &status) == 0, "agentd removed a socket it did not create")
        let log = (try? String(contentsOfFile: "\(directory.path)/activate.stderr", encoding: .utf8)) ?? ""
        #expect(log.contains("listening on a socket passed by the service manager"))
    }
}
