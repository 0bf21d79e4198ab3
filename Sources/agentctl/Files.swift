import ArgumentParser
import Crypto
import Foundation
import RPC

#if canImport(Glibc)
import Glibc
#endif

struct Files: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Upload, list, show, read and delete your files.",
        discussion: """
            Examples:
              agentctl files upload report.pdf
              agentctl files upload big.log --no-import --media-type text/plain
              agentctl files upload big.log --resume upl_…     # finish an interrupted upload
              agentctl files list --media-type 'image/*'
              agentctl files show fil_…
              agentctl files read fil_… > copy.pdf
              agentctl files delete fil_…
            """,
        subcommands: [Upload.self, List.self, Show.self, Read.self, Delete.self])

    static let kind = ResourceKind(
        plural: "files",
        columns: [
            ("ID", { $0["id"]?.string ?? "" }), ("NAME", { $0["name"]?.string ?? "" }),
            ("TYPE", { $0["mediaType"]?.string ?? "" }), ("SIZE", { $0["size"]?.integer.map(ByteCount.text) ?? "" }),
            ("CREATED", { $0["createdAt"]?.string ?? "" }),
        ])

    struct Upload: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a file with agentd and print it (id, name, type, size).",
            discussion: """
                When agentd runs as you (it can read what you can), the file is imported: agentd reads \
                it itself (files.import), which is fastest. Otherwise, or with --no-import, or when the \
                import is refused (another user's daemon, a path agentd does not see), it is sent over \
                the socket in chunks (files.upload.*), with a progress bar on stderr when that is a \
                terminal. A dropped connection is reconnected and the upload continues where agentd \
                says it stands; if agentctl itself stops, `--resume UPLOAD_ID` finishes it within the \
                hour (the id is printed on a terminal when the upload starts, and in the message when \
                agentctl gives up).
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: ArgumentHelp("The file.", valueName: "path")) var path: String
        @Option(help: "Its name (default: the path's last component).") var name: String?
        @Option(help: "Its media type (default: sniffed by agentd from its first bytes).") var mediaType: String?
        @Flag(
            inversion: .prefixedNo,
            help: "Let agentd read the file itself (files.import); default: when agentd runs as you, falling back to an upload.")
        var `import`: Bool?
        @Option(help: ArgumentHelp("Finish this upload (files.upload.status says where it stands).", valueName: "upload-id"))
        var resume: String?

        func validate() throws {
            if resume != nil, `import` == true { throw ValidationError("--resume continues an upload; it cannot be an import") }
        }

        func run() throws {
            let session = try Session(global)
            let uploader = FileUploader(session: session, progress: Terminal.stderrIsTerminal)
            let file = try uploader.store(
                path: path, name: name, mediaType: mediaType, mode: resume != nil ? .upload : FileUploader.Mode(`import`), resume: resume)
            Files.printFile(file, global)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your files as a table (newest first).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var list: ListOptions
        @Option(help: "Only files of this media type, or of a top-level type as image/*.") var mediaType: String?
        func run() throws {
            try Files.kind.list(global, limit: list.limit, filters: mediaType.map { [("mediaType", .string($0))] } ?? [])
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one file's metadata.", aliases: ["get"])
        @OptionGroup var global: GlobalOptions
        @OptionGroup var id: IDArgument
        func run() throws { try Files.kind.show(global, id: id.id) }
    }

    struct Read: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a file's bytes to stdout (or to --output), read 4 MiB at a time.",
            discussion: "Refuses to write bytes that are not text to a terminal; redirect them, or give --output.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var id: IDArgument
        @Option(name: .shortAndLong, help: ArgumentHelp("Write to this file instead (replaced).", valueName: "path")) var output: String?
        func run() throws {
            let session = try Session(global)
            let metadata = try session.call("files.get", .object([("id", .string(id.id))]))
            if output == nil, Terminal.stdoutIsTerminal, !(metadata["mediaType"]?.string.map(Self.isText) ?? false) {
                throw CLIFailure.usage("\(id.id) is \(metadata["mediaType"]?.string ?? "binary"); redirect stdout or give --output")
            }
            let fd = output.map { open($0, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) } ?? STDOUT_FILENO
            guard fd >= 0 else { throw CLIFailure.usage("cannot write \(output ?? ""): \(String(cString: strerror(errno)))") }
            defer { if output != nil { close(fd) } }
            var offset: Int64 = 0
            while true {
                let params = JSONTree.object([("id", .string(id.id)), ("offset", .number(String(offset)))])
                let fragment = try session.callRaw("files.read", params: JSONFragment(unchecked: params.compact))
                let chunk: ReadChunk
                do {
                    chunk = try fragment.decode(ReadChunk.self)
                } catch {
                    throw CLIFailure("files.read answered something unexpected: \(error)", status: .otherRPCError)
                }
                guard let bytes = Data(base64Encoded: chunk.data) else {
                    throw CLIFailure("files.read answered data that is not base64", status: .otherRPCError)
                }
                try LocalFile.writeAll(fd, bytes, to: output ?? "stdout")
                offset += Int64(bytes.count)
                if chunk.eof { return }
                if bytes.isEmpty { throw CLIFailure("files.read answered no bytes before the end at offset \(offset)", status: .otherRPCError) }
            }
        }

        static func isText(_ mediaType: String) -> Bool {
            mediaType.hasPrefix("text/") || mediaType == "application/json"
        }

        struct ReadChunk: Decodable {
            var data: String
            var eof: Bool
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete files (messages and modules they were attached to stay).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var ids: IDsArgument
        func run() throws { try Files.kind.delete(global, ids: ids.ids) }
    }

    /// A stored file: `fil_…  name  type  size` for a person, its JSON otherwise.
    static func printFile(_ file: JSONTree, _ global: GlobalOptions) {
        guard global.pretty else {
            global.printJSON(file)
            return
        }
        let size = file["size"]?.integer.map(ByteCount.text) ?? "?"
        Terminal.out("\(file["id"]?.string ?? "?")  \(file["name"]?.string ?? "?")  \(file["mediaType"]?.string ?? "?")  \(size)\n")
    }
}

/// Stores a local file with agentd: `files.import` when agentd can read it itself, else an upload
/// over the socket (`files.upload.begin`, chunks, `files.upload.commit`) that survives a dropped
/// connection.
struct FileUploader {
    enum Mode {
        /// Import when agentd runs as this user; an upload when it does not or refuses.
        case automatic
        case importOnly
        case upload

        init(_ flag: Bool?) {
            switch flag {
            case nil: self = .automatic
            case true?: self = .importOnly
            case false?: self = .upload
            }
        }
    }

    let session: Session
    /// Whether to draw a progress bar on stderr.
    let progress: Bool
    /// How often a lost connection is reconnected during one upload before giving up.
    var reconnectAttempts = 6

    init(session: Session, progress: Bool) {
        self.session = session
        self.progress = progress
    }

    /// Stores the file at `path`; returns its metadata as agentd answered it.
    func store(path: String, name: String?, mediaType: String?, mode: Mode, resume: String? = nil) throws -> JSONTree {
        let file = try LocalFile(path: path)
        defer { file.close() }
        let name = name ?? file.name
        if mode == .importOnly || (mode == .automatic && session.servedBySameUser) {
            do {
                return try importFile(file, name: name, mediaType: mediaType)
            } catch let failure as CLIFailure where mode == .automatic && Self.importMayFallBack(failure) {
                // Method not found is an older daemon: nothing worth saying.
                if failure.rpcError?.code != .methodNotFound {
                    Terminal.err("agentctl: files.import refused (\(failure.description)); uploading over the socket instead\n")
                }
            }
        }
        return try upload(file, name: name, mediaType: mediaType, resume: resume)
    }

    /// Refusals that an upload may not meet: another uid's daemon (-32020), an older daemon
    /// (-32601), a path the daemon does not see, e.g. under a private /tmp (-32030, -32602). Quota
    /// and size refusals would meet the upload too, but it reports them itself.
    static func importMayFallBack(_ failure: CLIFailure) -> Bool {
        guard let code = failure.rpcError?.code.rawValue else { return false }
        return [-32020, -32601, -32030, -32602].contains(code)
    }

    private func importFile(_ file: LocalFile, name: String, mediaType: String?) throws -> JSONTree {
        var params: [(String, JSONTree)] = [("path", .string(file.absolutePath)), ("name", .string(name))]
        if let mediaType { params.append(("mediaType", .string(mediaType))) }
        return try session.call("files.import", .object(params))
    }

    private func upload(_ file: LocalFile, name: String, mediaType: String?, resume: String?) throws -> JSONTree {
        let uploadID: String
        let chunkSize: Int
        var offset: Int64
        if let resume {
            uploadID = resume
            let status = try session.call("files.upload.status", .object([("uploadId", .string(resume))]))
            guard let size = status["size"]?.integer, let at = status["offset"]?.integer else {
                throw CLIFailure("files.upload.status answered no offset or size: \(status.compact)", status: .otherRPCError)
            }
            guard Int64(size) == file.size else {
                throw CLIFailure.usage("upload \(resume) is of \(size) bytes; \(file.path) has \(file.size)")
            }
            offset = Int64(at)
            chunkSize = Self.resumedChunkSize
        } else {
            var params: [(String, JSONTree)] = [
                ("name", .string(name)), ("size", .number(String(file.size))), ("sha256", .string(try file.sha256())),
            ]
            if let mediaType { params.append(("mediaType", .string(mediaType))) }
            let begun = try session.call("files.upload.begin", .object(params))
            guard let id = begun["uploadId"]?.string, let size = begun["chunkSize"]?.integer, size > 0 else {
                throw CLIFailure("files.upload.begin answered no uploadId or chunkSize: \(begun.compact)", status: .otherRPCError)
            }
            uploadID = id
            chunkSize = size
            offset = 0
        }
        if progress, resume == nil {
            // A person may press Ctrl-C: the id is what finishes the upload later.
            Terminal.err("upload \(uploadID) (if it stops: agentctl files upload \(file.path) --resume \(uploadID))\n")
        }
        var bar = progress ? ProgressBar(name: name, total: file.size, start: offset) : nil
        defer { bar?.finish() }
        func prepare(_ at: Int64) throws -> Chunk {
            let bytes = try file.read(at: at, count: Int(min(Int64(chunkSize), file.size - at)))
            return Chunk(uploadID: uploadID, offset: at, bytes: bytes)
        }
        do {
            var prepared: Chunk?
            while offset < file.size {
                let chunk = try prepared.flatMap { $0.offset == offset ? $0 : nil } ?? prepare(offset)
                prepared = nil
                do {
                    // The next chunk is read and encoded while agentd stores this one.
                    offset = try send(chunk) { if chunk.end < file.size { prepared = try? prepare(chunk.end) } }
                } catch let failure as CLIFailure where failure.status == .cannotConnect {
                    offset = try reconnectAndAskOffset(uploadID: uploadID, after: failure)
                } catch let failure as CLIFailure where failure.rpcError?.code.rawValue == -32070 {
                    // Offset mismatch: a chunk arrived whose answer was lost; go on from where agentd is.
                    guard let expected = failure.rpcError?.data.flatMap({ try? JSONTree(parsing: $0.text) })?["expected"]?.integer,
                        Int64(expected) != offset
                    else { throw failure }
                    offset = Int64(expected)
                }
                bar?.update(offset)
            }
            return try commit(uploadID: uploadID)
        } catch let failure as CLIFailure where failure.status == .cannotConnect || failure.status == .rateLimited {
            throw CLIFailure(
                "\(failure.description); the upload stopped at byte \(offset) of \(file.size): finish it within the hour with "
                    + "`agentctl files upload \(file.path) --resume \(uploadID)`", status: failure.status)
        }
    }

    /// Commits; after a lost connection, reconnects and commits again: the first commit either
    /// happened (the upload is gone: -32030) or did not (this one does it).
    private func commit(uploadID: String) throws -> JSONTree {
        let params = JSONTree.object([("uploadId", .string(uploadID))])
        do {
            return try session.call("files.upload.commit", params)
        } catch let failure as CLIFailure where failure.status == .cannotConnect {
            do {
                _ = try reconnectAndAskOffset(uploadID: uploadID, after: failure)
                return try session.call("files.upload.commit", params)
            } catch let gone as CLIFailure where gone.status == .notFound {
                throw CLIFailure(
                    "the connection was lost during files.upload.commit and upload \(uploadID) is gone: it was committed "
                        + "(`agentctl files list` shows the file) or it expired", status: .notFound)
            }
        }
    }

    /// The chunk size a resumed upload uses: begin's answer is not repeated by status, and 1 MiB
    /// fits under any chunkSize agentd announces (4 MiB).
    static let resumedChunkSize = 1 << 20

    /// One `files.upload.chunk` call's params, ready to send.
    struct Chunk {
        let offset: Int64
        /// Where the next chunk starts.
        let end: Int64
        let params: JSONFragment

        init(uploadID: String, offset: Int64, bytes: Data) {
            self.offset = offset
            end = offset + Int64(bytes.count)
            // Written by hand: base64 needs no escaping, and a 5 MiB string is not worth a JSON tree.
            params = JSONFragment(
                unchecked: #"{"uploadId":\#(JSONTree.string(uploadID).compact),"offset":\#(offset),"data":"\#(bytes.base64EncodedString())"}"#)
        }
    }

    /// Sends one chunk, runs `meanwhile` while agentd works on it, and returns the offset agentd
    /// answers (where the next chunk starts). A -32017 (rate limited) waits as told and sends it again.
    private func send(_ chunk: Chunk, meanwhile: () -> Void) throws -> Int64 {
        var waits = 0
        var ranMeanwhile = false
        while true {
            do {
                let id = try session.sendRaw("files.upload.chunk", params: chunk.params)
                if !ranMeanwhile {
                    ranMeanwhile = true
                    meanwhile()
                }
                let answer = try JSONTree(parsing: session.replyRaw(to: id).text)
                guard let next = answer["offset"]?.integer else {
                    throw CLIFailure("files.upload.chunk answered no offset: \(answer.compact)", status: .otherRPCError)
                }
                return Int64(next)
            } catch let failure as CLIFailure where failure.rpcError?.code.rawValue == -32017 && waits < 20 {
                waits += 1
                let data = failure.rpcError?.data.flatMap { try? JSONTree(parsing: $0.text) }
                Self.pause(milliseconds: min(5000, max(10, data?["retryAfterMs"]?.integer ?? 250)))
            }
        }
    }

    /// After a lost connection: reconnects (with backoff, 0.2 s doubling to 3 s) and asks where
    /// the upload stands; the chunk in flight may or may not have arrived.
    private func reconnectAndAskOffset(uploadID: String, after failure: CLIFailure) throws -> Int64 {
        var lastFailure = failure
        var pauseMs = 200
        for _ in 0..<reconnectAttempts {
            Self.pause(milliseconds: pauseMs)
            pauseMs = min(pauseMs * 2, 3000)
            do {
                try session.reconnect()
                let status = try session.call("files.upload.status", .object([("uploadId", .string(uploadID))]))
                guard let offset = status["offset"]?.integer else {
                    throw CLIFailure("files.upload.status answered no offset: \(status.compact)", status: .otherRPCError)
                }
                return Int64(offset)
            } catch let again as CLIFailure where again.status == .cannotConnect {
                lastFailure = again
            }
        }
        throw lastFailure
    }

    static func pause(milliseconds: Int) {
        var time = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        var left = timespec()
        while nanosleep(&time, &left) != 0, errno == EINTR { time = left }
    }
}

/// A local file opened once: the same file is hashed, read and named (an import sends its path).
struct LocalFile {
    let path: String
    let absolutePath: String
    let size: Int64
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { throw CLIFailure.usage("cannot open \(path): \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            Glibc.close(fd)
            throw CLIFailure.usage("\(path) is not a regular file")
        }
        self.fd = fd
        size = Int64(info.st_size)
        guard let resolved = realpath(path, nil) else {
            Glibc.close(fd)
            throw CLIFailure.usage("cannot resolve \(path): \(String(cString: strerror(errno)))")
        }
        absolutePath = String(cString: resolved)
        free(resolved)
    }

    /// The path's last component as given (a symlink's own name, not its target's).
    var name: String { String(path.split(separator: "/").last ?? Substring(absolutePath)) }

    func close() { Glibc.close(fd) }

    func read(at offset: Int64, count: Int) throws -> Data {
        var data = Data(count: count)
        var done = 0
        try data.withUnsafeMutableBytes { buffer in
            while done < count {
                let got = pread(fd, buffer.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if got < 0, errno == EINTR { continue }
                guard got >= 0 else { throw CLIFailure("cannot read \(path): \(String(cString: strerror(errno)))", status: .usage) }
                guard got > 0 else { throw CLIFailure("\(path) shrank while it was read (at byte \(offset + Int64(done)))", status: .usage) }
                done += got
            }
        }
        return data
    }

    /// The lowercase hex SHA-256 of the content, read 1 MiB at a time.
    func sha256() throws -> String {
        var hasher = SHA256()
        var offset: Int64 = 0
        while offset < size {
            let piece = try read(at: offset, count: Int(min(1 << 20, size - offset)))
            hasher.update(data: piece)
            offset += Int64(piece.count)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    static func writeAll(_ fd: Int32, _ data: Data, to name: String) throws {
        try data.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let written = write(fd, buffer.baseAddress! + done, buffer.count - done)
                if written < 0, errno == EINTR { continue }
                guard written > 0 else { throw CLIFailure("cannot write \(name): \(String(cString: strerror(errno)))", status: .usage) }
                done += written
            }
        }
    }
}

/// `1.5 MiB`, `512 B`.
enum ByteCount {
    static func text(_ bytes: Int) -> String { text(Int64(bytes)) }

    static func text(_ bytes: Int64) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        let units = ["KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes) / 1024
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return String(format: "%.1f", value) + " " + units[unit]
    }
}

/// One line on stderr redrawn in place (`\r`), at most ten times a second: name, bar, percent,
/// bytes and rate. Only on a terminal: piped, agentctl prints no progress.
struct ProgressBar {
    let name: String
    let total: Int64
    private let start: Int64
    private let started = ContinuousClock.now
    private var lastDrawn: ContinuousClock.Instant?
    private var current: Int64

    init(name: String, total: Int64, start: Int64) {
        self.name = name
        self.total = total
        self.start = start
        current = start
        draw(force: true)
    }

    mutating func update(_ bytes: Int64) {
        current = bytes
        draw(force: bytes >= total)
    }

    /// Ends the line (the bar stays as it was last drawn).
    mutating func finish() {
        draw(force: true)
        Terminal.err("\n")
    }

    private mutating func draw(force: Bool) {
        let now = ContinuousClock.now
        if !force, let lastDrawn, now - lastDrawn < .milliseconds(100) { return }
        lastDrawn = now
        let fraction = total > 0 ? Double(current) / Double(total) : 1
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let elapsed = now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let rate = seconds > 0.05 ? "  \(ByteCount.text(Int64(Double(current - start) / seconds)))/s" : ""
        let shown = name.count > 30 ? String(name.prefix(29)) + "…" : name
        Terminal.err(
            "\r\(shown)  [\(bar)] \(String(format: "%3d", Int(fraction * 100)))%  \(ByteCount.text(current)) / \(ByteCount.text(total))\(rate)\u{1B}[K"
        )
    }
}
