import BlobStoreTesting
import Foundation
import Services
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 20's proofs that need the real binary and its socket: connections closed and opened, a
/// process killed with SIGKILL and started again on the same database and blob folder, another
/// uid's process. The rest of the files methods are tested in process (FilesTests).
///
/// The daemons run with `--max-message-bytes 65536`, so `chunkSize` is 46,080 bytes and a file of a
/// few chunks exercises every path without megabytes of base64 per test.
@Suite("Files over the socket (real binary)", .blockingIO, .timeLimit(.minutes(3)))
struct FilesProcessTests {
    static let maxMessageBytes = 65536
    /// `FilesService.chunkSize(maxMessageBytes:)` of the limit above.
    static let chunkSize = FilesService.chunkSize(maxMessageBytes: maxMessageBytes)

    /// Bytes that are not text (so nothing is sniffed from them but octet-stream) and differ per seed.
    static func content(_ count: Int, seed: UInt8 = 1) -> Data {
        var state = UInt32(seed) &* 2_654_435_761 | 1
        return Data(
            (0..<count).map { _ in
                state ^= state << 13
                state ^= state >> 17
                state ^= state << 5
                return UInt8(truncatingIfNeeded: state)
            })
    }

    static func sha256(_ data: Data) throws -> String {
        try InMemoryBlobStore().write(data, staging: StagingID("hash")!).digest.hex
    }

    /// A folder with its own database (and so its own blob folder, `blobs` beside it).
    final class Place {
        let directory: TemporaryDirectory
        var socket: String { directory.path + "/agentd.sock" }
        var database: String { directory.path + "/agentd.sqlite" }
        var blobs: String { directory.path + "/blobs" }

        init() throws { directory = try TemporaryDirectory() }
        deinit { directory.remove() }

        func start(_ extra: [String] = [], environment: [String: String] = [:]) throws -> DaemonProcess {
            let daemon = try DaemonProcess(
                socketPath: socket, arguments: ["--database", database, "--max-message-bytes", String(FilesProcessTests.maxMessageBytes)] + extra,
                environment: environment)
            try daemon.waitUntilConnectable()
            return daemon
        }

        /// Every regular file under the blob folder, by path relative to it (blobs `ab/cd/<hex>`,
        /// staging areas `staging/<id>`, and anything else a crash could leave).
        func blobFolderFiles() -> [String] {
            guard let walker = FileManager.default.enumerator(atPath: blobs) else { return [] }
            var files: [String] = []
            while let path = walker.nextObject() as? String {
                var status = stat()
                if lstat(blobs + "/" + path, &status) == 0, status.st_mode & S_IFMT != S_IFDIR { files.append(path) }
            }
            return files.sorted()
        }
    }

    /// One call on a connection that keeps its own ids.
    final class Caller {
        let client: RPCTestClient
        private var id = 0

        init(_ client: RPCTestClient) { self.client = client }

        func call(_ method: String, _ params: String = "{}", sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON {
            id += 1
            try client.send(line: #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"#)
            let reply = try client.readJSON(timeout: .seconds(60))
            #expect(reply["id"] == .integer(Int64(id)), "reply: \(reply)", sourceLocation: sourceLocation)
            return reply
        }

        func result(_ method: String, _ params: String = "{}", sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON {
            let reply = try call(method, params, sourceLocation: sourceLocation)
            return try #require(reply["result"], "\(method) \(params.prefix(200)): \(reply)", sourceLocation: sourceLocation)
        }

        func error(_ method: String, _ params: String = "{}", sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON {
            let reply = try call(method, params, sourceLocation: sourceLocation)
            return try #require(reply["error"], "\(method) \(params.prefix(200)) did not fail: \(reply)", sourceLocation: sourceLocation)
        }

        func begin(name: String, size: Int, sha256: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let sha = sha256.map { #","sha256":"\#($0)""# } ?? ""
            let begun = try result("files.upload.begin", #"{"name":"\#(name)","size":\#(size)\#(sha)}"#, sourceLocation: sourceLocation)
            #expect(begun["chunkSize"]?.intValue == FilesProcessTests.chunkSize, "\(begun)", sourceLocation: sourceLocation)
            return try #require(begun["uploadId"]?.stringValue, sourceLocation: sourceLocation)
        }

        static func chunkParams(_ uploadID: String, _ data: Data, at offset: Int) -> String {
            #"{"uploadId":"\#(uploadID)","offset":\#(offset),"data":"\#(data.base64EncodedString())"}"#
        }

        /// Sends `data[from...]` chunk by chunk; each answer must be the new offset.
        func send(_ uploadID: String, _ data: Data, from start: Int = 0, sourceLocation: SourceLocation = #_sourceLocation) throws {
            var offset = start
            while offset < data.count {
                let end = min(offset + FilesProcessTests.chunkSize, data.count)
                let status = try result(
                    "files.upload.chunk", Self.chunkParams(uploadID, data[offset..<end], at: offset), sourceLocation: sourceLocation)
                #expect(status["offset"]?.intValue == end, "\(status)", sourceLocation: sourceLocation)
                offset = end
            }
        }

        /// The whole content of a file, read with `files.read` a piece at a time.
        func read(_ fileID: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Data {
            var data = Data()
            while true {
                let piece = try result("files.read", #"{"id":"\#(fileID)","offset":\#(data.count)}"#, sourceLocation: sourceLocation)
                data += try #require(piece["data"]?.stringValue.flatMap { Data(base64Encoded: $0) }, sourceLocation: sourceLocation)
                if piece["eof"] == .bool(true) { return data }
            }
        }

        func storedBytes(sourceLocation: SourceLocation = #_sourceLocation) throws -> Int? {
            try result("v2.auth.whoami", sourceLocation: sourceLocation)["usage"]?["storedBytes"]?.intValue
        }
    }

    // MARK: Resuming

    @Test(
        "an upload interrupted by closing the connection (mid-chunk) is finished from another: status gives the offset, a wrong offset answers -32070 {expected, actual}"
    )
    func resumeFromAnotherConnection() throws {
        let place = try Place()
        let daemon = try place.start()
        defer { daemon.kill() }
        let data = Self.content(3 * Self.chunkSize + 1000)
        let sha = try Self.sha256(data)

        let first = Caller(try daemon.connect())
        let uploadID = try first.begin(name: "resumed.bin", size: data.count, sha256: sha)
        try first.send(uploadID, data[0..<Self.chunkSize])
        // Half of the second chunk's request, then the connection goes: nothing of it is kept.
        let second = Caller.chunkParams(uploadID, data[Self.chunkSize..<2 * Self.chunkSize], at: Self.chunkSize)
        let line = #"{"jsonrpc":"2.0","id":99,"method":"files.upload.chunk","params":\#(second)}"#
        try first.client.send(raw: String(line.prefix(line.utf8.count / 2)))
        first.client.close()

        let other = Caller(try daemon.connect())
        let status = try other.result("files.upload.status", #"{"uploadId":"\#(uploadID)"}"#)
        #expect(status["offset"]?.intValue == Self.chunkSize, "\(status)")
        #expect(status["size"]?.intValue == data.count)
        #expect(status["expiresAt"]?.stringValue != nil)

        // A chunk again at 0 (a client that did not ask), and one past the offset: refused, nothing written.
        for wrong in [0, 2 * Self.chunkSize] {
            let error = try other.error("files.upload.chunk", Caller.chunkParams(uploadID, data[wrong..<wrong + 10], at: wrong))
            #expect(error["code"]?.intValue == -32070, "\(error)")
            #expect(error["data"]?["expected"]?.intValue == Self.chunkSize, "\(error)")
            #expect(error["data"]?["actual"]?.intValue == wrong, "\(error)")
        }
        // Committing early names where the next chunk starts.
        let early = try other.error("files.upload.commit", #"{"uploadId":"\#(uploadID)"}"#)
        #expect(early["code"]?.intValue == -32602, "\(early)")
        #expect(early["data"]?["reason"]?.stringValue?.contains("offset \(Self.chunkSize)") == true, "\(early)")

        try other.send(uploadID, data, from: Self.chunkSize)
        let file = try other.result("files.upload.commit", #"{"uploadId":"\#(uploadID)"}"#)
        #expect(file["size"]?.intValue == data.count)
        #expect(file["sha256"]?.stringValue == sha)
        #expect(file["name"]?.stringValue == "resumed.bin")
        #expect(file["mediaType"]?.stringValue == "application/octet-stream")
        let fileID = try #require(file["id"]?.stringValue)
        #expect(try other.read(fileID) == data)
        // The upload is gone once committed, and its staging area with it.
        let gone = try other.error("files.upload.status", #"{"uploadId":"\#(uploadID)"}"#)
        #expect(gone["data"]?["kind"]?.stringValue == "upload", "\(gone)")
        #expect(place.blobFolderFiles().filter { $0.hasPrefix("staging/") } == [], "\(place.blobFolderFiles())")
    }

    // MARK: Checksums

    @Test("a SHA-256 mismatch answers -32071 and keeps nothing: no file, the upload gone, no bytes on disk, the quota given back")
    func checksumMismatch() throws {
        let place = try Place()
        let daemon = try place.start()
        defer { daemon.kill() }
        let caller = Caller(try daemon.connect())
        let before = try caller.storedBytes()
        let data = Self.content(2 * Self.chunkSize + 17)
        let wrong = try Self.sha256(Self.content(10))
        let uploadID = try caller.begin(name: "corrupt.bin", size: data.count, sha256: wrong)
        // The announced size counts while the upload is open.
        #expect(try caller.storedBytes() == (before ?? 0) + data.count)
        try caller.send(uploadID, data)
        let error = try caller.error("files.upload.commit", #"{"uploadId":"\#(uploadID)"}"#)
        #expect(error["code"]?.intValue == -32071, "\(error)")
        #expect(error["data"]?["field"]?.stringValue == "sha256", "\(error)")
        #expect(error["data"]?["expected"]?.stringValue == wrong, "\(error)")
        #expect(error["data"]?["actual"]?.stringValue == (try Self.sha256(data)), "\(error)")

        #expect(try caller.result("files.list")["items"] == .array([]))
        let gone = try caller.error("files.upload.status", #"{"uploadId":"\#(uploadID)"}"#)
        #expect(gone["data"]?["kind"]?.stringValue == "upload", "\(gone)")
        #expect(try caller.storedBytes() == before)
        #expect(place.blobFolderFiles() == [], "left: \(place.blobFolderFiles())")
    }

    // MARK: Crashes

    @Test("kill -9 during a large commit: after restart the file is whole or the upload still commits, never partial; no orphan in the blob folder")
    func killDuringCommit() throws {
        let place = try Place()
        // Large enough that digesting it takes a while: the kill lands before, during or after.
        // Eight different MiB (one random MiB, each copy marked at its start).
        let block = Self.content(1 << 20, seed: 7)
        var data = Data(capacity: 8 << 20)
        for index in 0..<8 {
            var copy = block
            copy[0] = UInt8(index)
            data += copy
        }
        let sha = try Self.sha256(data)
        let uploadID: String
        do {
            // Chunks of 4 MiB: an 8 MiB file in two calls.
            let daemon = try place.start(["--max-message-bytes", String(16 << 20)])
            defer { daemon.kill() }
            let caller = Caller(try daemon.connect())
            let begun = try caller.result("files.upload.begin", #"{"name":"big.bin","size":\#(data.count),"sha256":"\#(sha)"}"#)
            uploadID = try #require(begun["uploadId"]?.stringValue)
            let chunk = try #require(begun["chunkSize"]?.intValue)
            var offset = 0
            while offset < data.count {
                let end = min(offset + chunk, data.count)
                _ = try caller.result("files.upload.chunk", Caller.chunkParams(uploadID, data[offset..<end], at: offset))
                offset = end
            }
            try caller.client.send(line: #"{"jsonrpc":"2.0","id":100,"method":"files.upload.commit","params":{"uploadId":"\#(uploadID)"}}"#)
            // The request is on its way (written to the socket): kill -9 with no grace.
        }

        let daemon = try place.start()
        defer { daemon.kill() }
        let caller = Caller(try daemon.connect())
        let listed = try #require(caller.result("files.list")["items"]?.arrayValue)
        let file: JSON
        if let committed = listed.first {
            // The commit had finished: the file is whole.
            #expect(listed.count == 1)
            file = committed
            let gone = try caller.error("files.upload.status", #"{"uploadId":"\#(uploadID)"}"#)
            #expect(gone["data"]?["kind"]?.stringValue == "upload", "\(gone)")
        } else {
            // It had not: the upload is there with every byte, and commits now.
            let status = try caller.result("files.upload.status", #"{"uploadId":"\#(uploadID)"}"#)
            #expect(status["offset"]?.intValue == data.count, "\(status)")
            #expect(place.blobFolderFiles() == ["staging/" + uploadID], "after the sweep: \(place.blobFolderFiles())")
            file = try caller.result("files.upload.commit", #"{"uploadId":"\#(uploadID)"}"#)
        }
        #expect(file["size"]?.intValue == data.count)
        #expect(file["sha256"]?.stringValue == sha)
        let fileID = try #require(file["id"]?.stringValue)
        #expect(try Self.sha256(caller.read(fileID)) == sha)
        // Exactly the file's blob: no staging area, no temporary, no other blob.
        #expect(place.blobFolderFiles() == ["\(sha.prefix(2))/\(sha.dropFirst(2).prefix(2))/\(sha)"], "\(place.blobFolderFiles())")
        #expect(try caller.storedBytes() == data.count)
    }

    // MARK: Limits

    @Test("quotas: an upload past the storage quota or files.max_file_bytes is refused at begin; open uploads count; a delete gives the bytes back")
    func quotas() throws {
        let place = try Place()
        let daemon = try place.start(["--storage-quota-bytes", "200000"], environment: ["AGENTD_FILES_MAX_FILE_BYTES": "150000"])
        defer { daemon.kill() }
        let caller = Caller(try daemon.connect())

        let tooLarge = try caller.error("files.upload.begin", #"{"name":"big","size":150001}"#)
        #expect(tooLarge["code"]?.intValue == -32602, "\(tooLarge)")
        #expect(tooLarge["data"]?["field"]?.stringValue == "size", "\(tooLarge)")
        #expect(tooLarge["data"]?["reason"]?.stringValue?.contains("files.max_file_bytes") == true, "\(tooLarge)")
        #expect(tooLarge["data"]?["limit"]?.intValue == 150_000, "\(tooLarge)")
        #expect(tooLarge["data"]?["actual"]?.intValue == 150_001, "\(tooLarge)")

        let data = Self.content(120_000)
        let first = try caller.begin(name: "first.bin", size: data.count)
        // The first upload's announced size is reserved: a second as large passes the quota.
        let refused = try caller.error("files.upload.begin", #"{"name":"second.bin","size":120000}"#)
        #expect(refused["code"]?.intValue == -32007, "\(refused)")
        #expect(refused["message"]?.stringValue == "Quota exceeded")
        #expect(refused["data"]?["limit"]?.intValue == 200_000, "\(refused)")
        let usage = try #require(try caller.storedBytes())
        #expect(refused["data"]?["actual"]?.intValue == usage + 120_000, "\(refused)")

        try caller.send(first, data)
        let file = try caller.result("files.upload.commit", #"{"uploadId":"\#(first)"}"#)
        #expect(try caller.storedBytes() == usage)
        let fileID = try #require(file["id"]?.stringValue)
        #expect(try caller.result("files.delete", #"{"id":"\#(fileID)"}"#)["deleted"] == .bool(true))
        #expect(try caller.storedBytes() == usage - data.count)
        _ = try caller.begin(name: "second.bin", size: 120_000)
    }

    // MARK: Other users

    @Test("another user's file and upload ids answer Not found, exactly as a missing id")
    func otherUsersIDs() throws {
        let place = try Place()
        let daemon = try place.start()
        defer { daemon.kill() }
        let owner = Caller(try daemon.connect())
        let data = Self.content(1000)
        let uploadID = try owner.begin(name: "mine.bin", size: data.count)
        try owner.send(uploadID, data)
        let fileID = try #require(owner.result("files.upload.commit", #"{"uploadId":"\#(uploadID)"}"#)["id"]?.stringValue)
        let openUpload = try owner.begin(name: "open.bin", size: 10)

        let mallory = Caller(try daemon.connect())
        _ = try mallory.result("auth.register", #"{"username":"mallory","password":"correct horse"}"#)
        _ = try mallory.result("auth.login", #"{"username":"mallory","password":"correct horse"}"#)
        for (method, kind, id, missing) in [
            ("files.get", "file", fileID, "fil_missing"), ("files.read", "file", fileID, "fil_missing"),
            ("files.delete", "file", fileID, "fil_missing"), ("files.upload.status", "upload", openUpload, "upl_missing"),
            ("files.upload.commit", "upload", openUpload, "upl_missing"),
        ] {
            let key = kind == "file" ? "id" : "uploadId"
            let theirs = try mallory.error(method, #"{"\#(key)":"\#(id)"}"#)
            let none = try mallory.error(method, #"{"\#(key)":"\#(missing)"}"#)
            #expect(theirs["code"]?.intValue == -32030 && theirs["message"]?.stringValue == "Not found", "\(method): \(theirs)")
            #expect(theirs["code"] == none["code"] && theirs["message"] == none["message"], "\(method): \(theirs) vs \(none)")
            #expect(theirs["data"]?["kind"]?.stringValue == kind, "\(method): \(theirs)")
            #expect(theirs["data"]?["id"]?.stringValue == id, "\(method): \(theirs)")
        }
        let chunk = try mallory.error("files.upload.chunk", Caller.chunkParams(openUpload, Data(count: 10), at: 0))
        #expect(chunk["data"]?["kind"]?.stringValue == "upload", "\(chunk)")
        #expect(try mallory.result("files.list")["items"] == .array([]))
        // Still the owner's, untouched.
        #expect(try owner.read(fileID) == data)
        #expect(try owner.result("files.upload.status", #"{"uploadId":"\#(openUpload)"}"#)["offset"]?.intValue == 0)
    }

    // MARK: Import

    /// Runs `requests` one after another on one connection made by `uid`'s process (setpriv), and
    /// answers each reply line.
    static func callAs(uid: UInt32, socket: String, _ requests: [String]) throws -> [JSON] {
        let script = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX)
            s.connect(sys.argv[1])
            f = s.makefile("rwb")
            for line in sys.argv[2:]:
                f.write(line.encode() + b"\\n")
                f.flush()
                sys.stdout.write(f.readline().decode())
            """
        let run = try runCommand(
            "/usr/bin/setpriv", ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "/usr/bin/env", "python3", "-c", script, socket] + requests,
            timeout: .seconds(60))
        #expect(run.termination == .exited(0), "\(run.stderr)")
        return try run.stdout.split(separator: "\n").map { try JSON(parsing: String($0)) }
    }

    @Test(
        "files.import: refused with Unauthorized and a reason for a signed-in user of another uid; the daemon's own uid imports the same path",
        .enabled(if: getuid() == 0, "plays another uid with setpriv: needs root"))
    func importByUID() throws {
        let place = try Place()
        chmod(place.directory.path, 0o711)  // the stranger reaches the socket, nothing else
        let daemon = try place.start(["--socket-mode", "0666"])
        defer { daemon.kill() }
        let path = place.directory.path + "/notes.txt"
        let data = Data(String(repeating: "a line of notes\n", count: 5000).utf8)
        try data.write(to: URL(fileURLWithPath: path))
        chmod(path, 0o644)

        let stranger = HostileClientTests.stranger
        let replies = try Self.callAs(
            uid: stranger, socket: place.socket,
            [
                #"{"jsonrpc":"2.0","id":1,"method":"auth.register","params":{"username":"stranger","password":"correct horse"}}"#,
                #"{"jsonrpc":"2.0","id":2,"method":"auth.login","params":{"username":"stranger","password":"correct horse"}}"#,
                #"{"jsonrpc":"2.0","id":3,"method":"files.import","params":{"path":"\#(path)"}}"#,
                #"{"jsonrpc":"2.0","id":4,"method":"files.list","params":{}}"#,
            ])
        try #require(replies.count == 4, "\(replies)")
        #expect(replies[1]["result"]?["token"] != nil, "signed in: \(replies[1])")
        let refusal = try #require(replies[2]["error"], "\(replies[2])")
        #expect(refusal["message"]?.stringValue == "Unauthorized", "\(refusal)")
        #expect(refusal["data"]?["reason"]?.stringValue?.contains("uid") == true, "\(refusal)")
        #expect(replies[3]["result"]?["items"] == .array([]), "\(replies[3])")

        let own = Caller(try daemon.connect())
        let file = try own.result("files.import", #"{"path":"\#(path)"}"#)
        #expect(file["name"]?.stringValue == "notes.txt")
        #expect(file["size"]?.intValue == data.count)
        #expect(file["sha256"]?.stringValue == (try Self.sha256(data)))
        #expect(file["mediaType"]?.stringValue == "text/plain", "\(file)")
        #expect(try own.read(try #require(file["id"]?.stringValue)) == data)
        // The import's staging area is gone: only the blob.
        #expect(place.blobFolderFiles().count == 1, "\(place.blobFolderFiles())")
    }
}
