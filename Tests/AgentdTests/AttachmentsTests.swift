import AgentdTesting
import Foundation
import GRDB
import RPC
import Services
import Storage
import Testing

@testable import Daemon

/// Files attached to messages (`chats.messages.append`, `agent.act`, `agent.regenerate` with
/// `attachments`) and to modules (`modules.files.add|remove`), in process. The files are uploaded
/// (`upload`), or, where many are needed, rows put straight into the database (`insertFile`).
@Suite("Attachments (in process)", .timeLimit(.minutes(2)))
struct AttachmentsTests {
    @Test("a message shows its attachments in order, wherever messages are read; one without keeps its bytes; a fork keeps them")
    func messageAttachments() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let userID = try await client.send(Auth.WhoAmI.self, .init()).id
            let spec = try await Self.upload(client, name: "spec.md", content: "# Spec\n", mediaType: "text/markdown")
            let shot = try await Self.upload(client, name: "shot.png", content: "not really a PNG", mediaType: "image/png")
            let chat = try await client.send(Chats.Create.self, .init(title: "Files"))

            let plain = try await client.call("chats.messages.append", #"{"chatId":"\#(chat.id)","role":"user","content":"no files"}"#)
                .decode(JSONValue.self)
            #expect(plain["attachments"] == nil, "a message without files has no attachments member: \(plain)")
            let empty = try await client.send(Chats.Messages.Append.self, .init(chatId: chat.id, role: .user, content: "[]", attachments: []))
            #expect(empty.attachments == nil, "\(empty)")

            let message = try await client.send(
                Chats.Messages.Append.self, .init(chatId: chat.id, role: .user, content: "see these", attachments: [shot.id, spec.id]))
            #expect(message.attachments == [shot, spec], "in the order given: \(message)")

            let got = try await client.send(Chats.Messages.Get.self, .init(id: message.id))
            #expect(got == message)
            let detail = try await client.call("v2.chats.messages.get", #"{"id":"\#(message.id)"}"#).decode(JSONValue.self)
            #expect(detail["attachments"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["shot.png", "spec.md"], "\(detail)")
            #expect(detail["attachments"]?.arrayValue?.first?["mediaType"]?.stringValue == "image/png", "\(detail)")
            let page = try await client.send(Chats.Messages.List.self, .init(chatId: chat.id))
            #expect(page.items.map(\.attachments) == [nil, nil, [shot, spec]], "\(page)")
            let export = try await client.send(Chats.Export.self, .init(chatId: chat.id, format: .json))
            #expect(export.content.contains("shot.png"), "the JSON export holds the attachments: \(export.content)")
            let markdown = try await client.send(Chats.Export.self, .init(chatId: chat.id, format: .markdown))
            #expect(
                markdown.content.contains("see these\n\nAttachments: shot.png (image/png, 16 bytes), spec.md (text/markdown, 7 bytes)\n"),
                "the transcript names them: \(markdown.content)")

            let fork = try await client.send(Chats.Fork.self, .init(messageId: message.id))
            let copies = try await client.send(Chats.Messages.List.self, .init(chatId: fork.id))
            #expect(copies.items.last?.attachments == [shot, spec], "\(copies)")
            #expect(copies.items.last?.id != message.id)

            // The agent's read of a branch (pathTail) and the store's own read agree.
            let store = daemon.dependencies.attachments
            let read = try await store.attachments(messageIDs: [plain["id"]?.stringValue ?? "", message.id], userID: userID)
            #expect(read == [message.id: [shot, spec]], "\(read)")
        }
    }

    @Test("attachments refused: more than 16, a duplicate, another user's or a missing file (nothing stored)")
    func refusals() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let userID = try await client.send(Auth.WhoAmI.self, .init()).id
            let mine = try await Self.insertFile(daemon, userID: userID, id: "fil_mine", name: "a.txt")
            let other = try await daemon.registerAndLogin(username: "mallory")
            let otherID = try await other.send(Auth.WhoAmI.self, .init()).id
            let theirs = try await Self.insertFile(daemon, userID: otherID, id: "fil_theirs", name: "b.txt")
            let chat = try await client.send(Chats.Create.self, .init(title: "Refusals"))

            let tooMany = await #expect(throws: RPCError.self) {
                try await client.send(
                    Chats.Messages.Append.self, .init(chatId: chat.id, role: .user, content: "x", attachments: (0...16).map { "fil_\($0)" }))
            }
            #expect(tooMany?.code == .invalidParams, "\(String(describing: tooMany))")
            #expect(tooMany?.dataValue?["field"]?.stringValue == "attachments", "\(String(describing: tooMany))")
            #expect(tooMany?.dataValue?["limit"]?.intValue == 16 && tooMany?.dataValue?["actual"]?.intValue == 17, "\(String(describing: tooMany))")

            let duplicate = await #expect(throws: RPCError.self) {
                try await client.send(Chats.Messages.Append.self, .init(chatId: chat.id, role: .user, content: "x", attachments: [mine.id, mine.id]))
            }
            #expect(duplicate?.code == .invalidParams, "\(String(describing: duplicate))")
            #expect(duplicate?.dataValue?["field"]?.stringValue == "attachments[1]", "\(String(describing: duplicate))")

            for id in [theirs.id, "fil_missing"] {
                let refused = await #expect(throws: RPCError.self) {
                    try await client.send(Chats.Messages.Append.self, .init(chatId: chat.id, role: .user, content: "x", attachments: [mine.id, id]))
                }
                #expect(refused?.code.rawValue == -32030, "\(String(describing: refused))")
                #expect(refused?.dataValue?["kind"]?.stringValue == "file", "\(String(describing: refused))")
                #expect(refused?.dataValue?["id"]?.stringValue == id, "\(String(describing: refused))")
            }
            let agentRefused = await #expect(throws: RPCError.self) {
                try await client.send(Agent.Act.self, .init(chatId: chat.id, message: "x", attachments: [theirs.id]))
            }
            #expect(agentRefused?.dataValue?["kind"]?.stringValue == "file", "\(String(describing: agentRefused))")
            #expect(try await client.send(Chats.Get.self, .init(id: chat.id)).messageCount == 0, "nothing was stored")

            // The other user's own reads see none of the first user's attachments.
            let message = try await client.send(Chats.Messages.Append.self, .init(chatId: chat.id, role: .user, content: "x", attachments: [mine.id]))
            #expect(try await daemon.dependencies.attachments.attachments(messageIDs: [message.id], userID: otherID).isEmpty)
        }
    }

    @Test("a deleted file leaves the message and the module; the message then shows the others, or none")
    func deletedFile() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let userID = try await client.send(Auth.WhoAmI.self, .init()).id
            let first = try await Self.insertFile(daemon, userID: userID, id: "fil_first", name: "1.txt")
            let second = try await Self.insertFile(daemon, userID: userID, id: "fil_second", name: "2.txt")
            let chat = try await client.send(Chats.Create.self, .init(title: "Deletions"))
            let both = try await client.send(
                Chats.Messages.Append.self, .init(chatId: chat.id, role: .user, content: "both", attachments: [first.id, second.id]))
            let one = try await client.send(Chats.Messages.Append.self, .init(chatId: chat.id, role: .user, content: "one", attachments: [first.id]))
            let module = try await client.send(Modules.Create.self, .init(title: "M"))
            _ = try await client.send(Modules.Files.Add.self, .init(moduleId: module.id, fileId: first.id))

            // Deleted as files.delete deletes it: the module it leaves gets a module.updated event.
            let writer = daemon.dependencies.database.writer
            let files = SQLiteFileStore(
                writer: writer, groupWriter: GroupCommitWriter(writer: writer, outbox: EventOutbox(clock: daemon.clock, publish: { _ in })),
                ledger: StorageLedger(quota: .unlimited))
            let deletion = try await files.deleteFile(id: first.id, userID: userID, event: FilesEvents.FileDeleted(userID: userID, fileId: first.id))
            #expect(deletion?.file == first)
            let updates = try await Self.events(daemon, topic: "module.updated")
            #expect(updates.filter { $0.contains(module.id) && $0.contains(#""files""#) }.count == 2, "the add and the deletion: \(updates)")

            #expect(try await client.send(Chats.Messages.Get.self, .init(id: both.id)).attachments == [second])
            // A fork copies the files still there.
            let fork = try await client.send(Chats.Fork.self, .init(messageId: one.id))
            let copies = try await client.send(Chats.Messages.List.self, .init(chatId: fork.id)).items
            #expect(copies.map(\.attachments) == [[second], nil], "\(copies)")
            let left = try await client.send(Chats.Messages.Get.self, .init(id: one.id))
            #expect(left.content == "one" && left.attachments == nil, "\(left)")
            let raw = try await client.call("chats.messages.get", #"{"id":"\#(one.id)"}"#).decode(JSONValue.self)
            #expect(raw["attachments"] == nil, "\(raw)")
            #expect(try await client.send(Modules.Get.self, .init(id: module.id)).files == nil)
        }
    }

    @Test("modules.files.add|remove: modules.get shows the files in order, add is idempotent, 32 at most, module.updated [files]")
    func moduleFiles() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let userID = try await client.send(Auth.WhoAmI.self, .init()).id
            var files: [FileMetadata] = []
            for index in 0...Attachments.maxPerModule {
                files.append(try await Self.insertFile(daemon, userID: userID, id: "fil_\(index)", name: "\(index).txt"))
            }
            let module = try await client.send(Modules.Create.self, .init(title: "Project", content: "notes"))
            #expect(module.files == nil)
            let raw = try await client.call("modules.get", #"{"id":"\#(module.id)"}"#).decode(JSONValue.self)
            #expect(raw["files"] == nil, "a module without files has no files member: \(raw)")

            daemon.clock.advance(by: 5)
            let added = try await client.send(Modules.Files.Add.self, .init(moduleId: module.id, fileId: files[1].id))
            #expect(added.files == [files[1]] && added.updatedAt > module.updatedAt, "\(added)")
            let again = try await client.send(Modules.Files.Add.self, .init(moduleId: module.id, fileId: files[1].id))
            #expect(again == added, "adding a file already there changes nothing")
            _ = try await client.send(Modules.Files.Add.self, .init(moduleId: module.id, fileId: files[0].id))
            let got = try await client.send(Modules.Get.self, .init(id: module.id))
            #expect(got.files == [files[1], files[0]], "in the order added: \(got)")
            #expect(try await daemon.dependencies.attachments.moduleFiles(moduleID: module.id, userID: userID) == [files[1], files[0]])
            let listed = try await client.send(Modules.List.self, .init())
            #expect(listed.items.first?.files == nil, "pages go without files")
            let updated = try await client.send(Modules.Update.self, .init(id: module.id, title: "Renamed"))
            #expect(updated.files == [files[1], files[0]])

            let events = try await Self.events(daemon, topic: "module.updated")
            #expect(events.filter { $0.contains(#""files""#) }.count == 2, "one per change, none for the repeat: \(events)")

            let removed = try await client.send(Modules.Files.Remove.self, .init(moduleId: module.id, fileId: files[1].id))
            #expect(removed.files == [files[0]])
            let notThere = await #expect(throws: RPCError.self) {
                try await client.send(Modules.Files.Remove.self, .init(moduleId: module.id, fileId: files[1].id))
            }
            #expect(notThere?.code.rawValue == -32030 && notThere?.dataValue?["kind"]?.stringValue == "file", "\(String(describing: notThere))")

            for file in files[2...Attachments.maxPerModule] {
                _ = try await client.send(Modules.Files.Add.self, .init(moduleId: module.id, fileId: file.id))
            }
            let full = await #expect(throws: RPCError.self) {
                try await client.send(Modules.Files.Add.self, .init(moduleId: module.id, fileId: files[1].id))
            }
            #expect(full?.code == .invalidParams && full?.dataValue?["limit"]?.intValue == 32, "\(String(describing: full))")
            #expect(try await client.send(Modules.Get.self, .init(id: module.id)).files?.count == 32)
            // One already there is still fine when the module is full.
            #expect(try await client.send(Modules.Files.Add.self, .init(moduleId: module.id, fileId: files[0].id)).files?.count == 32)
        }
    }

    @Test("modules.files: another user's module or file answers Not found like a missing one")
    func moduleIsolation() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let userID = try await client.send(Auth.WhoAmI.self, .init()).id
            let mine = try await Self.insertFile(daemon, userID: userID, id: "fil_mine", name: "a.txt")
            let module = try await client.send(Modules.Create.self, .init(title: "Mine"))
            let other = try await daemon.registerAndLogin(username: "mallory")
            let otherID = try await other.send(Auth.WhoAmI.self, .init()).id
            let theirs = try await Self.insertFile(daemon, userID: otherID, id: "fil_theirs", name: "b.txt")

            let foreignFile = await #expect(throws: RPCError.self) {
                try await client.send(Modules.Files.Add.self, .init(moduleId: module.id, fileId: theirs.id))
            }
            #expect(
                foreignFile?.code.rawValue == -32030 && foreignFile?.dataValue?["kind"]?.stringValue == "file", "\(String(describing: foreignFile))")
            let foreignModule = await #expect(throws: RPCError.self) {
                try await other.send(Modules.Files.Add.self, .init(moduleId: module.id, fileId: theirs.id))
            }
            #expect(
                foreignModule?.code.rawValue == -32030 && foreignModule?.dataValue?["kind"]?.stringValue == "module",
                "\(String(describing: foreignModule))")
            _ = try await client.send(Modules.Files.Add.self, .init(moduleId: module.id, fileId: mine.id))
            let removeForeign = await #expect(throws: RPCError.self) {
                try await other.send(Modules.Files.Remove.self, .init(moduleId: module.id, fileId: mine.id))
            }
            #expect(removeForeign?.dataValue?["kind"]?.stringValue == "module", "\(String(describing: removeForeign))")
            #expect(try await daemon.dependencies.attachments.moduleFiles(moduleID: module.id, userID: otherID) == nil)
            #expect(try await client.send(Modules.Get.self, .init(id: module.id)).files == [mine])
        }
    }

    @Test("agent.act stores the question with its files; agent.regenerate with files asks again beside it, without keeps it")
    func agentAttachments() async throws {
        let provider = ScriptedLLMProvider(scripts: [
            ScriptedLLMProvider.answer(["first"]), ScriptedLLMProvider.answer(["second"]), ScriptedLLMProvider.answer(["third"]),
        ])
        let collaborators = Dependencies.Collaborators(
            clock: SystemClock(), ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts(), llmProvider: provider)
        try await withInProcessDaemon(collaborators: collaborators) { daemon in
            let client = try await daemon.connect()
            let userID = try await client.send(Auth.WhoAmI.self, .init()).id
            let log = try await Self.insertFile(daemon, userID: userID, id: "fil_log", name: "build.log")
            let spec = try await Self.insertFile(daemon, userID: userID, id: "fil_spec", name: "spec.md")

            let first = try #require(try await client.send(Agent.Act.self, .init(message: "What failed?", attachments: [log.id])).answer)
            let question = try #require(first.message.parentId)
            let asked = try await client.send(Chats.Messages.Get.self, .init(id: question))
            #expect(asked.content == "What failed?" && asked.attachments == [log], "\(asked)")
            #expect(first.message.attachments == nil, "the answer has no files")

            // Regenerate without files: the same question answered again.
            let second = try #require(try await client.send(Agent.Regenerate.self, .init(messageId: first.message.id)).answer)
            #expect(second.message.parentId == question)

            // With files: a new question beside the first, same content, exactly these files.
            let third = try #require(try await client.send(Agent.Regenerate.self, .init(messageId: first.message.id, attachments: [spec.id])).answer)
            let newQuestion = try await client.send(Chats.Messages.Get.self, .init(id: try #require(third.message.parentId)))
            #expect(newQuestion.id != question && newQuestion.parentId == asked.parentId, "\(newQuestion)")
            #expect(newQuestion.content == "What failed?" && newQuestion.attachments == [spec], "\(newQuestion)")
            #expect(try await client.send(Chats.Get.self, .init(id: first.chatId)).activeMessageId == third.message.id)
            #expect(provider.requests.count == 3)

            let duplicate = await #expect(throws: RPCError.self) {
                try await client.send(Agent.Regenerate.self, .init(messageId: first.message.id, attachments: [spec.id, spec.id]))
            }
            #expect(duplicate?.code == .invalidParams, "\(String(describing: duplicate))")
        }
    }

    @Test("agent.act in a new chat with another user's file is refused before anything is written: appends committed with it are unaffected")
    func refusedActAbortsNoBatch() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let other = try await daemon.registerAndLogin(username: "mallory")
            let theirs = try await Self.upload(other, name: "b.txt", content: "theirs")
            let chat = try await client.send(Chats.Create.self, .init(title: "Busy"))
            // Appends in flight with the refused act share its group-commit batches; none may fail with it.
            let results = await withTaskGroup(of: String?.self) { group in
                group.addTask {
                    do {
                        _ = try await client.send(Agent.Act.self, .init(message: "new chat", attachments: [theirs.id]))
                        return "the act was not refused"
                    } catch let error as RPCError {
                        return error.dataValue?["kind"]?.stringValue == "file" ? nil : "act: \(error)"
                    } catch { return "act: \(error)" }
                }
                for index in 0..<24 {
                    group.addTask {
                        do {
                            _ = try await client.send(Chats.Messages.Append.self, .init(chatId: chat.id, role: .user, content: "m\(index)"))
                            return nil
                        } catch { return "append \(index): \(error)" }
                    }
                }
                var failures: [String] = []
                for await result in group { if let result { failures.append(result) } }
                return failures
            }
            #expect(results.isEmpty, "\(results)")
            #expect(try await client.send(Chats.List.self, .init()).items.map(\.id) == [chat.id], "no chat was created for the refused act")
            #expect(try await client.send(Chats.Get.self, .init(id: chat.id)).messageCount == 24)
        }
    }

    @Test("background: true: the question is stored with its files; a regenerate with files answers a new question carrying them")
    func backgroundAttachments() async throws {
        try await withInProcessDaemon(runJobs: false) { daemon in
            let client = try await daemon.connect()
            let log = try await Self.upload(client, name: "build.log", content: "error: x")
            let spec = try await Self.upload(client, name: "spec.md", content: "# Spec")
            let started = try #require(
                try await client.send(Agent.Act.self, .init(message: "Why?", background: true, attachments: [log.id])).background)
            #expect(try await client.send(Chats.Messages.Get.self, .init(id: started.messageId)).attachments == [log])

            let again = try #require(
                try await client.send(Agent.Regenerate.self, .init(messageId: started.messageId, background: true, attachments: [spec.id])).background
            )
            #expect(again.messageId != started.messageId)
            let asked = try await client.send(Chats.Messages.Get.self, .init(id: again.messageId))
            #expect(asked.content == "Why?" && asked.attachments == [spec] && asked.parentId == nil, "\(asked)")
            #expect(try await client.send(Agent.Runs.Get.self, .init(runId: again.runId)).userMessageId == again.messageId)
        }
    }

    // MARK: Helpers

    /// `content` uploaded in one chunk by `client`'s user: the file.
    static func upload(_ client: InProcessClient, name: String, content: String, mediaType: String? = nil) async throws -> FileMetadata {
        let data = Data(content.utf8)
        let begun = try await client.send(Files.UploadBegin.self, .init(name: name, mediaType: mediaType, size: Int64(data.count)))
        _ = try await client.send(Files.UploadChunk.self, .init(uploadId: begun.uploadId, offset: 0, data: data.base64EncodedString()))
        return try await client.send(Files.UploadCommit.self, .init(uploadId: begun.uploadId))
    }

    /// A file row of `userID`'s (the upload's result), charged to them as an upload's would be.
    static func insertFile(
        _ daemon: InProcessDaemon, userID: String, id: String, name: String, mediaType: String = "text/plain", size: Int64 = 5
    ) async throws -> FileMetadata {
        let file = FileMetadata(
            id: id, name: name, mediaType: mediaType, size: size, sha256: String(repeating: "ab", count: 32),
            createdAt: Date(timeIntervalSince1970: 1_700_000_000))
        try await daemon.dependencies.database.writer.write { db in
            try db.execute(
                sql: "INSERT INTO files (id, user_id, name, media_type, size, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [file.id, userID, file.name, file.mediaType, file.size, file.sha256, "2023-11-14T22:13:20.000Z"])
        }
        return file
    }

    /// The data of every stored event of `topic`, as JSON text, oldest first.
    static func events(_ daemon: InProcessDaemon, topic: String) async throws -> [String] {
        try await daemon.dependencies.database.writer.read { db in
            try String.fetchAll(db, sql: "SELECT data FROM events WHERE topic = ? ORDER BY seq", arguments: [topic])
        }
    }
}
