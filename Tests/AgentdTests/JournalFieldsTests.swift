import Logging
import Testing

@testable import Daemon

/// The journal fields agentd sends, checked without a journal (none runs in CI containers).
@Suite("journald fields")
struct JournalFieldsTests {
    @Test("a call's log line carries PRIORITY, MESSAGE, our identifier and REQUEST_ID, RPC_METHOD, DURATION_US")
    func callLine() {
        let fields = JournalFields.make(
            level: .debug, message: "call", metadata: ["request": "42", "method": "system.ping", "duration_us": "17", "peer_uid": "1000"],
            identifier: "agentd", file: "RPC/RPCStandardMiddleware.swift", function: "handle", line: 30)
        #expect(fields.contains("MESSAGE=call"))
        #expect(fields.contains("PRIORITY=7"))
        #expect(fields.contains("SYSLOG_IDENTIFIER=agentd"))
        #expect(fields.contains("REQUEST_ID=42"))
        #expect(fields.contains("RPC_METHOD=system.ping"))
        #expect(fields.contains("DURATION_US=17"))
        #expect(fields.contains("PEER_UID=1000"))
        #expect(fields.contains("CODE_LINE=30"))
    }

    @Test("levels map to syslog priorities", arguments: [
        (Logger.Level.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
    ])
    func priorities(_ level: Logger.Level, _ priority: Int) {
        #expect(JournalFields.priority(level) == priority)
    }

    @Test("metadata keys become valid journal field names")
    func fieldNames() {
        #expect(JournalFields.fieldName("sl-service") == "SL_SERVICE")
        #expect(JournalFields.fieldName("_private") == "PRIVATE")
        #expect(JournalFields.fieldName("connection") == "CONNECTION")
    }
}
