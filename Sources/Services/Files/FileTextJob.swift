import Foundation
import Logging
import RPC

/// Enqueues `files.extract_text` jobs. The work to do is durable without it: the database marks a
/// new file's text `pending` in the file's own transaction (schema/0022_file_texts.sql). This only
/// gets the job going: at once for a file just committed (`filesCreated`, a `bus.onCommit`
/// listener), and at start for every text still pending (`enqueuePending`: an enqueue lost to a
/// crash, a job that ran out of attempts while pdftotext could not run).
public struct FileTexts: Sendable {
    /// What a `files.extract_text` job holds: the file's id only (the job reads the rest, and a
    /// file deleted meanwhile costs nothing).
    public struct Payload: Codable, Sendable, Equatable {
        public var fileId: String
        public init(fileId: String) { self.fileId = fileId }
    }

    private let scheduler: JobScheduler
    private let store: any FileTextStore
    private let clock: any WallClock
    private let ids: any IDGenerator
    private let logger: Logger

    public init(scheduler: JobScheduler, store: any FileTextStore, clock: any WallClock, ids: any IDGenerator, logger: Logger) {
        self.scheduler = scheduler
        self.store = store
        self.clock = clock
        self.ids = ids
        self.logger = logger
    }

    /// Enqueues the file's job, a system job (owner nil) whose idempotency key is the file id: one
    /// job per file however often this is called (the commit listener and the start-up pass both).
    @discardableResult
    public func enqueue(fileID: String) async throws -> (job: Job, created: Bool) {
        try await scheduler.enqueue(
            NewJob(
                id: ids.makeID(prefix: "job_"), kind: FileTextJob.kind, ownerID: nil, payload: try JSONFragment(encoding: Payload(fileId: fileID)),
                maxAttempts: FileTextJob.maxAttempts, runAfter: clock.now(), idempotencyKey: fileID))
    }

    /// For `EventBus.onCommit`: enqueues the job of each committed `file.created` whose media type
    /// has text to extract, in a task (the listener must not wait). A failed enqueue is logged; the
    /// text stays pending until the next start.
    public func filesCreated(_ committed: [Event]) {
        let fileIDs = Self.extractable(committed)
        if fileIDs.isEmpty { return }
        Task {
            for fileID in fileIDs {
                do {
                    try await enqueue(fileID: fileID)
                } catch {
                    logger.warning("could not enqueue files.extract_text; retried at the next start", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// The ids of the files `committed` creates whose text is extracted.
    static func extractable(_ committed: [Event]) -> [String] {
        committed.compactMap { event in
            guard event.topic == FilesEvents.FileCreated.topic, let created = try? event.data.decode(CreatedFile.self),
                FileTextJob.extracts(mediaType: created.mediaType)
            else { return nil }
            return created.fileId
        }
    }

    private struct CreatedFile: Decodable {
        var fileId: String
        var mediaType: String
    }

    /// Enqueues the job of every file whose text is pending; returns how many jobs were new. The
    /// daemon calls it at start, before it serves.
    @discardableResult
    public func enqueuePending(pageSize: Int = 500) async throws -> Int {
        var afterSeq: Int64 = 0
        var created = 0
        while true {
            let page = try await store.pendingTexts(afterSeq: afterSeq, limit: pageSize)
            for task in page where try await enqueue(fileID: task.fileID).created { created += 1 }
            guard let last = page.last, page.count == pageSize else { break }
            afterSeq = last.seq
        }
        if created > 0 { logger.info("enqueued text extraction for pending files", metadata: ["files": "\(created)"]) }
        return created
    }
}

/// Runs `files.extract_text`: the text of one file into `file_texts` (and so into the search index).
/// A PDF goes through `PDFTextExtractor` (pdftotext) from a private temporary copy of its blob; a
/// text file's first `Limits.textFileBytes` are read as UTF-8. A PDF that gives no text ends its
/// row `failed` with the reason and the job succeeds: failing the job would only retry it. The job
/// fails (and is retried) only when the blob store or the extractor could not do their part.
public struct FileTextJob: JobHandler {
    public static let kind = "files.extract_text"
    public static let maxAttempts = 3

    /// Bounds on one extraction.
    public struct Limits: Sendable, Equatable {
        /// The most text kept of a PDF, in UTF-8 bytes; the rest is cut (`truncated`), not refused.
        public var pdfTextBytes: Int
        /// How long pdftotext may run before it is killed (the file ends `failed`).
        public var pdfTimeout: Duration
        /// How much of a text file is indexed: its first bytes, for search (the agent reads text
        /// files from their blob).
        public var textFileBytes: Int

        public init(pdfTextBytes: Int = 8 << 20, pdfTimeout: Duration = .seconds(30), textFileBytes: Int = 1 << 20) {
            self.pdfTextBytes = pdfTextBytes
            self.pdfTimeout = pdfTimeout
            self.textFileBytes = textFileBytes
        }
    }

    /// Whether a file of `mediaType` gets its text extracted. The same rule as the trigger that
    /// adds the file's `file_texts` row (schema/0022_file_texts.sql), which decides: this only
    /// saves enqueuing jobs that would find nothing pending (a test checks they agree).
    public static func extracts(mediaType: String) -> Bool {
        let type = mediaType.lowercased()
        return type == "application/pdf" || type.hasPrefix("text/") || type == "application/json" || type.hasPrefix("application/json;")
    }

    /// Blob store failures (I/O) and an extractor that could not start are retried, after 10 s,
    /// then 20 s; a job that runs out leaves the text pending for the next start. Rerun after a
    /// crash: extracting again only repeats work.
    public let policy = JobKindPolicy(
        kind: kind, concurrency: 1, maxAttempts: maxAttempts, rerunAfterCrash: true, baseBackoff: .seconds(10), maxBackoff: .seconds(60),
        lease: .seconds(60), isRetriable: { error in error is BlobStoreError || error is PDFTextExtractionError })

    private let store: any FileTextStore
    private let blobs: any BlobStore
    private let extractor: any PDFTextExtractor
    private let runner: any BlockingWorkRunner
    private let clock: any WallClock
    private let limits: Limits
    private let temporaryDirectory: String
    private let logger: Logger

    /// - Parameters:
    ///   - runner: where the blob reads and pdftotext run (they block).
    ///   - temporaryDirectory: where a PDF is copied for pdftotext (a file of mode 0600, removed after).
    public init(
        store: any FileTextStore, blobs: any BlobStore, extractor: any PDFTextExtractor, runner: any BlockingWorkRunner, clock: any WallClock,
        limits: Limits = Limits(), temporaryDirectory: String = NSTemporaryDirectory(), logger: Logger
    ) {
        self.store = store
        self.blobs = blobs
        self.extractor = extractor
        self.runner = runner
        self.clock = clock
        self.limits = limits
        self.temporaryDirectory = temporaryDirectory
        self.logger = logger
    }

    /// What a finished job records: the text's state (`gone`: the file was deleted, or its text
    /// was extracted already).
    struct Outcome: Codable, Equatable {
        var state: String
        var truncated: Bool?
        var error: String?
    }

    public func run(_ claimed: ClaimedJob) async throws -> JSONFragment? {
        let payload: FileTexts.Payload
        do {
            payload = try claimed.job.payload.decode(FileTexts.Payload.self)
        } catch {
            throw JobError(kind: "invalid", message: "\(Self.kind) payload: \(error)")
        }
        guard let task = try await store.pendingText(fileID: payload.fileId) else {
            return try JSONFragment(encoding: Outcome(state: "gone"))
        }
        let outcome = try await extract(task)
        let event = FileTextEvents.TextExtracted(userID: task.userID, fileId: task.fileID, outcome: outcome)
        guard try await store.finishText(fileID: task.fileID, outcome: outcome, at: clock.now(), event: event) else {
            return try JSONFragment(encoding: Outcome(state: "gone"))
        }
        switch outcome {
        case .ready(_, let truncated):
            return try JSONFragment(encoding: Outcome(state: FileTextState.ready.rawValue, truncated: truncated))
        case .failed(let reason):
            logger.info("file text not extracted", metadata: ["file": "\(task.fileID)", "reason": "\(reason)"])
            return try JSONFragment(encoding: Outcome(state: FileTextState.failed.rawValue, error: reason))
        }
    }

    /// The text of `task`'s file, or why there is none.
    ///
    /// - Throws: `BlobStoreError` (its blob could not be read), `PDFTextExtractionError.unavailable`:
    ///   worth another attempt.
    func extract(_ task: FileTextTask) async throws -> FileTextOutcome {
        let blobs = self.blobs
        let limits = self.limits
        if task.mediaType.lowercased() == "application/pdf" {
            let extractor = self.extractor
            let directory = temporaryDirectory
            return try await runner.run {
                try Self.extractPDF(task, blobs: blobs, extractor: extractor, limits: limits, temporaryDirectory: directory)
            }
        }
        return try await runner.run {
            let data = try blobs.read(task.digest, range: 0..<Int64(limits.textFileBytes))
            guard let text = Self.utf8Text(data, cut: task.size > Int64(data.count)) else {
                return .failed(reason: "not UTF-8 text")
            }
            return .ready(text: text, truncated: task.size > Int64(data.count))
        }
    }

    /// Copies the blob to a private temporary file (pdftotext reads a file: a PDF's cross-reference
    /// table is at its end), 1 MiB at a time, and runs the extractor on it.
    private static func extractPDF(
        _ task: FileTextTask, blobs: any BlobStore, extractor: any PDFTextExtractor, limits: Limits, temporaryDirectory: String
    ) throws -> FileTextOutcome {
        var template = Array((temporaryDirectory + "/agentd-pdf-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw PDFTextExtractionError.unavailable("no temporary file in \(temporaryDirectory): \(errnoText())") }
        let path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(path) }
        do {
            defer { close(fd) }
            var offset: Int64 = 0
            let piece: Int64 = 1 << 20
            while offset < task.size {
                let data = try blobs.read(task.digest, range: offset..<min(task.size, offset + piece))
                if data.isEmpty { throw BlobStoreError.io("blob \(task.digest) ends at \(offset) of \(task.size) bytes") }
                try data.withUnsafeBytes { bytes in
                    var written = 0
                    while written < bytes.count {
                        let count = write(fd, bytes.baseAddress! + written, bytes.count - written)
                        if count < 0 {
                            if errno == EINTR { continue }
                            throw PDFTextExtractionError.unavailable("writing \(path): \(errnoText())")
                        }
                        written += count
                    }
                }
                offset += Int64(data.count)
            }
        }
        do {
            let (text, truncated) = try extractor.extractText(path: path, maxBytes: limits.pdfTextBytes, timeout: limits.pdfTimeout)
            return .ready(text: text, truncated: truncated)
        } catch PDFTextExtractionError.unreadable(let reason) {
            return .failed(reason: reason)
        }
    }

    /// `data` as text: valid UTF-8 without NUL. When `cut`, a character the cut split is dropped.
    /// nil when it is not text.
    static func utf8Text(_ data: Data, cut: Bool) -> String? {
        let bytes = cut ? droppingSplitCharacter(data) : data[...]
        guard !bytes.contains(0), let text = String(validating: bytes, as: UTF8.self) else { return nil }
        return text
    }

    /// `bytes` without the last character's bytes when a cut left them short (a UTF-8 character is
    /// 1–4 bytes: its lead byte says how many).
    public static func droppingSplitCharacter<Bytes: BidirectionalCollection>(_ bytes: Bytes) -> Bytes.SubSequence where Bytes.Element == UInt8 {
        guard !bytes.isEmpty else { return bytes[...] }
        var start = bytes.index(before: bytes.endIndex)
        var kept = 1
        while start > bytes.startIndex, kept < 4, bytes[start] & 0xC0 == 0x80 {
            start = bytes.index(before: start)
            kept += 1
        }
        let lead = bytes[start]
        let length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        return kept < length ? bytes[..<start] : bytes[...]
    }
}

private func errnoText() -> String {
    String(cString: strerror(errno))
}
