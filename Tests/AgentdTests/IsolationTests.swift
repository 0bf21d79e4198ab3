import AgentdTesting
import Foundation
import RPC
import Services
import Testing

/// Every method that takes an id, found through `rpc.discover` (so a new method is covered the day
/// it is registered), called by another user with the owner's id: the reply must be exactly the
/// reply for an id that does not exist, and the owner's data must not change. An id inside an
/// object param counts too (`events.subscribe`'s `filter.chatId`), and so does a subscription id
/// (a connection's own). Every API version is enumerated: version 2's methods are called as `v2.…`.
/// Through the daemon's router and middleware in process (`InProcessDaemon`), with replies compared
/// as the server wrote them.
@Suite("Isolation across users", .timeLimit(.minutes(3)))
struct IsolationTests {
    /// Calls `method` and returns the whole reply, parsed, error or not.
    static func call(_ client: InProcessClient, _ method: String, _ params: String = "{}") async throws -> JSON {
        try JSON(parsing: await client.callRaw(method, params))
    }

    /// A reply without its `id` (each call gets its own), to compare replies to different calls.
    static func withoutID(_ reply: JSON) -> JSON {
        guard case .object(var members) = reply else { return reply }
        members["id"] = nil
        return .object(members)
    }
    /// Which kind of resource an id-like param names. `id` depends on the method's domain.
    static func kind(of param: String, method: String) -> String? {
        switch param.split(separator: ".").last.map(String.init) ?? param {
        case "moduleId": return "module"
        case "chatId": return "chat"
        case "messageId", "parentId", "siblingOf": return "message"
        case "promptId": return "prompt"
        case "subscription": return "subscription"
        case "runId": return "run"
        case "fileId": return "file"
        case "uploadId": return "upload"
        case "id":
            if method.hasPrefix("chats.messages.") { return "message" }
            if method.hasPrefix("chats.") { return "chat" }
            if method.hasPrefix("modules.") { return "module" }
            if method.hasPrefix("prompts.") { return "prompt" }
            if method.hasPrefix("jobs.") { return "job" }
            if method.hasPrefix("files.") { return "file" }
            return nil
        default: return nil
        }
    }

    static func isIDLike(_ param: String) -> Bool { param == "id" || param.hasSuffix("Id") || param == "siblingOf" || param == "subscription" }

    /// The id-like params of a method: top-level ones, and those inside an object param, as
    /// `filter.chatId`.
    static func idParams(_ params: [JSON]) -> [String] {
        var found: [String] = []
        for descriptor in params {
            guard let name = descriptor["name"]?.stringValue else { continue }
            if isIDLike(name) { found.append(name) }
            if let properties = descriptor["schema"]?["properties"]?.objectValue {
                found += properties.keys.sorted().filter(isIDLike).map { "\(name).\($0)" }
            }
        }
        return found
    }

    /// A resource of each kind, owned by one user.
    struct Owned {
        var ids: [String: String] = [:]
    }

    /// Creates a module, a chat in it with two messages, and a prompt when the daemon has prompts;
    /// a job on the daemon's queue (no method enqueues one of a user's choosing) when it has jobs.
    static func createResources(_ client: InProcessClient, methods: Set<String>, tag: String, daemon: InProcessDaemon) async throws -> Owned {
        var owned = Owned()
        let module = try await Self.call(client, "modules.create", #"{"title":"\#(tag) module","content":"\#(tag) secret"}"#)
        owned.ids["module"] = try #require(module["result"]?["id"]?.stringValue, "\(module)")
        let chat = try await Self.call(client, "chats.create", #"{"moduleId":"\#(owned.ids["module"]!)","title":"\#(tag) chat"}"#)
        owned.ids["chat"] = try #require(chat["result"]?["id"]?.stringValue, "\(chat)")
        for content in ["\(tag) question", "\(tag) answer"] {
            let message = try await Self.call(
                client, "chats.messages.append", #"{"chatId":"\#(owned.ids["chat"]!)","role":"user","content":"\#(content)"}"#)
            owned.ids["message"] = try #require(message["result"]?["id"]?.stringValue, "\(message)")
        }
        if methods.contains("prompts.create") {
            let prompt = try await Self.call(client, "prompts.create", #"{"name":"\#(tag)-prompt","body":"Hello {{name}}"}"#)
            owned.ids["prompt"] = try #require(prompt["result"]?["id"]?.stringValue, "\(prompt)")
        }
        if methods.contains("agent.act") {
            // No provider is configured: the run fails (-32050), but the question and the run are stored.
            let act = try await Self.call(client, "v2.agent.act", #"{"chatId":"\#(owned.ids["chat"]!)","message":"\#(tag) asks"}"#)
            #expect(act.errorCode == -32050, "\(act)")
            let runs = try await Self.call(client, "v2.agent.runs.list", #"{"chatId":"\#(owned.ids["chat"]!)"}"#)
            owned.ids["run"] = try #require(runs["result"]?["items"]?.arrayValue?.first?["id"]?.stringValue, "\(runs)")
        }
        if methods.contains("files.upload.begin") {
            // A file, and an upload left open.
            owned.ids["file"] = try await AttachmentsTests.upload(client, name: "\(tag).txt", content: "\(tag) file").id
            owned.ids["upload"] = try await client.send(Files.UploadBegin.self, .init(name: "\(tag).bin", size: 10)).uploadId
        }
        if methods.contains("modules.files.add") {
            // A file in the module (its row, as an upload leaves it, when the daemon has no uploads).
            if owned.ids["file"] == nil {
                let userID = try await client.send(Auth.WhoAmI.self, RPCNoParams()).id
                owned.ids["file"] = try await AttachmentsTests.insertFile(daemon, userID: userID, id: "fil_\(tag)", name: "\(tag).txt").id
            }
            let added = try await Self.call(
                client, "modules.files.add", #"{"moduleId":"\#(owned.ids["module"]!)","fileId":"\#(owned.ids["file"]!)"}"#)
            #expect(added["result"]?["files"] != nil, "\(added)")
        }
        if methods.contains("jobs.get") {
            let userID = try await client.send(Auth.WhoAmI.self, RPCNoParams()).id
            let job = try await daemon.dependencies.jobQueue.enqueue(
                NewJob(id: "job_\(tag)", kind: "test.noop", ownerID: userID, runAfter: daemon.clock.now()))
            owned.ids["job"] = job.job.id
        }
        return owned
    }

    /// Values for required params that a type's filler would make fail before the id is looked at
    /// (no topic at all is an error of its own; a chunk's data must be base64).
    static let fillers: [String: JSON] = ["topics": .array([.string("*")]), "data": .string("AA==")]

    /// A value for a required param that is not under test.
    static func filler(for schema: JSON?) -> JSON {
        if let values = schema?["enum"]?.arrayValue, let first = values.first { return first }
        switch schema?["type"]?.stringValue {
        case "integer": return .integer(1)
        case "number": return .double(1)
        case "boolean": return .bool(false)
        case "object": return .object([:])
        case "array": return .array([])
        default: return .string("x")
        }
    }

    /// What the owner can read back about everything they own, to check nothing changed.
    static func snapshot(_ client: InProcessClient, _ owned: Owned) async throws -> [JSON] {
        var replies = [
            try await Self.call(client, "modules.get", #"{"id":"\#(owned.ids["module"]!)"}"#),
            try await Self.call(client, "chats.get", #"{"id":"\#(owned.ids["chat"]!)"}"#),
            try await Self.call(client, "chats.messages.list", #"{"chatId":"\#(owned.ids["chat"]!)"}"#),
        ]
        if let prompt = owned.ids["prompt"] { replies.append(try await call(client, "prompts.get", #"{"id":"\#(prompt)"}"#)) }
        if let file = owned.ids["file"] { replies.append(try await call(client, "files.get", #"{"id":"\#(file)"}"#)) }
        if let upload = owned.ids["upload"] { replies.append(try await call(client, "files.upload.status", #"{"uploadId":"\#(upload)"}"#)) }
        for reply in replies { #expect(reply["result"] != nil, "owner's read failed: \(reply)") }
        return replies.map(withoutID)
    }

    @Test("another user's ids answer exactly like missing ones, in every method and param that takes an id")
    func everyIDTakingMethod() async throws {
        try await withInProcessDaemon { daemon in
            let owner = try await daemon.connect()
            // Every API version's methods (v2-only ones and v2's changed ones are called as `v2.…`).
            let version = try await Self.call(owner, "system.version")
            let versionList = try #require(version["result"]?["apiVersions"]?.arrayValue, "\(version)")
            let versions = versionList.compactMap { $0.stringValue }
            #expect(versions.count >= 2, "\(version)")
            var methods: [(prefix: String, method: JSON)] = []
            for (index, apiVersion) in versions.enumerated() {
                let discovered = try await Self.call(owner, "rpc.discover", #"{"version":"\#(apiVersion)"}"#)
                let described = try #require(discovered["result"]?["methods"]?.arrayValue, "\(discovered)")
                methods += described.map { (index == 0 ? "" : "v\(apiVersion).", $0) }
            }
            let names = Set(methods.compactMap { $0.method["name"]?.stringValue })
            var alice = try await Self.createResources(owner, methods: names, tag: "alice", daemon: daemon)
            let before = try await Self.snapshot(owner, alice)
            if names.contains("events.subscribe") {
                // Alice's subscription, on her connection, from her newest event (none follows until
                // the end of the test).
                let stored = try await Self.call(owner, "events.replay", #"{"since":0,"limit":1000}"#)
                let newest = try #require(stored["result"]?["lastSeq"]?.intValue, "\(stored)")
                let subscribed = try await Self.call(owner, "events.subscribe", #"{"topics":["*"],"since":\#(newest)}"#)
                alice.ids["subscription"] = try #require(subscribed["result"]?["subscription"]?.stringValue, "\(subscribed)")
            }

            let intruder = try await daemon.connect()
            _ = try await Self.call(intruder, "auth.register", #"{"username":"mallory","password":"correct horse"}"#)
            let login = try await Self.call(intruder, "auth.login", #"{"username":"mallory","password":"correct horse"}"#)
            #expect(login["result"]?["token"] != nil, "\(login)")
            let mallory = try await Self.createResources(intruder, methods: names, tag: "mallory", daemon: daemon)

            var checked: [String] = []
            var refused: Set<String> = []
            var requestID = 100
            for (prefix, method) in methods {
                guard let bare = method["name"]?.stringValue, let params = method["params"]?.arrayValue else { continue }
                let name = prefix + bare
                for param in Self.idParams(params) {
                    let kind = try #require(
                        Self.kind(of: param, method: bare), "\(name): id param \(param) has no kind: add it to IsolationTests.kind")
                    let aliceID = try #require(alice.ids[kind], "no \(kind) created")
                    let missingID =
                        String(aliceID.prefix { $0 != "_" }) + "_"
                        + String(repeating: "0", count: aliceID.count - aliceID.prefix { $0 != "_" }.count - 1)

                    func call(with id: String) async throws -> String {
                        var object: [String: JSON] = [:]
                        let path = param.split(separator: ".").map(String.init)
                        for descriptor in params {
                            guard let other = descriptor["name"]?.stringValue else { continue }
                            if other == path[0] {
                                object[other] = path.count == 1 ? .string(id) : .object([path[1]: .string(id)])
                            } else if descriptor["required"] == .bool(true) {
                                if Self.isIDLike(other), let otherKind = Self.kind(of: other, method: bare), let own = mallory.ids[otherKind] {
                                    object[other] = .string(own)
                                } else {
                                    object[other] = Self.fillers[other] ?? Self.filler(for: descriptor["schema"])
                                }
                            }
                        }
                        requestID += 1
                        // The same id each time: the two replies are compared as text.
                        try await intruder.write(#"{"jsonrpc":"2.0","id":7,"method":"\#(name)","params":\#(JSON.object(object))}"# + "\n")
                        let reply = try JSON(parsing: await intruder.nextMessage(timeout: .seconds(30)))
                        if reply.errorCode == -32030 { refused.insert("\(name).\(param)") }
                        // A new subscription's id is new each time.
                        return reply.description.replacingOccurrences(of: id, with: "<id>")
                            .replacingOccurrences(of: #"sub_[0-9a-f]+"#, with: "<subscription>", options: .regularExpression)
                    }
                    let withAlices = try await call(with: aliceID)
                    let withMissing = try await call(with: missingID)
                    #expect(withAlices == withMissing, "\(name) \(param): another user's id and a missing id answer differently")
                    #expect(!withAlices.contains("alice"), "\(name) \(param) leaked the owner's data: \(withAlices)")
                    checked.append("\(name).\(param)")
                }
            }
            // Every domain's id-taking methods were found and most of them refused with Not found.
            for expected in [
                "modules.get.id", "modules.update.id", "modules.delete.id", "chats.get.id", "chats.delete.id", "chats.fork.messageId",
                "chats.messages.append.chatId", "chats.messages.append.parentId", "chats.messages.append.siblingOf",
                "chats.branches.select.messageId",
            ] {
                #expect(checked.contains(expected), "\(expected) not checked; checked: \(checked)")
            }
            if names.contains("events.subscribe") {
                for expected in [
                    "events.subscribe.filter.chatId", "events.subscribe.filter.moduleId", "events.replay.filter.chatId",
                    "events.unsubscribe.subscription",
                ] {
                    #expect(checked.contains(expected), "\(expected) not checked; checked: \(checked)")
                }
            }
            // Filters (a list narrowed to a module, events narrowed to a chat or module) answer an
            // empty page or a subscription that never fires instead; everything else -32030.
            #expect(checked.contains("v2.chats.list.moduleId") && checked.contains("v2.modules.get.id"), "version 2 not checked; checked: \(checked)")
            let filters: Set<String> = [
                "chats.list.moduleId", "v2.chats.list.moduleId", "v2.events.subscribe.filter.chatId", "v2.events.subscribe.filter.moduleId",
                "v2.events.replay.filter.chatId", "v2.events.replay.filter.moduleId", "events.subscribe.filter.chatId",
                "events.subscribe.filter.moduleId", "events.replay.filter.chatId",
                "events.replay.filter.moduleId", "agent.runs.list.chatId", "v2.agent.runs.list.chatId",
            ]
            if names.contains("files.upload.begin") {
                for expected in [
                    "files.get.id", "files.read.id", "files.delete.id", "files.upload.status.uploadId", "files.upload.chunk.uploadId",
                    "files.upload.commit.uploadId",
                ] {
                    #expect(checked.contains(expected), "\(expected) not checked; checked: \(checked)")
                }
            }
            if names.contains("modules.files.add") {
                for expected in [
                    "modules.files.add.moduleId", "modules.files.add.fileId", "modules.files.remove.moduleId", "modules.files.remove.fileId",
                ] {
                    #expect(checked.contains(expected), "\(expected) not checked; checked: \(checked)")
                }
            }
            if names.contains("jobs.get") {
                for expected in ["jobs.get.id", "jobs.cancel.id", "jobs.retry.id", "v2.jobs.get.id"] {
                    #expect(checked.contains(expected), "\(expected) not checked; checked: \(checked)")
                }
            }
            if names.contains("agent.act") {
                for expected in [
                    "v2.agent.act.chatId", "v2.agent.act.moduleId", "v2.agent.act.parentId", "v2.agent.act.promptId", "v2.agent.regenerate.messageId",
                    "v2.agent.cancel.runId", "v2.agent.runs.get.runId", "v2.chats.messages.get.id",
                ] {
                    #expect(checked.contains(expected), "\(expected) not checked; checked: \(checked)")
                }
            }
            // `test.chunk` (only with --enable-test-methods) takes an upload's params and decodes
            // them, reading nobody's data: its uploadId is not an id it looks up.
            let readsNothing: Set<String> = ["test.chunk.uploadId", "v2.test.chunk.uploadId"]
            #expect(
                Set(checked).subtracting(refused).subtracting(filters).subtracting(readsNothing).isEmpty,
                "answered without -32030: \(Set(checked).subtracting(refused))")
            #expect(try await Self.snapshot(owner, alice) == before, "the owner's data changed")
            // Nothing reached the owner's subscription meanwhile (the live test read each reply as
            // the next line, so an event there failed it).
            #expect(await owner.unreadCount == 0, "the owner's subscription received another user's events")

            if names.contains("events.subscribe") {
                // The intruder's subscriptions filtered on the owner's chat and module stay silent
                // when the owner changes them; the owner's own subscription sees the change.
                try await owner.write(
                    #"{"jsonrpc":"2.0","id":94,"method":"chats.messages.append","params":{"chatId":"\#(alice.ids["chat"]!)","role":"user","content":"later"}}"#
                        + "\n")
                // The reply and the event, in either order.
                let messages = [try JSON(parsing: await owner.nextMessage()), try JSON(parsing: await owner.nextMessage())]
                #expect(messages.contains { $0["id"] == .integer(94) && $0["result"] != nil }, "\(messages)")
                #expect(messages.contains { $0["method"]?.stringValue == "events.event" }, "\(messages)")
                try await SpecExampleTests.expectNoMessage(
                    intruder, within: .milliseconds(200), "an event of the owner's reached another user's filtered subscription")
            }
        }
    }
}
