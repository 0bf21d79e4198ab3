import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Start-up (socket file, refusal, stale sockets) and graceful shutdown.
@Suite("Daemon lifecycle", .blockingIO, .timeLimit(.minutes(1)))
struct LifecycleTests {
    static func fileMode(_ path: String) -> mode_t? {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        return status.st_mode
    }

    static func exists(_ path: String) -> Bool { fileMode(path) != nil }

    @Test("SIGTERM with a call in flight: shuttingDown notification, -32002 for new calls, the result, EOF, exit 0, socket removed")
    func gracefulShutdown() throws {
        try withDaemon(["--drain-timeout-ms", "5000"]) { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc":"2.0","id":"sleep","method":"test.sleep","params":{"ms":1500}}"#)
            // The pong proves the sleep was read and is running.
            try expectReply(client.ping(id: 1), equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
            daemon.terminate()

            try expectReply(client.readJSON(), equals: #"{"jsonrpc":"2.0","method":"server.shuttingDown","params":{"drainTimeoutMs":5000}}"#)
            // No longer accepting connections.
            #expect(throws: (any Error).self, "a new connection must be refused while draining") {
                _ = try RPCTestClient(path: daemon.socketPath)
            }
            // A new request on the open connection is refused while draining.
            try client.send(line: #"{"jsonrpc":"2.0","id":2,"method":"system.ping"}"#)
            let refused = try client.readJSON()
            #expect(refused["id"] == .integer(2), "reply: \(refused)")
            #expect(refused.errorCode == -32002, "reply: \(refused)")
            // The call in flight finishes, then the server closes the connection.
            try expectReply(client.readJSON(), equals: #"{"jsonrpc":"2.0","id":"sleep","result":{"sleptMs":1500}}"#)
            #expect(try client.readUntilEOF() == "")

            #expect(try daemon.waitForExit() == .exited(0))
            #expect(!Self.exists(daemon.socketPath), "the socket file must be removed")
        }
    }

    @Test("past --drain-timeout-ms, calls still running are answered -32002; batches sent while draining are refused per member")
    func drainTimeout() throws {
        try withDaemon(["--drain-timeout-ms", "300"]) { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc":"2.0","id":1,"method":"test.sleep","params":{"ms":20000}}"#)
            _ = try client.ping(id: 2)
            daemon.terminate()
            try expectReply(client.readJSON(), equals: #"{"jsonrpc":"2.0","method":"server.shuttingDown","params":{"drainTimeoutMs":300}}"#)
            try client.send(line: #"[{"jsonrpc":"2.0","id":3,"method":"system.ping"},{"jsonrpc":"2.0","method":"system.ping"}]"#)
            try expectReply(client.readJSON(), equals: #"[{"jsonrpc":"2.0","id":3,"error":{"code":-32002,"message":"Server is shutting down"}}]"#)
            let cut = try client.readJSON(timeout: .seconds(5))
            #expect(cut["id"] == .integer(1), "reply: \(cut)")
            #expect(cut.errorCode == -32002, "reply: \(cut)")
            #expect(try client.readUntilEOF() == "")
            #expect(try daemon.waitForExit(timeout: .seconds(5)) == .exited(0))
            #expect(!Self.exists(daemon.socketPath))
        }
    }

    @Test("SIGINT on an idle daemon: every connection gets shuttingDown then EOF; exit 0; socket removed")
    func idleShutdownOnSIGINT() throws {
        try withDaemon { daemon in
            let first = try daemon.connect()
            let second = try RPCTestClient(path: daemon.socketPath)
            for client in [first, second] { _ = try client.ping() }
            daemon.signal(SIGINT)
            for client in [first, second] {
                let notification = try client.readJSON()
                #expect(notification["method"] == .string("server.shuttingDown"), "got \(notification)")
                #expect(notification["id"] == nil, "a notification has no id: \(notification)")
                // The README's default drain timeout.
                #expect(notification["params"]?["drainTimeoutMs"] == .integer(10000), "got \(notification)")
                #expect(try client.readUntilEOF() == "")
            }
            #expect(try daemon.waitForExit() == .exited(0))
            #expect(!Self.exists(daemon.socketPath))
        }
    }

    @Test("closing a connection cancels its calls: shutdown does not wait for them")
    func closingCancelsCalls() throws {
        try withDaemon(["--drain-timeout-ms", "30000"]) { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc":"2.0","id":1,"method":"test.sleep","params":{"ms":30000}}"#)
            _ = try client.ping(id: 2)
            client.close()
            daemon.terminate()
            // Were the sleep still running, the drain would wait up to 30 s for it.
            #expect(try daemon.waitForExit(timeout: .seconds(8)) == .exited(0))
        }
    }

    @Test("refuses to start when another live agentd listens on the socket")
    func refusesWhenAlreadyListening() throws {
        try withDaemon { daemon in
            try daemon.waitUntilConnectable()
            let second = try DaemonProcess(socketPath: daemon.socketPath, arguments: [], logName: "second")
            defer { second.kill() }
            #expect(try second.waitForExit() == .exited(1))
            #expect(second.stderr.contains("already listening"), "stderr: \(second.stderr)")
            // The first daemon is unharmed and still owns the socket.
            try expectReply(daemon.connect().ping(id: 1), equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
        }
    }

    @Test("replaces a stale socket file left by a dead process")
    func replacesStaleSocket() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = "\(directory.path)/agentd.sock"
        // A socket file nobody listens on: bind, then close without unlinking.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8))
            raw[path.utf8.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        close(fd)
        try #require(bound == 0)
        try #require(Self.fileMode(path).map { $0 & S_IFMT == S_IFSOCK } == true)

        let daemon = try DaemonProcess(socketPath: path, arguments: ["--database", "\(directory.path)/db.sqlite"])
        defer { daemon.kill() }
        try expectReply(daemon.connect().ping(id: 1), equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
    }

    @Test("refuses to start when the socket path exists and is not a socket")
    func refusesNonSocketPath() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = "\(directory.path)/agentd.sock"
        try "precious".write(toFile: path, atomically: false, encoding: .utf8)
        let daemon = try DaemonProcess(socketPath: path, arguments: ["--database", "\(directory.path)/db.sqlite"])
        defer { daemon.kill() }
        #expect(try daemon.waitForExit() == .exited(1))
        #expect(!daemon.stderr.isEmpty)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "precious", "the file must be left alone")
    }

    @Test("the socket file has mode 0600 by default")
    func socketModeDefault() throws {
        try withDaemon { daemon in
            try daemon.waitForLog(containing: "listening")
            let mode = try #require(Self.fileMode(daemon.socketPath))
            #expect(mode & S_IFMT == S_IFSOCK)
            #expect(mode & 0o7777 == 0o600, "mode is \(String(mode & 0o7777, radix: 8))")
        }
    }

    @Test("--socket-mode sets the socket file's mode")
    func socketModeOption() throws {
        try withDaemon(["--socket-mode", "0660"]) { daemon in
            // The socket accepts connections a moment before its mode is widened; the "listening"
            // line comes after.
            try daemon.waitForLog(containing: "listening")
            let mode = try #require(Self.fileMode(daemon.socketPath))
            #expect(mode & 0o7777 == 0o660, "mode is \(String(mode & 0o7777, radix: 8))")
        }
    }

    @Test("missing parent folders of the socket are created with mode 0700")
    func createsParentFolders() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = "\(directory.path)/a/b/agentd.sock"
        let daemon = try DaemonProcess(socketPath: path, arguments: ["--database", "\(directory.path)/db.sqlite"])
        defer { daemon.kill() }
        try expectReply(daemon.connect().ping(id: 1), equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
        for folder in ["\(directory.path)/a", "\(directory.path)/a/b"] {
            let mode = try #require(Self.fileMode(folder))
            #expect(mode & 0o7777 == 0o700, "\(folder) has mode \(String(mode & 0o7777, radix: 8))")
        }
    }
}
