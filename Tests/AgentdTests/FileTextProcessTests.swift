import AgentdTesting
import Foundation
import Testing

/// The real binary with the real pdftotext: a PDF imported over the socket has its text extracted
/// by the daemon's own job, announced by `file.text_extracted`, and found by `search.query`.
@Suite("File texts (the binary)", .blockingIO, .timeLimit(.minutes(2)))
struct FileTextProcessTests {
    @Test("over the socket: files.import of a PDF, file.text_extracted ready, its text found by search.query (v2); a damaged one failed")
    func pdfOverTheSocket() throws {
        let folder = try TemporaryDirectory()
        let good = folder.path + "/minutes.pdf"
        let bad = folder.path + "/broken.pdf"
        try MinimalPDF.make(pages: ["Board minutes about the capybara budget"]).write(to: URL(fileURLWithPath: good))
        try Data("%PDF-1.5\nnothing more\n".utf8).write(to: URL(fileURLWithPath: bad))
        try withDaemon { daemon in
            let subscriber = try daemon.connect()
            let subscribed = try AuthTests.call(subscriber, id: 1, "events.subscribe", #"{"topics":["file.text_extracted"]}"#)
            #expect(subscribed["result"]?["subscription"] != nil, "reply: \(subscribed)")

            let client = try daemon.connect()
            let imported = try AuthTests.call(client, id: 1, "files.import", #"{"path":"\#(good)"}"#)
            let fileID = try #require(imported["result"]?["id"]?.stringValue, "reply: \(imported)")
            #expect(imported["result"]?["mediaType"]?.stringValue == "application/pdf")
            let event = try subscriber.readJSON(timeout: .seconds(60))
            #expect(event["params"]?["topic"]?.stringValue == "file.text_extracted", "\(event)")
            #expect(event["params"]?["data"]?["fileId"]?.stringValue == fileID, "\(event)")
            #expect(event["params"]?["data"]?["state"]?.stringValue == "ready", "\(event)")

            let found = try AuthTests.call(client, id: 2, "v2.search.query", #"{"query":"capybara budget","kinds":["files"]}"#)
            let items = try #require(found["result"]?["items"]?.arrayValue, "reply: \(found)")
            #expect(items.map { $0["id"]?.stringValue } == [fileID], "reply: \(found)")
            #expect(items.first?["kind"]?.stringValue == "file" && items.first?["title"]?.stringValue == "minutes.pdf", "reply: \(found)")
            // docs/SEARCH.md's example.
            #expect(items.first?["snippet"]?.stringValue == "Board minutes about the ⟦capybara⟧ ⟦budget⟧", "reply: \(found)")
            #expect(items.first?["mediaType"]?.stringValue == "application/pdf", "reply: \(found)")

            let broken = try AuthTests.call(client, id: 3, "files.import", #"{"path":"\#(bad)"}"#)
            let brokenID = try #require(broken["result"]?["id"]?.stringValue, "reply: \(broken)")
            let failed = try subscriber.readJSON(timeout: .seconds(60))
            #expect(failed["params"]?["data"]?["fileId"]?.stringValue == brokenID, "\(failed)")
            #expect(failed["params"]?["data"]?["state"]?.stringValue == "failed", "\(failed)")
            #expect(failed["params"]?["data"]?["error"]?.stringValue?.contains("could not read the PDF") == true, "\(failed)")
        }
    }
}
