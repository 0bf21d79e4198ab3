import AgentdTesting
import BlobStoreTesting
import Foundation
import GRDB
import JobQueueTesting
import Logging
import NIOPosix
import RPC
import Storage
import Testing

@testable import Services

/// Text extraction (issue 20, "PDFs"): the real pdftotext on PDFs made here, the
/// `files.extract_text` job over the SQLite store and an in-memory blob store, what search and the
/// agent's interface see after it, and how the jobs are enqueued.
@Suite("File texts")
struct FileTextTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    // MARK: pdftotext

    @Test("pdftotext gives the text of a PDF made here, pages separated by form feeds")
    func extractsText() throws {
        let path = try Self.temporaryFile(MinimalPDF.make(pages: ["Quarterly zebra report", "Second page (draft)"]))
        defer { unlink(path) }
        let (text, truncated) = try PdftotextExtractor().extractText(path: path, maxBytes: 1 << 20, timeout: .seconds(30))
        #expect(!truncated)
        #expect(text.contains("Quarterly zebra report"))
        #expect(text.contains("Second page (draft)"))
        #expect(text.contains("\u{0C}"))
    }

    @Test("output past the cap is cut, not refused")
    func capsOutput() throws {
        let path = try Self.temporaryFile(MinimalPDF.make(pages: Array(repeating: "abcdefghij klmnopqrst uvwxyz", count: 20)))
        defer { unlink(path) }
        let (text, truncated) = try PdftotextExtractor().extractText(path: path, maxBytes: 40, timeout: .seconds(30))
        #expect(truncated)
        #expect(text.utf8.count == 40)
        #expect(text.hasPrefix("abcdefghij klmnopqrst uvwxyz"))
    }

    @Test("a damaged PDF is unreadable with a reason; a missing program is unavailable; an overrun is killed")
    func failures() throws {
        let broken = try Self.temporaryFile(Data("%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage, no xref\n".utf8))
        defer { unlink(broken) }
        #expect(throws: PDFTextExtractionError.unreadable("pdftotext could not read the PDF (damaged, not a PDF, or encrypted)")) {
            try PdftotextExtractor().extractText(path: broken, maxBytes: 1 << 20, timeout: .seconds(30))
        }
        #expect(throws: PDFTextExtractionError.self) {
            try PdftotextExtractor(command: ["nice", "-n", "10", "/nonexistent/pdftotext"]).extractText(
                path: broken, maxBytes: 1 << 20, timeout: .seconds(30))
        }
        do {
            _ = try PdftotextExtractor(command: ["nice", "-n", "10", "/nonexistent/pdftotext"]).extractText(
                path: broken, maxBytes: 1 << 20, timeout: .seconds(30))
        } catch PDFTextExtractionError.unavailable(let reason) {
            #expect(reason.contains("poppler-utils"))
        }
        // A stand-in that never ends and starts a child (sh ignores the PDF's path and `-`): the
        // whole group is killed at the limit, the child too.
        let pidFile = NSTemporaryDirectory() + "/agentd-test-\(UUID().uuidString).pid"
        defer { unlink(pidFile) }
        let started = ContinuousClock.now
        #expect(throws: PDFTextExtractionError.unreadable("pdftotext ran longer than 0.3 seconds and was stopped")) {
            try PdftotextExtractor(command: ["sh", "-c", "sleep 60 & echo $! > \(pidFile); wait", "sh"]).extractText(
                path: broken, maxBytes: 1 << 20, timeout: .milliseconds(300))
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        let child = try #require(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        // SIGKILL reaches the group at once, but a process dies when it next runs: it must be gone,
        // or a zombie its dead parent left behind, within moments.
        func running() -> Bool {
            let state = (try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8))?.split(separator: " ").dropFirst(2).first
            return state != nil && state != "Z" && state != "X"
        }
        let deadline = Deadline(.seconds(5))
        while running() && !deadline.hasPassed { usleep(1_000) }
        #expect(!running(), "the child \(child) of the killed stand-in still runs")
    }

    @Test("a split UTF-8 character at a cut is dropped, a whole one kept")
    func splitCharacter() {
        let bytes = Array("aé€😀".utf8)  // 1 + 2 + 3 + 4 bytes
        #expect(Array(FileTextJob.droppingSplitCharacter(bytes)) == bytes)
        #expect(Array(FileTextJob.droppingSplitCharacter(bytes.dropLast())) == Array("aé€".utf8))
        #expect(Array(FileTextJob.droppingSplitCharacter(Array(bytes[0..<5]))) == Array("aé".utf8))
        #expect(Array(FileTextJob.droppingSplitCharacter(Array(bytes[0..<2]))) == Array("a".utf8))
        #expect(Array(FileTextJob.droppingSplitCharacter([UInt8]())) == [])
    }

    // MARK: The job

    /// The job over an in-memory database and blob store, with the real pdftotext.
    struct Graph {
        let database: AgentDatabase
        let store: SQLiteFileTextStore
        let blobs = InMemoryBlobStore()
        let job: FileTextJob
        let search: SearchService

        init() async throws {
            database = try AgentDatabase.inMemory()
            _ = try await database.migrate(logger: FileTextTests.logger)
            let writes = GroupCommitWriter(writer: database.writer, outbox: EventOutbox(clock: SystemClock(), publish: { _ in }))
            store = SQLiteFileTextStore(reader: database.writer, groupWriter: writes)
            job = FileTextJob(
                store: store, blobs: blobs, extractor: PdftotextExtractor(), runner: NIOThreadPool.singleton, clock: SystemClock(),
                limits: FileTextJob.Limits(textFileBytes: 16), logger: FileTextTests.logger)
            search = SearchService(index: SQLiteSearchIndex(reader: database.writer, indexer: nil))
            try await database.writer.write { db in
                for (id, name) in [("usr_1", "alice"), ("usr_2", "bob")] {
                    try db.execute(
                        sql: "INSERT INTO users (id, username, created_at) VALUES (?, ?, '2027-01-15T08:00:00.000Z')", arguments: [id, name])
                }
            }
        }

        /// A file of `user` with `content` in the blob store.
        func addFile(_ id: String, user: String = "usr_1", name: String, mediaType: String, content: Data) async throws {
            let info = try blobs.write(content, staging: StagingID("stg_\(id)")!)
            try await database.writer.write { db in
                try db.execute(
                    sql:
                        "INSERT INTO files (id, user_id, name, media_type, size, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, '2027-01-15T08:00:00.000Z')",
                    arguments: [id, user, name, mediaType, info.size, info.digest.hex])
            }
        }

        func run(fileID: String) async throws -> String? {
            let payload = try JSONFragment(encoding: FileTexts.Payload(fileId: fileID))
            let now = Date()
            let job = Job(
                id: "job_\(fileID)", kind: FileTextJob.kind, ownerID: nil, state: .running, payload: payload, attempt: 1, runAfter: now,
                createdAt: now,
                updatedAt: now)
            return try await self.job.run(ClaimedJob(job: job, lease: JobLease(jobID: job.id, workerID: "w", attempt: 1), recovered: false))?.text
        }

        func find(_ query: String, user: String = "usr_1") async throws -> [SearchHit] {
            try await search.query(Search.Query.Params(query: query, kinds: [.files]), userID: user).items
        }
    }

    @Test("a PDF's text is extracted once, found by search (kind file) and readable by the agent's interface; its deletion unindexes it")
    func pdfEndToEnd() async throws {
        let graph = try await Graph()
        try await graph.addFile(
            "fil_1", name: "report.pdf", mediaType: "application/pdf", content: MinimalPDF.make(pages: ["Quarterly zebra figures"]))
        #expect(try await graph.find("zebra").isEmpty)

        #expect(try await graph.run(fileID: "fil_1") == #"{"state":"ready","truncated":false}"#)
        let text = try #require(try await graph.store.extractedText(fileID: "fil_1", userID: "usr_1"))
        #expect(text.state == .ready && text.text?.contains("Quarterly zebra figures") == true && text.extractedAt != nil)
        #expect(try await graph.store.extractedText(fileID: "fil_1", userID: "usr_2") == nil)

        let hits = try await graph.find("zebra figures")
        #expect(hits.map(\.id) == ["fil_1"])
        #expect(hits.first?.kind == .file && hits.first?.title == "report.pdf" && hits.first?.mediaType == "application/pdf")
        #expect(hits.first?.snippet.contains("⟦zebra⟧ ⟦figures⟧") == true)
        #expect(try await graph.find("zebra", user: "usr_2").isEmpty)

        // Once done, a second job (a duplicate enqueue) does nothing.
        #expect(try await graph.run(fileID: "fil_1") == #"{"state":"gone"}"#)

        try await graph.database.writer.write { db in try db.execute(sql: "DELETE FROM files WHERE id = 'fil_1'") }
        #expect(try await graph.find("zebra").isEmpty)
        #expect(try await graph.run(fileID: "fil_1") == #"{"state":"gone"}"#)
    }

    @Test("a damaged PDF ends failed with the reason, and the job succeeds (no retry)")
    func brokenPDF() async throws {
        let graph = try await Graph()
        try await graph.addFile("fil_1", name: "broken.pdf", mediaType: "application/pdf", content: Data("%PDF-1.7\nnot really\n".utf8))
        let result = try await graph.run(fileID: "fil_1")
        #expect(result?.contains(#""state":"failed""#) == true)
        let text = try #require(try await graph.store.extractedText(fileID: "fil_1", userID: "usr_1"))
        #expect(
            text
                == ExtractedText(
                    state: .failed, error: "pdftotext could not read the PDF (damaged, not a PDF, or encrypted)", extractedAt: text.extractedAt))
        // Its name is still found.
        #expect(try await graph.find("broken").map(\.id) == ["fil_1"])
    }

    @Test("a text file's first bytes are indexed (cut at a character); one that is not UTF-8 fails")
    func textFiles() async throws {
        let graph = try await Graph()
        // The graph indexes 16 bytes: "notes about okap" and the start of "é" would be cut.
        try await graph.addFile("fil_1", name: "notes.txt", mediaType: "text/plain", content: Data("notes about é okapi and more".utf8))
        #expect(try await graph.run(fileID: "fil_1") == #"{"state":"ready","truncated":true}"#)
        #expect(try await graph.store.extractedText(fileID: "fil_1", userID: "usr_1")?.text == "notes about é o")
        #expect(try await graph.find("about").map(\.id) == ["fil_1"])
        #expect(try await graph.find("okapi").isEmpty)

        try await graph.addFile("fil_2", name: "blob.txt", mediaType: "text/plain", content: Data([0x66, 0xFF, 0x00, 0x67]))
        _ = try await graph.run(fileID: "fil_2")
        #expect(
            try await graph.store.extractedText(fileID: "fil_2", userID: "usr_1")
                == ExtractedText(
                    state: .failed, error: "not UTF-8 text",
                    extractedAt: try await graph.store.extractedText(fileID: "fil_2", userID: "usr_1")?.extractedAt))
    }

    @Test("a blob store failure fails the attempt as retriable and leaves the text pending")
    func blobFailureRetries() async throws {
        let graph = try await Graph()
        try await graph.addFile("fil_1", name: "a.pdf", mediaType: "application/pdf", content: MinimalPDF.make(pages: ["x"]))
        graph.blobs.failNext(.io("disk on fire"))
        await #expect(throws: BlobStoreError.io("disk on fire")) { try await graph.run(fileID: "fil_1") }
        #expect(graph.job.policy.isRetriable(BlobStoreError.io("disk on fire")))
        #expect(!graph.job.policy.isRetriable(JobError(kind: "invalid", message: "")))
        #expect(try await graph.store.extractedText(fileID: "fil_1", userID: "usr_1")?.state == .pending)
        #expect(try await graph.run(fileID: "fil_1") == #"{"state":"ready","truncated":false}"#)
    }

    // MARK: Enqueuing

    @Test("file.created of an extractable type enqueues one job per file; enqueuePending enqueues what is pending, once")
    func enqueuing() async throws {
        let graph = try await Graph()
        let queue = InMemoryJobQueue()
        let texts = FileTexts(
            scheduler: JobScheduler(queue: queue, signal: JobWakeSignal()), store: graph.store, clock: SystemClock(), ids: SequentialIDs(),
            logger: Self.logger)
        try await graph.addFile("fil_1", name: "a.pdf", mediaType: "application/pdf", content: Data("1".utf8))
        try await graph.addFile("fil_2", name: "b.png", mediaType: "image/png", content: Data("2".utf8))
        try await graph.addFile("fil_3", name: "c.txt", mediaType: "text/plain", content: Data("3".utf8))

        #expect(try await texts.enqueuePending(pageSize: 1) == 2)
        #expect(try await texts.enqueuePending() == 0)
        let jobs = try await queue.list(JobQuery(ownerID: nil, limit: 10))
        #expect(Set(jobs.map(\.job.idempotencyKey)) == ["fil_1", "fil_3"])
        #expect(jobs.allSatisfy { $0.job.kind == FileTextJob.kind && $0.job.maxAttempts == FileTextJob.maxAttempts })
        // The commit listener's enqueue for the same file is the same job.
        #expect(try await texts.enqueue(fileID: "fil_1").created == false)
    }

    @Test("the commit listener picks the created files of extractable types, nothing else")
    func listenerFilter() throws {
        func event(_ topic: String, _ file: FileMetadata) throws -> Event {
            Event(
                seq: 1, topic: topic, userID: "usr_1", chatID: nil, moduleID: nil, occurredAt: Date(),
                data: try JSONFragment(encoding: FilesEvents.FileCreated(userID: "usr_1", file: file)))
        }
        func file(_ id: String, _ type: String) -> FileMetadata {
            FileMetadata(id: id, name: "n", mediaType: type, size: 1, sha256: String(repeating: "0", count: 64), createdAt: Date())
        }
        let committed = [
            try event("file.created", file("fil_1", "application/pdf")), try event("file.created", file("fil_2", "image/png")),
            try event("file.deleted", file("fil_3", "application/pdf")), try event("file.created", file("fil_4", "text/x-swift")),
        ]
        #expect(FileTexts.extractable(committed) == ["fil_1", "fil_4"])
    }

    // MARK: Through the daemon

    @Test("in process: an uploaded PDF's text is extracted by the registered job, found by search.query (kind file) and gone after files.delete")
    func inProcess() async throws {
        try await withInProcessDaemon(runJobs: false) { daemon in
            let client = try await daemon.connect()
            let pdf = MinimalPDF.make(pages: ["Invoice for the okapi enclosure"])
            let begun = try await client.send(Files.UploadBegin.self, .init(name: "invoice.pdf", size: Int64(pdf.count)))
            _ = try await client.send(Files.UploadChunk.self, .init(uploadId: begun.uploadId, offset: 0, data: pdf.base64EncodedString()))
            let file = try await client.send(Files.UploadCommit.self, .init(uploadId: begun.uploadId))
            #expect(file.mediaType == "application/pdf")
            let userID = try await client.send(Auth.WhoAmI.self).id
            #expect(try await daemon.dependencies.fileTexts.extractedText(fileID: file.id, userID: userID)?.state == .pending)
            let byName = try await Self.search(client, #"{"query":"invoice","kinds":["files"]}"#)
            #expect(byName.items.map(\.id) == [file.id])

            // The job the commit listener enqueues (the same one: keyed by the file), run here by hand.
            _ = try await daemon.dependencies.fileTextJobs.enqueue(fileID: file.id)
            let claimed = try await daemon.dependencies.jobQueue.claim(
                kinds: [FileTextJob.kind], workerID: "test", limit: 10, lease: .seconds(60), now: daemon.clock.now())
            #expect(claimed.count == 1)
            let handler = try #require(daemon.dependencies.jobHandlers.first { $0.policy.kind == FileTextJob.kind })
            _ = try await handler.run(try #require(claimed.first))

            let text = try #require(try await daemon.dependencies.fileTexts.extractedText(fileID: file.id, userID: userID))
            #expect(text.state == .ready && text.text?.contains("Invoice for the okapi enclosure") == true)
            let hits = try await Self.search(client, #"{"query":"okapi enclosure"}"#)
            #expect(hits.items.map(\.id) == [file.id])
            #expect(hits.items.first?.kind == .file && hits.items.first?.title == "invoice.pdf")
            // API version 1 (no session.hello) knows no files: its hits never hold one.
            #expect(try await client.send(Search.QueryV1.self, .init(query: "okapi enclosure")).items.isEmpty)
            let v1Files = await #expect(throws: RPCError.self) { try await client.call("search.query", #"{"query":"okapi","kinds":["files"]}"#) }
            #expect(v1Files?.code == .invalidParams)

            let other = try await daemon.registerAndLogin(username: "eve")
            #expect(try await Self.search(other, #"{"query":"okapi"}"#).items.isEmpty)
            let otherID = try await other.send(Auth.WhoAmI.self).id
            #expect(try await daemon.dependencies.fileTexts.extractedText(fileID: file.id, userID: otherID) == nil)

            _ = try await client.send(Files.Delete.self, .init(id: file.id))
            #expect(try await Self.search(client, #"{"query":"okapi"}"#).items.isEmpty)
            #expect(try await daemon.dependencies.fileTexts.extractedText(fileID: file.id, userID: userID) == nil)
        }
    }

    /// `search.query` in API version 2, the first with files.
    static func search(_ client: InProcessClient, _ params: String) async throws -> Search.Query.Result {
        try await client.call("v2.search.query", params).decode(Search.Query.Result.self)
    }

    static func temporaryFile(_ data: Data) throws -> String {
        let path = NSTemporaryDirectory() + "/agentd-test-\(UUID().uuidString).pdf"
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }
}
