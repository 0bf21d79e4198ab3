import Foundation
import Testing

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

    @Test("appends past the storage quota answer -32007 {limit, actual} and store nothing; deletes give bytes back; other users are unaffected; usage survives kill -9")
    func storageQuota() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let arguments = ["--database", "\(directory.path)/agentd.sqlite", "--storage-quota-bytes", String(Self.quotaBytes)]
        let socket = "\(directory.path)/agentd.sock"

        let usageBeforeKill: Int?
        do {
            let daemon = try DaemonProcess(socketPath: socket, arguments: arguments)
            defer { daemon.kill() }
            let owner = try daemon.connect()
            let chatID = try #require(try AuthTests.call(owner, id: 1, "chats.create", #"{"title":"c"}"#)["result"]?["id"]?.stringValue)
            #expect(try Self.storedBytes(owner, id: 2) == 1)

            // Appends until the quota refuses one.
            var refused: JSON?
            var accepted = 0
            for id in 10..<40 {
                let reply = try AuthTests.call(owner, id: id, "chats.messages.append", #"{"chatId":"\#(chatID)","role":"user","content":"\#(Self.quotaChunk)"}"#)
                if reply["error"] != nil {
                    refused = reply
                    break
                }
                accepted += 1
            }
            #expect(accepted == 8)
            let error = try #require(refused?["error"], "no append was refused")
            #expect(error["code"] == .integer(-32007), "reply: \(error)")
            #expect(error["message"]?.stringValue == "Quota exceeded")
            #expect(error["data"]?["limit"] == .integer(Int64(Self.quotaBytes)))
            #expect(error["data"]?["actual"] == .integer(1 + 9 * 8_000))

            // Nothing of the refused append is stored, and usage did not move.
            let listed = try AuthTests.call(owner, id: 50, "chats.messages.list", #"{"chatId":"\#(chatID)","limit":100}"#)
            #expect(listed["result"]?["items"]?.arrayValue?.count == 8, "reply: \(listed)")
            #expect(try Self.storedBytes(owner, id: 51) == 1 + 8 * 8_000)
            // Version 1's whoami keeps its contract.
            #expect(try AuthTests.call(owner, id: 52, "auth.whoami")["result"]?["usage"] == nil)
            // Other writes are refused too (a module's content counts).
            let module = try AuthTests.call(owner, id: 53, "modules.create", #"{"title":"m","content":"\#(Self.quotaChunk)"}"#)
            #expect(module["error"]?["code"] == .integer(-32007), "reply: \(module)")
            // The agent stores nothing either: its question is refused before any model is asked.
            let act = try AuthTests.call(owner, id: 54, "v2.agent.act", #"{"chatId":"\#(chatID)","message":"\#(Self.quotaChunk)"}"#)
            #expect(act["error"]?["code"] == .integer(-32007), "reply: \(act)")
            #expect(try Self.storedBytes(owner, id: 55) == 1 + 8 * 8_000)

            // Another user has their own quota.
            let other = try daemon.connect()
            _ = try AuthTests.call(other, id: 1, "auth.register", #"{"username":"mallory","password":"correct horse"}"#)
            let login = try AuthTests.call(other, id: 2, "auth.login", #"{"username":"mallory","password":"correct horse"}"#)
            #expect(login["result"]?["token"] != nil, "reply: \(login)")
            let otherChat = try #require(try AuthTests.call(other, id: 3, "chats.create", #"{"title":"theirs"}"#)["result"]?["id"]?.stringValue)
            let otherAppend = try AuthTests.call(other, id: 4, "chats.messages.append", #"{"chatId":"\#(otherChat)","role":"user","content":"\#(Self.quotaChunk)"}"#)
            #expect(otherAppend["result"]?["id"] != nil, "reply: \(otherAppend)")
            #expect(try Self.storedBytes(other, id: 5) == 6 + 8_000)

            // Deleting the chat gives its bytes back (title and messages).
            #expect(try AuthTests.call(owner, id: 60, "chats.delete", #"{"id":"\#(chatID)"}"#)["result"]?["deleted"] == .bool(true))
            #expect(try Self.storedBytes(owner, id: 61) == 0)
            let again = try #require(try AuthTests.call(owner, id: 62, "chats.create", #"{"title":"again"}"#)["result"]?["id"]?.stringValue)
            let append = try AuthTests.call(owner, id: 63, "chats.messages.append", #"{"chatId":"\#(again)","role":"user","content":"\#(Self.quotaChunk)"}"#)
            #expect(append["result"]?["id"] != nil, "reply: \(append)")
            usageBeforeKill = try Self.storedBytes(owner, id: 64)
            #expect(usageBeforeKill == 5 + 8_000)
            // kill -9: the counter is written in each write's transaction, not at shutdown.
        }

        let restarted = try DaemonProcess(socketPath: socket, arguments: arguments)
        defer { restarted.kill() }
        let owner = try restarted.connect()
        #expect(try Self.storedBytes(owner, id: 1) == usageBeforeKill)
    }
}
