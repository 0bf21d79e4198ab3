import AgentdTesting
import Foundation
import RPC
import Services
import Testing

/// Issue 17, item 12: a search query's words are bounded (each word is a phrase FTS5 matches
/// against the whole index, everyone's rows, before the owner filter applies).
extension HostileClientTests {
    @Test("search.query takes at most 64 words, counted as the index splits them: more is -32602 naming the limit")
    func searchWordsAreBounded() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            _ = try await client.send(Modules.Create.self, .init(title: "w1 w2 w3", content: (1...64).map { "w\($0)" }.joined(separator: " ")))

            let tooMany = await #expect(throws: RPCError.self) {
                try await client.send(Search.Query.self, .init(query: (1...65).map { "w\($0)" }.joined(separator: " ")))
            }
            #expect(tooMany?.code.rawValue == -32602, "\(String(describing: tooMany))")
            #expect(tooMany?.dataValue?["field"]?.stringValue == "query", "\(String(describing: tooMany))")
            #expect(tooMany?.dataValue?["limit"]?.intValue == 64, "\(String(describing: tooMany))")
            #expect(tooMany?.dataValue?["actual"]?.intValue == 65, "\(String(describing: tooMany))")
            #expect(tooMany?.dataValue?["reason"]?.stringValue?.contains("64 words") == true, "\(String(describing: tooMany))")

            // Words joined by punctuation are still words to the index (one phrase of 200 here).
            let joined = await #expect(throws: RPCError.self) {
                try await client.send(Search.Query.self, .init(query: String(repeating: "a-", count: 199) + "a"))
            }
            #expect(joined?.dataValue?["actual"]?.intValue == 200, "\(String(describing: joined))")

            let sixtyFour = try await client.send(Search.Query.self, .init(query: (1...64).map { "w\($0)" }.joined(separator: " ")))
            #expect(sixtyFour.items.count == 1, "\(sixtyFour)")
        }
    }
}
