import Foundation
import Testing

/// A client chooses some logged values before it signs in (`session.hello`'s `client.name`). On
/// stderr (when systemd does not connect it to the journal) a newline or an escape sequence in one
/// would forge a log line or drive the operator's terminal; the journal's fields are escaped the same
/// way (JournalFieldsTests).
extension HostileClientTests {
    @Test("a client's value with a newline or an escape sequence stays on its own log line on stderr, escaped")
    func clientValuesCannotForgeStderrLines() throws {
        try withDaemon(["--log-level", "info"]) { daemon in
            let client = ClientConnection(try daemon.connect())
            let name = "editor\nagentd: notice: FORGED line\u{1B}[2J"
            let hello = try client.result(
                "session.hello",
                #"{"apiVersions":["2"],"client":{"name":"\#(name.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\u{1B}", with: "\\u001b"))"}}"#
            )
            #expect(hello["apiVersion"]?.stringValue == "2", "\(hello)")
            _ = try client.result("system.ping")  // the hello's log line is written before the ping's reply
            let lines = daemon.stderr.split(separator: "\n")
            let helloLines = lines.filter { $0.contains("session.hello") }
            #expect(helloLines.count == 1, "\(daemon.stderr)")
            #expect(helloLines.first?.contains(#"FORGED"#) == true, "\(daemon.stderr)")
            #expect(!lines.contains { $0.hasPrefix("agentd: notice: FORGED") }, "a client forged a log line:\n\(daemon.stderr)")
            #expect(!daemon.stderr.contains("\u{1B}"), "an escape sequence reached stderr raw")
        }
    }
}
