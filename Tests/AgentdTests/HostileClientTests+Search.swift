import Foundation
import Testing

/// Issue 17, item 12: a search query's words are bounded (each word is a phrase FTS5 matches
/// against the whole index, everyone's rows, before the owner filter applies).
extension HostileClientTests {
    @Test("search.query takes at most 64 words, counted as the index splits them: more is -32602 naming the limit")
    func searchWordsAreBounded() throws {
        try withDaemon { daemon in
            let client = ClientConnection(try daemon.connect())
            _ = try client.result("modules.create", #"{"title":"w1 w2 w3","content":"\#((1...64).map { "w\($0)" }.joined(separator: " "))"}"#)

            let tooMany = try client.call("search.query", #"{"query":"\#((1...65).map { "w\($0)" }.joined(separator: " "))"}"#)
            #expect(tooMany["error"]?["code"]?.intValue == -32602, "\(tooMany)")
            #expect(tooMany["error"]?["data"]?["field"]?.stringValue == "query", "\(tooMany)")
            #expect(tooMany["error"]?["data"]?["limit"]?.intValue == 64, "\(tooMany)")
            #expect(tooMany["error"]?["data"]?["actual"]?.intValue == 65, "\(tooMany)")
            #expect(tooMany["error"]?["data"]?["reason"]?.stringValue?.contains("64 words") == true, "\(tooMany)")

            // Words joined by punctuation are still words to the index (one phrase of 200 here).
            let joined = try client.call("search.query", #"{"query":"\#(String(repeating: "a-", count: 199))a"}"#)
            #expect(joined["error"]?["data"]?["actual"]?.intValue == 200, "\(joined)")

            let sixtyFour = try client.result("search.query", #"{"query":"\#((1...64).map { "w\($0)" }.joined(separator: " "))"}"#)
            #expect(sixtyFour["items"]?.arrayValue?.count == 1, "\(sixtyFour)")
        }
    }
}
