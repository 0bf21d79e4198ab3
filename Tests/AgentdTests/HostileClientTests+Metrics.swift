import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 17, smaller items: the metrics (they show everyone's activity) and their HTTP listener.
extension HostileClientTests {
    /// Sends `lines` to the daemon's socket as uid 65534 (a user the daemon does not trust) and
    /// returns the reply lines.
    static func callAsStranger(_ daemon: DaemonProcess, _ lines: [String]) throws -> [JSON] {
        let folder = (daemon.socketPath as NSString).deletingLastPathComponent
        chmod(folder, 0o711)  // the stranger may pass through to the socket (--socket-mode 0666)
        let script = "printf '%s\\n' " + lines.map { "'\($0)'" }.joined(separator: " ") + " | socat -t 5 - UNIX-CONNECT:\(daemon.socketPath)"
        let run = try runCommand(
            "/usr/bin/setpriv", ["--reuid=\(stranger)", "--regid=\(stranger)", "--clear-groups", "/bin/sh", "-c", script])
        #expect(run.termination == .exited(0), "\(run.stderr)")
        return try run.stdout.split(separator: "\n").map { try JSON(parsing: String($0)) }
    }

    @Test("system.metrics needs an authenticated caller: a stranger's uid gets -32020, the daemon's own uid its text")
    func metricsNeedAuthentication() throws {
        try withDaemon(["--socket-mode", "0666"]) { daemon in
            try daemon.waitUntilConnectable()
            let replies = try Self.callAsStranger(daemon, [
                #"{"jsonrpc":"2.0","id":1,"method":"v2.system.metrics"}"#, #"{"jsonrpc":"2.0","id":2,"method":"system.ping"}"#,
            ])
            let metrics = try #require(replies.first { $0["id"]?.intValue == 1 }, "\(replies)")
            #expect(metrics["error"]?["code"]?.intValue == -32020, "\(metrics)")
            #expect(metrics["result"] == nil)
            #expect(replies.first { $0["id"]?.intValue == 2 }?["result"]?.stringValue == "pong", "\(replies)")
            let own = try AuthTests.call(daemon.connect(), id: 3, "v2.system.metrics")
            #expect(own["result"]?["text"]?.stringValue?.contains("rpc_requests_total") == true, "\(own)")
        }
    }
}
