import AgentdTesting
import Foundation
import RPC
import Services
import Testing

@testable import Daemon

/// Issue 17, item 4: one user filling the disk. Every user has a storage quota (bytes of stored
/// text, `--storage-quota-bytes`); a write that would pass it answers -32007 and stores nothing.
extension HostileClientTests {
    static let quotaBytes = 64 * 1024
    /// One append's content: 8,000 bytes, so eight fit in 64 KiB beside a short chat title and the
    /// ninth does not.
    static let quotaChunk = String(repeating: "x", count: 8_000)

    static func storedBytes(_ client: RPCTestClient, id: Int, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int? {
        let whoami = try AuthTests.call(client, id: id, "v2.auth.whoami")
        #expect(whoami["result"]?["usage"]?["quotaBytes"] == .integer(Int64(quotaBytes)), "reply: \(whoami)", sourceLocation: sourceLocation)
        return whoami["result"]?["usage"]?["storedBytes"]?.intValue
    }

    static func storedBytes(_ client: InProcessClient, sourceLocation: SourceLocation = #_sourceLocation) async throws -> Int? {
        let whoami = try await client.call("v2.auth.whoami").decode(JSONValue.self)
        #expect(whoami["usage"]?["quotaBytes"]?.intValue == quotaBytes, "result: \(whoami)", sourceLocation: sourceLocation)
        return whoami["usage"]?["storedBytes"]?.intValue
    }

    static func code(_ error: RPCError?) -> Int? { error.map { Int($0.code.rawValue) } }

    @Test("appends past the storage quota answer -32007 {limit, actual} and store nothing; deletes give bytes back; other users are unaffected")
    func storageQuota() async throws {
        try await withInProcessDaemon(configure: { $0.storageQuota = StorageQuota(limitBytes: Int64(Self.quotaBytes)) }) { daemon in
            let owner = try await daemon.connect()
            let chatID = try await owner.send(Chats.Create.self, .init(title: "c")).id
            #expect(try await Self.storedBytes(owner) == 1)

            // Appends until the quota refuses one.
            var refused: RPCError?
            var accepted = 0
            for _ in 10..<40 {
                do {
                    _ = try await owner.send(Chats.Messages.Append.self, .init(chatId: chatID, role: .user, content: Self.quotaChunk))
                    accepted += 1
                } catch let error as RPCError {
                    refused = error
                    break
                }
            }
            #expect(accepted == 8)
            let error = try #require(refused, "no append was refused")
            #expect(Self.code(error) == -32007, "\(error)")
            #expect(error.message == "Quota exceeded")
            #expect(error.dataValue?["limit"]?.intValue == Self.quotaBytes)
            #expect(error.dataValue?["actual"]?.intValue == 1 + 9 * 8_000)

            // Nothing of the refused append is stored, and usage did not move.
            let listed = try await owner.call("chats.messages.list", #"{"chatId":"\#(chatID)","limit":100}"#).decode(JSONValue.self)
            #expect(listed["items"]?.arrayValue?.count == 8, "\(listed)")
            #expect(try await Self.storedBytes(owner) == 1 + 8 * 8_000)
            // Version 1's whoami keeps its contract.
            #expect(try await owner.call("auth.whoami").decode(JSONValue.self)["usage"] == nil)
            // Other writes are refused too (a module's content counts).
            let module = await #expect(throws: RPCError.self) {
                try await owner.send(Modules.Create.self, .init(title: "m", content: Self.quotaChunk))
            }
            #expect(Self.code(module) == -32007, "\(String(describing: module))")
            // The agent stores nothing either: its question is refused before any model is asked.
            let act = await #expect(throws: RPCError.self) {
                try await owner.call("v2.agent.act", #"{"chatId":"\#(chatID)","message":"\#(Self.quotaChunk)"}"#)
            }
            #expect(Self.code(act) == -32007, "\(String(describing: act))")
            #expect(try await Self.storedBytes(owner) == 1 + 8 * 8_000)

            // Another user has their own quota.
            let other = try await daemon.connect()
            let mallory = Auth.Credentials(username: "mallory", password: "correct horse")
            _ = try await other.send(Auth.Register.self, mallory)
            #expect(try await !other.send(Auth.Login.self, mallory).token.isEmpty)
            let otherChat = try await other.send(Chats.Create.self, .init(title: "theirs")).id
            let otherAppend = try await other.send(Chats.Messages.Append.self, .init(chatId: otherChat, role: .user, content: Self.quotaChunk))
            #expect(!otherAppend.id.isEmpty)
            #expect(try await Self.storedBytes(other) == 6 + 8_000)

            // Deleting the chat gives its bytes back (title and messages).
            #expect(try await owner.call("chats.delete", #"{"id":"\#(chatID)"}"#).decode(JSONValue.self)["deleted"] == .bool(true))
            #expect(try await Self.storedBytes(owner) == 0)
            let again = try await owner.send(Chats.Create.self, .init(title: "again")).id
            _ = try await owner.send(Chats.Messages.Append.self, .init(chatId: again, role: .user, content: Self.quotaChunk))
            #expect(try await Self.storedBytes(owner) == 5 + 8_000)
        }
    }

    /// Live: only a process can be killed with SIGKILL and started again on its database file.
    @Test("storage usage survives kill -9: the counter is written in each write's transaction, not at shutdown")
    func storageQuotaSurvivesKill() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let arguments = ["--database", "\(directory.path)/agentd.sqlite", "--storage-quota-bytes", String(Self.quotaBytes)]
        let socket = "\(directory.path)/agentd.sock"

        let usageBeforeKill: Int?
        do {
            let daemon = try DaemonProcess(socketPath: socket, arguments: arguments)
            defer { daemon.kill() }
            let owner = try daemon.connect()
            let chatID = try #require(try AuthTests.call(owner, id: 1, "chats.create", #"{"title":"again"}"#)["result"]?["id"]?.stringValue)
            let append = try AuthTests.call(
                owner, id: 2, "chats.messages.append", #"{"chatId":"\#(chatID)","role":"user","content":"\#(Self.quotaChunk)"}"#)
            #expect(append["result"]?["id"] != nil, "reply: \(append)")
            usageBeforeKill = try Self.storedBytes(owner, id: 3)
            #expect(usageBeforeKill == 5 + 8_000)
            // kill -9: the counter is written in each write's transaction, not at shutdown.
        }

        let restarted = try DaemonProcess(socketPath: socket, arguments: arguments)
        defer { restarted.kill() }
        let owner = try restarted.connect()
        #expect(try Self.storedBytes(owner, id: 1) == usageBeforeKill)
    }
}
