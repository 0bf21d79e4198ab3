import NIOCore
import Testing

@testable import RPC

@Suite("Frame decoder")
struct RPCFrameDecoderTests {
    /// Feeds `chunks` one by one (as reads arrive) and returns what the decoder produced.
    private func frames(_ chunks: [String], maxMessageBytes: Int = 64, close: Bool = false) throws -> [String] {
        var decoder = RPCFrameDecoder(maxMessageBytes: maxMessageBytes)
        var framing: RPCFraming?
        var seen: [String] = []
        var buffer = ByteBuffer()
        func record(_ output: RPCFrameDecoder.Output) {
            switch output {
            case .message(let message): seen.append("\(framing == .contentLength ? "L" : "N"):\(String(buffer: message))")
            case .event(.framingDetected(let detected)): framing = detected
            case .event(.oversized(let prefix, let size)): seen.append("big:\(size):\(String(buffer: prefix).prefix(8))")
            case .event(.unframeable(let reason)): seen.append("bad:\(reason)")
            }
        }
        for chunk in chunks {
            buffer.writeString(chunk)
            while let output = decoder.next(&buffer) { record(output) }
        }
        if close {
            while let output = decoder.nextAtEnd(&buffer) { record(output) }
        }
        return seen
    }

    @Test("lines: LF, CRLF, blank lines, split and coalesced writes")
    func lines() throws {
        #expect(try frames(["{\"a\":1}\n\r\n  \n{\"b\":2}\r\n{\"c\"", ":3}\n"]) == ["N:{\"a\":1}", "N:{\"b\":2}", "N:{\"c\":3}"])
        let oneByteAtATime = "{\"x\":[1,2]}\n".map { String($0) }
        #expect(try frames(oneByteAtATime) == ["N:{\"x\":[1,2]}"])
    }

    @Test("a last line without newline is delivered at end of input")
    func lastLine() throws {
        #expect(try frames(["{\"a\":1}\n{\"b\":2}"], close: true) == ["N:{\"a\":1}", "N:{\"b\":2}"])
    }

    @Test("Content-Length: headers in any case, extra headers, split anywhere")
    func contentLength() throws {
        let body = "{\"id\":1}"
        let message = "Content-Length: \(body.utf8.count)\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n\(body)"
        #expect(try frames([message + message]) == ["L:\(body)", "L:\(body)"])
        let split = message.map { String($0) }
        #expect(try frames(split) == ["L:\(body)"])
        #expect(try frames(["content-length:8\r\n\r\n\(body)"]) == ["L:\(body)"])
    }

    @Test("an oversized line is skipped without buffering and the next one is served")
    func oversizedLine() throws {
        let big = "{\"id\":9,\"p\":\"" + String(repeating: "x", count: 200) + "\"}"
        let chunks = stride(from: 0, to: big.count, by: 10).map { String(big.dropFirst($0).prefix(10)) } + ["\n{\"ok\":1}\n"]
        let result = try frames(chunks)
        #expect(result == ["big:\(big.utf8.count):{\"id\":9,", "N:{\"ok\":1}"])
    }

    @Test("an oversized Content-Length body is skipped and the next one is served")
    func oversizedBody() throws {
        let big = String(repeating: "y", count: 100)
        let result = try frames(["Content-Length: 100\r\n\r\n", big.prefix(30) + "", big.dropFirst(30) + "Content-Length: 2\r\n\r\n{}"])
        #expect(result == ["big:100:yyyyyyyy", "L:{}"])
    }

    @Test("a header without Content-Length cannot be framed")
    func badHeader() throws {
        #expect(try frames(["Content-Type: x\r\n\r\n{}"]) == ["bad:missing Content-Length header"])
        #expect(try frames(["Content-Length: -3\r\n\r\n"]) == ["bad:invalid Content-Length"])
    }
}
