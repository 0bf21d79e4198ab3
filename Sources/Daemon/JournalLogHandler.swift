import Journal
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
        JournalEntry(fields: fields).send()
    }

    /// Whether stderr is the journal stream systemd connected (`JOURNAL_STREAM=dev:inode`).
    static var stderrIsJournal: Bool {
        guard let stream = FileSystem.environment("JOURNAL_STREAM") else { return false }
        var status = stat()
        guard fstat(2, &status) == 0 else { return false }
        return stream == "\(status.st_dev):\(status.st_ino)"
    }
}
