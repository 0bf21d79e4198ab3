import CSystemd
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Logs to journald with structured fields (`sd_journal_sendv`) when stderr is connected to the
/// journal; `journalctl -u agentd REQUEST_ID=42` then finds one call's lines.
struct JournalLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    let label: String

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let fields = JournalFields.make(
            level: event.level, message: "\(event.message)", metadata: merged, identifier: label,
            file: event.file, function: event.function, line: event.line)
        Self.send(fields)
    }

    private static func send(_ fields: [String]) {
        let copies = fields.map { strdup($0)! }
        defer { copies.forEach { free($0) } }
        var vectors = zip(copies, fields).map { iovec(iov_base: UnsafeMutableRawPointer($0.0), iov_len: $0.1.utf8.count) }
        _ = csystemd_journal_sendv(&vectors, Int32(vectors.count))
    }

    /// Whether stderr is the journal stream systemd connected (`JOURNAL_STREAM=dev:inode`).
    static var stderrIsJournal: Bool {
        guard let stream = FileSystem.environment("JOURNAL_STREAM") else { return false }
        var status = stat()
        guard fstat(2, &status) == 0 else { return false }
        return stream == "\(status.st_dev):\(status.st_ino)"
    }
}

/// The journal fields of one log line. Kept apart from the sending so that they can be checked
/// where no journal runs (tests, containers).
enum JournalFields {
    /// Our metadata keys with the field names the journal queries use.
    static let renamed: [String: String] = ["request": "REQUEST_ID", "method": "RPC_METHOD", "duration_us": "DURATION_US"]

    static func make(
        level: Logger.Level, message: String, metadata: Logger.Metadata, identifier: String,
        file: String, function: String, line: UInt
    ) -> [String] {
        var fields = [
            "MESSAGE=\(message)",
            "PRIORITY=\(priority(level))",
            "SYSLOG_IDENTIFIER=\(identifier)",
            "CODE_FILE=\(file)",
            "CODE_LINE=\(line)",
            "CODE_FUNC=\(function)",
        ]
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            fields.append("\(fieldName(key))=\(value)")
        }
        return fields
    }

    /// syslog priorities: trace and debug are 7 (debug), info 6, notice 5, warning 4, error 3, critical 2.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// Journal field names are upper-case letters, digits and underscores, not starting with `_`.
    static func fieldName(_ key: String) -> String {
        if let renamed = renamed[key] { return renamed }
        var name = String(key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
        while name.hasPrefix("_") { name.removeFirst() }
        return name.isEmpty ? "FIELD" : name
    }
}
