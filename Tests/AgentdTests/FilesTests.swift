import AgentdTesting
import BlobStoreTesting
import Foundation
import RPC
import Services
import Testing

/// The files methods through the daemon's router and middleware, in process (`InProcessDaemon`,
/// with an in-memory blob store): uploads in chunks, imports, reads, lists, deletes, every refusal,
/// the quota, and what one user can learn of another's files (nothing).
@Suite("Files (in process)", .timeLimit(.minutes(2)))
struct FilesTests {
    static let png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + Data(repeating: 7, count: 100)

    static func sha256(_ data: Data) -> String { InMemoryBlobStore.digest(of: data).hex }

    static func code(_ error: RPCError?) -> Int? { error.map { Int($0.code.rawValue) } }

    static func storedBytes(_ client: InProcessClient) async throws -> Int? {
        try await client.call("v2.auth.whoami").decode(JSONValue.self)["usage"]?["storedBytes"]?.intValue
    }

    /// Uploads `data` in chunks of `chunk` bytes and commits.
    static func upload(
        _ client: InProcessClient, _ data: Data, name: String = "f.bin", mediaType: String? = nil, sha256: String? = nil, chunk: Int = 1 << 20
    ) async throws -> FileMetadata {
        let begun = try await client.send(Files.UploadBegin.self, .init(name: name, mediaType: mediaType, size: Int64(data.count), sha256: sha256))
        var offset = 0
        while offset < data.count {
            let piece = data[offset..<min(data.count, offset + chunk)]
            _ = try await client.send(
                Files.UploadChunk.self, .init(uploadId: begun.uploadId, offset: Int64(offset), data: piece.base64EncodedString()))
            offset += piece.count
        }
        return try await client.send(Files.UploadCommit.self, .init(uploadId: begun.uploadId))
    }

    static func attempt<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    static func readAll(_ client: InProcessClient, _ id: String) async throws -> Data {
        let read = try await client.send(Files.Read.self, .init(id: id))
        #expect(read.eof)
        return try #require(Data(base64Encoded: read.data))
    }

    @Test(
        "upload in chunks: begin, chunk, status, a wrong offset (-32070 {expected, actual}), commit; get, read, list, delete; file.created and file.deleted"
    )
    func uploadLifecycle() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let begun = try await client.send(
                Files.UploadBegin.self, .init(name: "pic.png", size: Int64(Self.png.count), sha256: Self.sha256(Self.png)))
            #expect(begun.uploadId.hasPrefix("upl_"))
            #expect(begun.chunkSize == 4 << 20)
            let first = try await client.send(
                Files.UploadChunk.self, .init(uploadId: begun.uploadId, offset: 0, data: Self.png[0..<50].base64EncodedString()))
            #expect(first.offset == 50 && first.size == Int64(Self.png.count))
            let wrong = await #expect(throws: RPCError.self) {
                try await client.send(
                    Files.UploadChunk.self, .init(uploadId: begun.uploadId, offset: 0, data: Self.png[0..<50].base64EncodedString()))
            }
            #expect(Self.code(wrong) == -32070, "\(String(describing: wrong))")
            #expect(wrong?.dataValue?["expected"]?.intValue == 50)
            #expect(wrong?.dataValue?["actual"]?.intValue == 0)
            #expect(try await client.send(Files.UploadStatus.self, .init(uploadId: begun.uploadId)).offset == 50)
            _ = try await client.send(
                Files.UploadChunk.self, .init(uploadId: begun.uploadId, offset: 50, data: Self.png[50...].base64EncodedString()))
            let file = try await client.send(Files.UploadCommit.self, .init(uploadId: begun.uploadId))
            #expect(file.id.hasPrefix("fil_"))
            #expect(file.mediaType == "image/png")
            #expect(file.size == Int64(Self.png.count))
            #expect(file.sha256 == Self.sha256(Self.png))
            #expect(try await client.send(Files.Get.self, .init(id: file.id)) == file)
            #expect(try await Self.readAll(client, file.id) == Self.png)
            let part = try await client.send(Files.Read.self, .init(id: file.id, offset: 100, length: 5))
            #expect(Data(base64Encoded: part.data) == Self.png[100..<105])
            #expect(part.offset == 100 && !part.eof)
            let past = try await client.send(Files.Read.self, .init(id: file.id, offset: 1000))
            #expect(past.data.isEmpty && past.eof)
            // The upload is gone once committed.
            let gone = await #expect(throws: RPCError.self) { try await client.send(Files.UploadStatus.self, .init(uploadId: begun.uploadId)) }
            #expect(Self.code(gone) == -32030 && gone?.dataValue?["kind"]?.stringValue == "upload")
            #expect(try await client.send(Files.List.self, .init()).items == [file])
            #expect(try await client.send(Files.Delete.self, .init(id: file.id)).deleted)
            let deleted = await #expect(throws: RPCError.self) { try await client.send(Files.Get.self, .init(id: file.id)) }
            #expect(Self.code(deleted) == -32030 && deleted?.dataValue?["kind"]?.stringValue == "file", "\(String(describing: deleted))")
            #expect(try await client.send(Files.List.self, .init()).items.isEmpty)

            // The events: the file's name, type and size, never its hash.
            let replayed = try await client.send(Events.Replay.self, .init(since: 0, topics: ["file.*"]))
            #expect(replayed.events.map(\.topic) == ["file.created", "file.deleted"])
            let created = try replayed.events[0].data.decode(JSONValue.self)
            #expect(
                created
                    == .object(["fileId": .string(file.id), "name": .string("pic.png"), "mediaType": .string("image/png"), "size": .number(108)]),
                "\(created)")
            #expect(try replayed.events[1].data.decode(JSONValue.self) == .object(["fileId": .string(file.id)]))
        }
    }

    @Test("two chunks at the same offset at once: one is kept, the other answers -32070 with the offset after the first")
    func concurrentChunksDoNotInterleave() async throws {
        try await withInProcessDaemon { daemon in
            let a = try await daemon.connect()
            let b = try await daemon.connect()
            let data = Data(repeating: 1, count: 3000) + Data(repeating: 2, count: 3000)
            let begun = try await a.send(Files.UploadBegin.self, .init(name: "x.bin", size: Int64(data.count)))
            let left = Data(repeating: 1, count: 3000).base64EncodedString()
            let right = Data(repeating: 9, count: 3000).base64EncodedString()
            async let one = Self.attempt { try await a.send(Files.UploadChunk.self, .init(uploadId: begun.uploadId, offset: 0, data: left)) }
            async let two = Self.attempt { try await b.send(Files.UploadChunk.self, .init(uploadId: begun.uploadId, offset: 0, data: right)) }
            let results = await [one, two]
            let failures = results.compactMap { result -> RPCError? in
                if case .failure(let error) = result { return error as? RPCError }
                return nil
            }
            #expect(failures.count == 1)
            #expect(Self.code(failures.first) == -32070)
            #expect(failures.first?.dataValue?["expected"]?.intValue == 3000)
            #expect(try await a.send(Files.UploadStatus.self, .init(uploadId: begun.uploadId)).offset == 3000)
        }
    }

    @Test("commit: a SHA-256 mismatch answers -32071 and keeps nothing (upload gone, quota back); missing bytes answer -32602 naming the offset")
    func commitRefusals() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let before = try await Self.storedBytes(client)
            let data = Data("hello world".utf8)
            let begun = try await client.send(Files.UploadBegin.self, .init(name: "h.txt", size: 11, sha256: Self.sha256(Data("other".utf8))))
            #expect(try await Self.storedBytes(client) == (before ?? 0) + 11)
            let early = await #expect(throws: RPCError.self) { try await client.send(Files.UploadCommit.self, .init(uploadId: begun.uploadId)) }
            #expect(early?.code == .invalidParams)
            #expect(early?.dataValue?["reason"]?.stringValue?.contains("offset 0") == true, "\(String(describing: early))")
            _ = try await client.send(Files.UploadChunk.self, .init(uploadId: begun.uploadId, offset: 0, data: data.base64EncodedString()))
            let mismatch = await #expect(throws: RPCError.self) { try await client.send(Files.UploadCommit.self, .init(uploadId: begun.uploadId)) }
            #expect(Self.code(mismatch) == -32071, "\(String(describing: mismatch))")
            #expect(mismatch?.dataValue?["field"]?.stringValue == "sha256")
            #expect(mismatch?.dataValue?["actual"]?.stringValue == Self.sha256(data))
            let gone = await #expect(throws: RPCError.self) { try await client.send(Files.UploadStatus.self, .init(uploadId: begun.uploadId)) }
            #expect(Self.code(gone) == -32030)
            #expect(try await client.send(Files.List.self, .init()).items.isEmpty)
            #expect(try await Self.storedBytes(client) == before)
            let staged = try daemon.dependencies.blobStore.stagingIDs()
            #expect(staged.isEmpty, "\(staged)")
        }
    }

    @Test("limits: size past files.max_file_bytes, a chunk past chunkSize or past the size, bad base64, bad names, too many uploads (-32072)")
    func limits() async throws {
        try await withInProcessDaemon(configure: {
            $0.files.maxFileBytes = 10_000
            $0.files.maxOpenUploads = 2
            // chunkSize follows the message limit: (12288 - 4096) / 4 * 3.
            $0.limits.maxMessageBytes = 12288
        }) { daemon in
            let client = try await daemon.connect()
            let big = await #expect(throws: RPCError.self) { try await client.send(Files.UploadBegin.self, .init(name: "a", size: 10_001)) }
            #expect(big?.code == .invalidParams)
            #expect(big?.dataValue?["field"]?.stringValue == "size")
            #expect(big?.dataValue?["limit"]?.intValue == 10_000)
            #expect(big?.dataValue?["actual"]?.intValue == 10_001)
            #expect(big?.dataValue?["reason"]?.stringValue?.contains("files.max_file_bytes") == true)
            for name in ["", "a/b", "tab\there", String(repeating: "é", count: 128), ".."] {
                let error = await #expect(throws: RPCError.self, "\(name)") {
                    try await client.send(Files.UploadBegin.self, .init(name: name, size: 1))
                }
                #expect(error?.dataValue?["field"]?.stringValue == "name", "\(name): \(String(describing: error))")
            }
            let badType = await #expect(throws: RPCError.self) {
                try await client.send(Files.UploadBegin.self, .init(name: "a", mediaType: "nonsense", size: 1))
            }
            #expect(badType?.dataValue?["field"]?.stringValue == "mediaType")
            let badSHA = await #expect(throws: RPCError.self) {
                try await client.send(Files.UploadBegin.self, .init(name: "a", size: 1, sha256: "abc"))
            }
            #expect(badSHA?.dataValue?["field"]?.stringValue == "sha256")

            let begun = try await client.send(Files.UploadBegin.self, .init(name: "a", size: 9000))
            #expect(begun.chunkSize == 6144)
            let tooBig = await #expect(throws: RPCError.self) {
                try await client.send(
                    Files.UploadChunk.self, .init(uploadId: begun.uploadId, offset: 0, data: Data(count: 6147).base64EncodedString()))
            }
            #expect(tooBig?.dataValue?["field"]?.stringValue == "data", "\(String(describing: tooBig))")
            let notBase64 = await #expect(throws: RPCError.self) {
                try await client.send(Files.UploadChunk.self, .init(uploadId: begun.uploadId, offset: 0, data: "a b=\n"))
            }
            #expect(notBase64?.dataValue?["field"]?.stringValue == "data")
            #expect(notBase64?.dataValue?["reason"]?.stringValue?.contains("base64") == true)
            _ = try await client.send(
                Files.UploadChunk.self, .init(uploadId: begun.uploadId, offset: 0, data: Data(count: 6000).base64EncodedString()))
            let past = await #expect(throws: RPCError.self) {
                try await client.send(
                    Files.UploadChunk.self, .init(uploadId: begun.uploadId, offset: 6000, data: Data(count: 3001).base64EncodedString()))
            }
            #expect(past?.dataValue?["field"]?.stringValue == "data")
            #expect(try await client.send(Files.UploadStatus.self, .init(uploadId: begun.uploadId)).offset == 6000)

            _ = try await client.send(Files.UploadBegin.self, .init(name: "b", size: 1))
            let many = await #expect(throws: RPCError.self) { try await client.send(Files.UploadBegin.self, .init(name: "c", size: 1)) }
            #expect(Self.code(many) == -32072, "\(String(describing: many))")
            #expect(many?.dataValue?["limit"]?.intValue == 2)
            #expect(many?.dataValue?["setting"]?.stringValue == "files.max_open_uploads")
        }
    }

    @Test("the storage quota counts an upload from its begin and a file: -32007 {limit, actual}; a delete gives the bytes back")
    func quota() async throws {
        try await withInProcessDaemon(configure: { $0.storageQuota = StorageQuota(limitBytes: 1000) }) { daemon in
            let client = try await daemon.connect()
            let base = try await Self.storedBytes(client) ?? 0
            _ = try await client.send(Files.UploadBegin.self, .init(name: "a", size: Int64(600 - base)))
            let refused = await #expect(throws: RPCError.self) { try await client.send(Files.UploadBegin.self, .init(name: "b", size: 401)) }
            #expect(Self.code(refused) == -32007, "\(String(describing: refused))")
            #expect(refused?.message == "Quota exceeded")
            #expect(refused?.dataValue?["limit"]?.intValue == 1000)
            #expect(refused?.dataValue?["actual"]?.intValue == 1001)
            let file = try await Self.upload(client, Data(count: 400))
            #expect(try await Self.storedBytes(client) == 1000)
            let full = await #expect(throws: RPCError.self) { try await Self.upload(client, Data(count: 1)) }
            #expect(Self.code(full) == -32007)
            _ = try await client.send(Files.Delete.self, .init(id: file.id))
            #expect(try await Self.storedBytes(client) == 600)
        }
    }

    @Test(
        "another user: the caller's file and upload ids answer Not found; identical content is two files, each charged; deleting one keeps the other's bytes"
    )
    func anotherUser() async throws {
        try await withInProcessDaemon { daemon in
            let alice = try await daemon.connect()
            let bob = try await daemon.registerAndLogin(username: "bob")
            let data = Data("the same content\n".utf8)
            let mine = try await Self.upload(alice, data, name: "a.txt")
            #expect(mine.mediaType == "text/plain")
            let upload = try await alice.send(Files.UploadBegin.self, .init(name: "u", size: 5))
            let fileID = mine.id
            let uploadID = upload.uploadId
            let calls: [(String, String, @Sendable (InProcessClient) async throws -> Void)] = [
                ("files.get", "file", { _ = try await $0.send(Files.Get.self, .init(id: fileID)) }),
                ("files.read", "file", { _ = try await $0.send(Files.Read.self, .init(id: fileID)) }),
                ("files.delete", "file", { _ = try await $0.send(Files.Delete.self, .init(id: fileID)) }),
                ("files.upload.status", "upload", { _ = try await $0.send(Files.UploadStatus.self, .init(uploadId: uploadID)) }),
                (
                    "files.upload.chunk", "upload",
                    { _ = try await $0.send(Files.UploadChunk.self, .init(uploadId: uploadID, offset: 0, data: "aGVsbG8=")) }
                ),
                ("files.upload.commit", "upload", { _ = try await $0.send(Files.UploadCommit.self, .init(uploadId: uploadID)) }),
            ]
            for (method, kind, call) in calls {
                let error = await #expect(throws: RPCError.self, "\(method)") { try await call(bob) }
                #expect(Self.code(error) == -32030, "\(method): \(String(describing: error))")
                #expect(error?.dataValue?["kind"]?.stringValue == kind, "\(method)")
            }
            #expect(try await bob.send(Files.List.self, .init()).items.isEmpty)
            #expect(try await alice.send(Files.UploadStatus.self, .init(uploadId: uploadID)).offset == 0)

            let bobsBefore = try await Self.storedBytes(bob) ?? 0
            let theirs = try await Self.upload(bob, data, name: "b.txt")
            #expect(theirs.id != mine.id)
            #expect(try await Self.storedBytes(bob) == bobsBefore + data.count)
            _ = try await alice.send(Files.Delete.self, .init(id: mine.id))
            #expect(try await Self.readAll(bob, theirs.id) == data)
        }
    }

    @Test("media types: given, else sniffed (PNG, PDF, gzip, JSON, text, binary); list filters by type and type/*")
    func mediaTypes() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let cases: [(Data, String?, String)] = [
                (Data("%PDF-1.4\n".utf8), nil, "application/pdf"),
                (Data([0x1F, 0x8B, 0x08, 0]), nil, "application/gzip"),
                (Data(#"{"a": [1, 2]}"#.utf8), nil, "application/json"),
                (Data("{not json".utf8), nil, "text/plain"),
                (Data("héllo".utf8), nil, "text/plain"),
                (Data([0xC3, 0x28, 0x00]), nil, "application/octet-stream"),
                (Data("x".utf8), "Text/Markdown", "text/markdown"),
                (Self.png, nil, "image/png"),
                // Empty: begin with size 0, no chunk, commit.
                (Data(), nil, "text/plain"),
            ]
            for (data, given, expected) in cases {
                let file = try await Self.upload(client, data, mediaType: given)
                #expect(file.mediaType == expected, "\(expected)")
            }
            #expect(try await client.send(Files.List.self, .init(mediaType: "image/*")).items.map(\.mediaType) == ["image/png"])
            #expect(try await client.send(Files.List.self, .init(mediaType: "text/plain")).items.count == 3)
            let page = try await client.send(Files.List.self, .init(limit: 5))
            #expect(page.items.count == 5)
            let rest = try await client.send(Files.List.self, .init(cursor: page.nextCursor, limit: 5))
            #expect(rest.items.count == 4 && rest.nextCursor == nil)
        }
    }

    @Test(
        "files.import: the daemon's own uid stores the file at a path; another uid gets -32020 with a reason; relative paths, folders and files past the limit are refused"
    )
    func importFromPath() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("agentd-import-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/notes.md"
        let content = Data("# Notes\nline\n".utf8)
        try content.write(to: URL(fileURLWithPath: path))
        try Data(count: 2000).write(to: URL(fileURLWithPath: folder + "/big.bin"))
        try await withInProcessDaemon(configure: { $0.files.maxFileBytes = 1000 }) { daemon in
            let own = try await daemon.connect()
            let file = try await own.send(Files.Import.self, .init(path: path))
            #expect(file.name == "notes.md")
            #expect(file.mediaType == "text/plain")
            #expect(file.sha256 == Self.sha256(content))
            #expect(try await Self.readAll(own, file.id) == content)
            let named = try await own.send(Files.Import.self, .init(path: path, name: "other.md", mediaType: "text/markdown"))
            #expect(named.name == "other.md" && named.mediaType == "text/markdown")

            for (bad, field) in [("notes.md", "path"), (folder, "path"), (folder + "/missing", "path"), (folder + "/big.bin", "path")] {
                let error = await #expect(throws: RPCError.self, "\(bad)") { try await own.send(Files.Import.self, .init(path: bad)) }
                #expect(error?.code == .invalidParams, "\(bad): \(String(describing: error))")
                #expect(error?.dataValue?["field"]?.stringValue == field, "\(bad)")
            }

            let other = try await daemon.registerAndLogin(username: "eve")
            let refused = await #expect(throws: RPCError.self) { try await other.send(Files.Import.self, .init(path: path)) }
            #expect(Self.code(refused) == -32020, "\(String(describing: refused))")
            #expect(refused?.dataValue?["reason"]?.stringValue?.contains("uid") == true)
            #expect(try await other.send(Files.List.self, .init()).items.isEmpty)
        }
    }

    @Test("an upload expires after files.upload_ttl_seconds: Not found, and the expiry removes its row, reservation and staged bytes")
    func uploadsExpire() async throws {
        try await withInProcessDaemon(configure: { $0.files.uploadTTL = 60 }, runJobs: false) { daemon in
            let client = try await daemon.connect()
            let before = try await Self.storedBytes(client)
            let begun = try await client.send(Files.UploadBegin.self, .init(name: "a", size: 10))
            _ = try await client.send(Files.UploadChunk.self, .init(uploadId: begun.uploadId, offset: 0, data: Data(count: 4).base64EncodedString()))
            #expect(try await daemon.dependencies.files.expireUploads() == 0)
            daemon.clock.advance(by: 61)
            let expired = await #expect(throws: RPCError.self) {
                try await client.send(Files.UploadChunk.self, .init(uploadId: begun.uploadId, offset: 4, data: Data(count: 4).base64EncodedString()))
            }
            #expect(Self.code(expired) == -32030)
            #expect(try daemon.dependencies.blobStore.stagingIDs().count == 1)
            #expect(try await daemon.dependencies.files.expireUploads() == 1)
            #expect(try daemon.dependencies.blobStore.stagingIDs().isEmpty)
            #expect(try await Self.storedBytes(client) == before)
        }
    }
}
