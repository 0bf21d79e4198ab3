import Services
import Testing

@testable import CurlHTTP

/// The header-callback parser: interim and proxy blocks are dropped, the last block wins.
@Suite struct ResponseHeadParserTests {
    func feed(_ lines: [String]) -> [HTTPResponseHead] {
        var parser = ResponseHeadParser()
        var heads: [HTTPResponseHead] = []
        for line in lines {
            let bytes = Array(line.utf8)
            if case .blockEnded(let head) = bytes.withUnsafeBytes({ parser.feed($0) }) { heads.append(head) }
        }
        return heads
    }

    @Test func continueBlocksAreSkipped() {
        let heads = feed(["HTTP/1.1 100 Continue\r\n", "\r\n", "HTTP/1.1 200 OK\r\n", "X-A: 1\r\n", "\r\n"])
        #expect(heads.count == 1)
        #expect(heads.first?.status == 200)
        #expect(heads.first?.headers.map(\.name) == ["X-A"])
    }

    @Test func aProxyBlockThenTheResponseGivesTwoBlocksTheLastWins() {
        let heads = feed([
            "HTTP/1.1 200 Connection established\r\n", "Proxy-Agent: p\r\n", "\r\n",
            "HTTP/2 429 \r\n", "retry-after: 3\r\n", "x-folded: a\r\n", "\tb\r\n", "\r\n",
        ])
        #expect(heads.map(\.status) == [200, 429])
        #expect(heads.last?.header("Retry-After") == "3")
        #expect(heads.last?.header("x-folded") == "a b")
        #expect(heads.last?.header("proxy-agent") == nil)
    }

    @Test func trailersAfterTheBodyAreNoBlock() {
        #expect(feed(["HTTP/1.1 200 OK\n", "\n", "X-Trailer: t\r\n", "\r\n"]).count == 1)
    }

    @Test func redactionDropsQueryAndUserInfo() {
        #expect(CurlTransfer.redacted("https://user:pw@host.example/a/b?key=secret#f") == "https://host.example/a/b")
        #expect(CurlTransfer.redacted("http://host/x") == "http://host/x")
    }
}
