import NIOCore
import Testing

@testable import RPC

@Suite("Message parser")
struct RPCMessageParserTests {
    let parser = RPCMessageParser(maxDepth: 16, maxBatchLength: 4)

    private func request(_ text: String) throws -> RPCRequest {
        guard case .single(.request(let request)) = parser.parse(ByteBuffer(string: text)) else {
            throw ParseFailure(text: text)
        }
        return request
    }

    private func invalid(_ text: String) -> (RPCID?, RPCError)? {
        if case .single(.invalid(let id, let error)) = parser.parse(ByteBuffer(string: text)) { return (id, error) }
        return nil
    }

    struct ParseFailure: Error { let text: String }

    @Test("keeps ids exactly as written", arguments: ["9007199254740993", "1.50", "-0", "\"a\\\"b\"", "null", "1e400"])
    func idsExact(_ id: String) throws {
        let parsed = try request("{\"jsonrpc\":\"2.0\",\"id\":\(id),\"method\":\"m\"}")
        #expect(parsed.id?.json == id)
    }

    @Test("a request without id is a notification")
    func notification() throws {
        #expect(try request("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[1]}").isNotification)
    }

    @Test("params keep their raw bytes and kind")
    func params() throws {
        let byPosition = try request("{\"params\" : [1, {\"x\":2}] ,\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":1}")
        #expect(byPosition.paramsAreByPosition)
        #expect(byPosition.params.map { String(buffer: $0) } == "[1, {\"x\":2}]")
        let byName = try request("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":1,\"params\":{\"a\":\"b\"}}")
        #expect(!byName.paramsAreByPosition)
        #expect(byName.params.map { String(buffer: $0) } == "{\"a\":\"b\"}")
    }

    @Test("escaped method names and keys decode")
    func escapes() throws {
        let parsed = try request("{\"jsonr\\u0070c\":\"2.0\",\"id\":1,\"method\":\"sys\\u0074em.\\\"x\\\"\"}")
        #expect(parsed.method == "system.\"x\"")
    }

    @Test("invalid requests keep the id when it is readable")
    func invalidKeepsID() {
        let noVersion = invalid("{\"id\":7,\"method\":\"m\"}")
        #expect(noVersion?.0 == RPCID(7))
        #expect(noVersion?.1.code == .invalidRequest)
        #expect(invalid("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":1}")?.0 == RPCID(7))
        #expect(invalid("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"m\",\"params\":\"x\"}")?.1.code == .invalidRequest)
        #expect(invalid("{\"jsonrpc\":\"1.0\",\"id\":7,\"method\":\"m\"}")?.1.code == .invalidRequest)
        let badID = invalid("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"m\"}")
        #expect(badID?.0 == nil && badID?.1.code == .invalidRequest)
    }

    @Test("too deep params are refused with the id and the actual depth")
    func tooDeep() {
        let params = String(repeating: "[", count: 20) + String(repeating: "]", count: 20)
        let result = invalid("{\"jsonrpc\":\"2.0\",\"id\":\"d\",\"method\":\"m\",\"params\":\(params)}")
        #expect(result?.0 == RPCID(string: "d"))
        #expect(result?.1.code == .nestingTooDeep)
        #expect(result?.1.data?.text.contains("\"actual\":21") == true)
    }

    @Test("batches: members parsed individually, empty and oversized refused")
    func batches() {
        guard case .batch(let entries) = parser.parse(ByteBuffer(string: "[1, {\"jsonrpc\":\"2.0\",\"method\":\"m\"}, {\"foo\":1}]")) else {
            Issue.record("not a batch")
            return
        }
        #expect(entries.count == 3)
        guard case .failed(let empty) = parser.parse(ByteBuffer(string: " [ ] ")) else {
            Issue.record("empty batch accepted")
            return
        }
        #expect(empty.code == .invalidRequest)
        guard case .failed(let large) = parser.parse(ByteBuffer(string: "[1,2,3,4,5,6]")) else {
            Issue.record("oversized batch accepted")
            return
        }
        #expect(large.code == .batchTooLarge)
        #expect(large.data?.text.contains("\"actual\":6") == true)
    }

    @Test(
        "any syntax error makes the whole message a parse error",
        arguments: [
            "{\"jsonrpc\": \"2.0\", \"method\": \"foobar, \"params\": \"bar\", \"baz]",
            "[{\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"params\": [1,2,4], \"id\": \"1\"},{\"jsonrpc\": \"2.0\", \"method\"]",
            "{} {}", "",
        ])
    func parseErrors(_ text: String) {
        guard case .failed(let error) = parser.parse(ByteBuffer(string: text)) else {
            Issue.record("parsed: \(text)")
            return
        }
        #expect(error.code == .parseError)
    }

    @Test("a scalar is an invalid request, not a parse error")
    func scalar() {
        guard case .failed(let error) = parser.parse(ByteBuffer(string: "42")) else {
            Issue.record("accepted a scalar")
            return
        }
        #expect(error.code == .invalidRequest)
    }

    @Test("the id of an oversized message is found in its prefix")
    func idFromPrefix() {
        #expect(
            findRequestID(inPrefix: ByteBuffer(string: "{\"jsonrpc\":\"2.0\",\"params\":{\"a\":[1,\"}\"]},\"id\":42,\"method\":\"x")) == RPCID(42))
        #expect(findRequestID(inPrefix: ByteBuffer(string: "{\"jsonrpc\":\"2.0\",\"params\":{\"a\":[1,2,3")) == nil)
    }
}
