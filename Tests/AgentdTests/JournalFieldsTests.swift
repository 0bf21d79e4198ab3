import Journal
import Logging
import Testing

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

    @Test(
        "levels map to syslog priorities",
        arguments: [
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

extension JournalFieldsTests {
    static let hostile = "\u{0}" + String(repeating: "x", count: 8192) + "\nPRIORITY=0\u{1B}[2J\u{85}"

    @Test("a client's value with a NUL, a newline and 8 KiB after them is sent escaped, whole")
    func controlCharacters() {
        let fields = JournalFields.make(
            level: .info, message: "hello from \(Self.hostile)", metadata: ["client": "\(Self.hostile)"], identifier: "agentd",
            file: "f", function: "g", line: 1)
        for field in fields {
            #expect(
                !field.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }, "a control character in \(field.prefix(40))")
        }
        let escaped = "\\u{0}" + String(repeating: "x", count: 8192) + "\\nPRIORITY=0\\u{1b}[2J\\u{85}"
        #expect(fields.contains("CLIENT=" + escaped))
        #expect(fields.contains("MESSAGE=hello from " + escaped))
        #expect(fields.filter { $0.hasPrefix("PRIORITY=") } == ["PRIORITY=6"])
    }

    @Test("the sender's vectors cover exactly each field's bytes, from one buffer")
    func vectors() {
        // Unescaped on purpose: the buffer must carry any bytes with their real length.
        let fields = ["MESSAGE=" + Self.hostile, "EMPTY=", "CLIENT=\u{0}"]
        let entry = JournalEntry(fields: fields)
        entry.withIOVecs { vectors in
            #expect(vectors.count == 3)
            for (vector, field) in zip(vectors, fields) {
                #expect(vector.iov_len == field.utf8.count)
                #expect(UnsafeRawBufferPointer(start: vector.iov_base, count: vector.iov_len).elementsEqual(field.utf8))
            }
        }
        #expect(entry.bytes.count == fields.reduce(0) { $0 + $1.utf8.count })
    }

    @Test("field names are ASCII only")
    func asciiNames() {
        #expect(JournalFields.fieldName("été") == "T_")
        #expect(JournalFields.fieldName("é") == "FIELD")
    }
}
