import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `agentctl files …` and `agentctl chat --attach`: the recovery paths against `FakeAgentServer`
/// (a dropped connection, a refused import: what a real daemon does not do on demand), the rest
/// against the real daemon.
extension AgentctlTests {
    static let foxText = "The quick brown fox jumps over the lazy dog, twice."
    /// `printf '%s' "$foxText" | sha256sum`
    static let foxSHA256 = "2c70543bdfc9d190d3f1a623dac0360f35a79ccbe31621a81795cccd9a5a59f5"

    @Test(
        "files upload: a refused import falls back to chunks; after the connection drops mid-upload it reconnects, asks where the upload stands and finishes; a rate-limited chunk is sent again; no progress when not a terminal (fake server)"
    )
    func uploadRecovers() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = try FakeAgentServer(path: directory.path + "/fake.sock")
        server.dropAfterChunk = 3
        server.rateLimitOffset = 40
        let ctl = Agentctl(socketPath: server.path, configHome: directory.path + "/config")
        let path = directory.path + "/fox.txt"
        try Self.foxText.write(toFile: path, atomically: true, encoding: .utf8)

        let upload = try ctl.run(["files", "upload", path])
        #expect(upload.status == 0, "\(upload)")
        #expect(try JSON(parsing: upload.stdout)["id"] == .string("fil_fake"), "\(upload)")
        #expect(String(decoding: server.uploaded, as: UTF8.self) == Self.foxText, "every byte once, in order")
        #expect(
            upload.stderr
                == "agentctl: files.import refused (error -32020: Unauthorized {\"reason\":\"files.import is only for the daemon's own uid\"}); uploading over the socket instead\n",
            "\(upload)")

        let calls = server.received.filter { $0["method"]?.stringValue?.hasPrefix("files.") ?? false }
        let imported = try #require(calls.first)
        #expect(imported["method"] == .string("files.import") && imported["params"]?["path"] == .string(path), "absolute: \(imported)")
        let begin = try #require(calls.first { $0["method"] == .string("files.upload.begin") })
        #expect(
            begin["params"] == .object(["name": .string("fox.txt"), "size": .integer(51), "sha256": .string(Self.foxSHA256)]), "\(begin)")
        // 8-byte chunks; the third (16…23) was stored but its answer lost: status says 24. The one
        // at 40 is refused -32017 once, then sent again after retryAfterMs.
        let sequence = calls.dropFirst(2).map { call -> String in
            let method = call["method"]?.stringValue ?? "?"
            return method == "files.upload.chunk" ? "chunk \(call["params"]?["offset"]?.intValue ?? -1)" : method
        }
        #expect(
            sequence == [
                "chunk 0", "chunk 8", "chunk 16", "files.upload.status", "chunk 24", "chunk 32", "chunk 40", "chunk 40", "chunk 48",
                "files.upload.commit",
            ], "\(sequence)")
        let hellos = server.received.filter { $0["method"] == .string("session.hello") }
        #expect(hellos.count == 2, "one reconnection")
    }

    @Test("files upload on a terminal draws a progress bar on stderr (name, bar, percent, bytes) and prints the file as a line (fake server)")
    func uploadProgressOnTerminal() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = try FakeAgentServer(path: directory.path + "/fake.sock")
        let ctl = Agentctl(socketPath: server.path, configHome: directory.path + "/config")
        let path = directory.path + "/fox.txt"
        try Self.foxText.write(toFile: path, atomically: true, encoding: .utf8)
        let upload = try ctl.startOnTerminal(["files", "upload", "--no-import", path], in: directory.path)
        #expect(try upload.waitForExit() == .exited(0), "\(upload.stdout)")
        let shown = upload.stdout
        #expect(shown.contains("upload upl_fake (if it stops: agentctl files upload \(path) --resume upl_fake)\r\n"), "\(shown.debugDescription)")
        #expect(shown.contains("\rfox.txt  [------------------------]   0%  0 B / 51 B"), "\(shown.debugDescription)")
        #expect(shown.contains("\rfox.txt  [########################] 100%  51 B / 51 B"), "\(shown.debugDescription)")
        #expect(shown.hasSuffix("fil_fake  fake  text/plain  51 B\r\n"), "\(shown.debugDescription)")
        #expect(!server.received.contains { $0["method"] == .string("files.import") }, "--no-import")
    }

    @Test("chat --attach uploads the file and sends its id with the first message only; /attach adds one to the next (fake server)")
    func chatAttachSendsAttachments() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = try FakeAgentServer(path: directory.path + "/fake.sock")
        let ctl = Agentctl(socketPath: server.path, configHome: directory.path + "/config")
        let path = directory.path + "/fox.txt"
        try Self.foxText.write(toFile: path, atomically: true, encoding: .utf8)
        let chat = try ctl.startOnTerminal(["chat", "--no-color", "--attach", path], in: directory.path)
        try chat.waitForOutput(containing: "(attached fake, text/plain, 51 B: fil_fake; sent with your next message)")
        try chat.waitForOutput(containing: "> ")
        var mark = chat.stdout.count
        try chat.type("what is in it?\n")
        try chat.waitForOutput(containing: "Hello\r\n> ", after: mark)
        mark = chat.stdout.count
        try chat.type("and now?\n")
        try chat.waitForOutput(containing: "Hello\r\n> ", after: mark)
        mark = chat.stdout.count
        try chat.type("/attach \(path)\n")
        try chat.waitForOutput(containing: "sent with your next message)", after: mark)
        mark = chat.stdout.count
        try chat.type("/attach \(directory.path)/missing.txt\n")
        try chat.waitForOutput(containing: "cannot open \(directory.path)/missing.txt", after: mark)
        try chat.type("third\n")
        try chat.waitForOutput(containing: "Hello\r\n> ", after: mark)
        try chat.type("\u{04}")
        #expect(try chat.waitForExit() == .exited(0))

        let acts = server.received.filter { $0["method"] == .string("agent.act") }
        #expect(acts.map { $0["params"]?["message"]?.stringValue } == ["what is in it?", "and now?", "third"], "\(acts)")
        #expect(acts.map { $0["params"]?["attachments"] } == [.array([.string("fil_fake")]), nil, .array([.string("fil_fake")])], "\(acts)")
    }

    // MARK: Against the real daemon

    @Test(
        "files upload (imported, and over the socket with --no-import) then list shows both; read gives the same bytes back; show, delete; nothing on stderr when piped"
    )
    func uploadListReadDelete() throws {
        try Self.withAgentctl { _, ctl, folder in
            // Not text, bigger than one 1 MiB read and than a 4 MiB chunk: several chunks and reads.
            let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
            let bytes = random.readData(ofLength: (5 << 20) + 123)
            try random.close()
            #expect(bytes.count == (5 << 20) + 123)
            let binary = folder + "/blob.bin"
            try bytes.write(to: URL(fileURLWithPath: binary))
            let text = folder + "/notes.txt"
            try Self.foxText.write(toFile: text, atomically: true, encoding: .utf8)

            let uploaded = try ctl.run(["files", "upload", "--no-import", binary, "--name", "data.bin"])
            #expect(uploaded.status == 0 && uploaded.stderr.isEmpty, "\(uploaded)")
            let file = try JSON(parsing: uploaded.stdout)
            let binaryID = try #require(file["id"]?.stringValue, "\(uploaded)")
            #expect(file["name"] == .string("data.bin") && file["size"]?.intValue == bytes.count, "\(file)")

            let imported = try ctl.run(["files", "upload", text, "--media-type", "text/plain"])
            #expect(imported.status == 0 && imported.stderr.isEmpty, "imported, no fallback: \(imported)")
            let textFile = try JSON(parsing: imported.stdout)
            let textID = try #require(textFile["id"]?.stringValue, "\(imported)")
            #expect(textFile["sha256"] == .string(Self.foxSHA256) && textFile["name"] == .string("notes.txt"), "\(textFile)")

            let table = try ctl.run(["files", "list"])
            let lines = table.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 3 && lines[0].hasPrefix("ID ") && lines[0].contains("TYPE") && lines[0].contains("SIZE"), "\(table)")
            #expect(lines[1].contains(textID) && lines[1].contains("notes.txt") && lines[1].contains("51 B"), "newest first: \(lines)")
            #expect(lines[2].contains(binaryID) && lines[2].contains("5.0 MiB"), "\(lines)")
            let onlyText = try JSON(parsing: ctl.run(["files", "list", "--media-type", "text/*", "--json"]).stdout)
            #expect(onlyText.arrayValue?.compactMap { $0["id"]?.stringValue } == [textID], "\(onlyText)")
            #expect(try JSON(parsing: ctl.run(["files", "list", "--limit", "1", "--json"]).stdout).arrayValue?.count == 1)

            let copy = folder + "/copy.bin"
            let read = try ctl.run(["files", "read", binaryID, "--output", copy])
            #expect(read.status == 0, "\(read)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == bytes, "the bytes read back are the bytes uploaded")
            let piped = try ctl.run(["files", "read", textID])
            #expect(piped.stdout == Self.foxText, "\(piped)")
            // Binary bytes are not written to a terminal.
            let onTerminal = try ctl.startOnTerminal(["files", "read", binaryID], in: folder)
            #expect(try onTerminal.waitForExit() == .exited(1))
            #expect(onTerminal.stdout.contains("; redirect stdout or give --output"), "\(onTerminal.stdout)")

            #expect(try JSON(parsing: ctl.run(["files", "show", textID]).stdout)["mediaType"] == .string("text/plain"))
            #expect(try JSON(parsing: ctl.run(["files", "get", binaryID]).stdout)["size"]?.intValue == bytes.count)
            let deleted = try ctl.run(["files", "delete", textID])
            #expect(try deleted.status == 0 && JSON(parsing: deleted.stdout)["deleted"] == .bool(true), "\(deleted)")
            let gone = try ctl.run(["files", "show", textID])
            #expect(gone.status == 4, "\(gone)")
            let missing = try ctl.run(["files", "upload", folder + "/nothing-here"])
            #expect(missing.status == 1 && missing.stderr.contains("cannot open"), "\(missing)")
        }
    }

    @Test(
        "chat --attach against the real daemon and the fake provider: the question is stored with the file's metadata as its attachment, and the file's text reaches the provider"
    )
    func chatAttachStoresAttachment() async throws {
        try await withFakeProvider { fake in
            try Self.withAgentctl(environment: fake.openAIEnvironment()) { daemon, ctl, folder in
                let path = folder + "/notes.txt"
                try Self.foxText.write(toFile: path, atomically: true, encoding: .utf8)
                let chat = try ctl.startOnTerminal(["chat", "--no-color", "--attach", path], in: folder)
                try chat.waitForOutput(containing: "(attached notes.txt, text/plain, 51 B: fil_")
                try chat.waitForOutput(containing: "> ")
                let mark = chat.stdout.count
                try chat.type("summarise it\n")
                try chat.waitForOutput(timeout: .seconds(30), "the answer and the prompt") {
                    let tail = String($0.dropFirst(mark))
                    return tail.contains("Echo: ") && tail.hasSuffix("> ")
                }
                try chat.type("\u{04}")
                #expect(try chat.waitForExit() == .exited(0), "\(chat.stdout)")

                let file = try #require(try JSON(parsing: ctl.run(["files", "list", "--json"]).stdout).arrayValue?.first)
                let client = ClientConnection(try daemon.connect())
                let chatID = try #require(try client.result("chats.list")["items"]?[0]?["id"]?.stringValue)
                let messages = try #require(try client.result("chats.messages.list", #"{"chatId":"\#(chatID)"}"#)["items"]?.arrayValue)
                let question = try #require(messages.first, "\(messages)")
                #expect(question["content"] == .string("summarise it") && question["attachments"] == .array([file]), "\(question)")
                #expect(messages.dropFirst().allSatisfy { $0["attachments"] == nil }, "\(messages)")
                // The agent read it: the text file went to the provider with the question.
                let request = try #require(fake.chatRequests.last)
                #expect(request.bodyText.contains(Self.foxText), "\(request.bodyText)")
            }
        }
    }

    @Test("files upload --resume finishes an upload another connection began, from the offset files.upload.status gives")
    func uploadResumes() throws {
        try Self.withAgentctl { daemon, ctl, folder in
            let path = folder + "/fox.txt"
            try Self.foxText.write(toFile: path, atomically: true, encoding: .utf8)
            let client = ClientConnection(try daemon.connect())
            let begun = try client.result("files.upload.begin", #"{"name":"fox.txt","size":51,"sha256":"\#(Self.foxSHA256)"}"#)
            let uploadID = try #require(begun["uploadId"]?.stringValue, "\(begun)")
            let first = Data(Self.foxText.utf8.prefix(20)).base64EncodedString()
            _ = try client.result("files.upload.chunk", #"{"uploadId":"\#(uploadID)","offset":0,"data":"\#(first)"}"#)
            client.client.close()

            let resumed = try ctl.run(["files", "upload", path, "--resume", uploadID])
            #expect(resumed.status == 0, "\(resumed)")
            let id = try #require(try JSON(parsing: resumed.stdout)["id"]?.stringValue, "\(resumed)")
            #expect(try ctl.run(["files", "read", id]).stdout == Self.foxText)
            // Committed: the upload is gone.
            let again = try ctl.run(["files", "upload", path, "--resume", uploadID])
            #expect(again.status == 4 && again.stderr.contains("-32030"), "\(again)")
        }
    }
}
