import Services
import Testing

@Suite("SSE parser")
struct SSEParserTests {
    /// Parses `bytes` fed as `chunks`, then finishes.
    static func parse(_ chunks: [ArraySlice<UInt8>], maxEventBytes: Int = 8 << 20) throws -> [SSEEvent] {
        var parser = SSEParser(maxEventBytes: maxEventBytes)
        var events: [SSEEvent] = []
        for chunk in chunks { events += try parser.feed(chunk) }
        return events + (try parser.finish())
    }

    /// Every way to cut `text` in two and in three pieces gives the same events as feeding it whole.
    static func expectSplitInvariant(_ text: String, _ expected: [SSEEvent], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let bytes = Array(text.utf8)
        #expect(try parse([bytes[...]]) == expected, sourceLocation: sourceLocation)
        for cut in 0...bytes.count {
            let events = try parse([bytes[..<cut], bytes[cut...]])
            #expect(events == expected, "split at \(cut)", sourceLocation: sourceLocation)
            if events != expected { return }
        }
        // Byte by byte, and every chunk size.
        for size in 1...min(bytes.count, 64) {
            let chunks = stride(from: 0, to: bytes.count, by: size).map { bytes[$0..<min($0 + size, bytes.count)] }
            let events = try parse(chunks)
            #expect(events == expected, "chunks of \(size)", sourceLocation: sourceLocation)
            if events != expected { return }
        }
    }

    @Test("OpenAI's captured stream: data lines, blank-line separators, [DONE]; any split gives the same events")
    func openAICapture() throws {
        let first =
            #"{"id":"chatcmpl-CVFjOTBIgA3kuQLnIXXxtg7Ge7hbs","object":"chat.completion.chunk","created":1761564674,"model":"gpt-3.5-turbo-0125","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null,"obfuscation":"a"}"#
        let text = "data: \(first)\n\ndata: [DONE]\n\n"
        try Self.expectSplitInvariant(text, [SSEEvent(data: first), SSEEvent(data: "[DONE]")])
    }

    @Test("CRLF, CR and LF line ends, also a CR and its LF in different chunks")
    func lineEnds() throws {
        let expected = [SSEEvent(data: "a"), SSEEvent(data: "b"), SSEEvent(data: "c")]
        try Self.expectSplitInvariant("data: a\r\n\r\ndata: b\r\rdata: c\n\n", expected)
        try Self.expectSplitInvariant("data: a\r\n\r\ndata: b\r\n\r\ndata: c\r\n\r\n", expected)
    }

    @Test("multi-byte UTF-8 split anywhere is decoded whole; a BOM at the start is skipped")
    func utf8AndBOM() throws {
        try Self.expectSplitInvariant("\u{FEFF}data: héllo 🌍 日本\n\n", [SSEEvent(data: "héllo 🌍 日本")])
    }

    @Test("comments and keep-alives are ignored; event, id and retry are read; id carries over; unknown fields are ignored")
    func fields() throws {
        let text = ": keep-alive\n\n: OPENROUTER PROCESSING\nevent: delta\nid: 7\nretry: 1500\nfoo: bar\ndata: one\n\ndata: two\n\n"
        try Self.expectSplitInvariant(text, [SSEEvent(event: "delta", data: "one", id: "7"), SSEEvent(data: "two", id: "7")])
        var parser = SSEParser()
        _ = try parser.feed(Array(text.utf8))
        #expect(parser.reconnectionTime == 1500)
    }

    @Test("multi-line data is joined with \\n; no space after the colon is fine; a bare `data` line is an empty line of data")
    func multiLine() throws {
        try Self.expectSplitInvariant("data:{\"a\":\ndata: 1}\n\ndata\ndata:x\n\n", [SSEEvent(data: "{\"a\":\n1}"), SSEEvent(data: "\nx")])
    }

    @Test("llama.cpp's bare error line becomes an event named error, then [DONE] still arrives")
    func llamaCppErrorLine() throws {
        let line =
            #"error: {"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error"}"#
        try Self.expectSplitInvariant(
            line + "\n\ndata: [DONE]\n\n",
            [
                SSEEvent(
                    event: "error",
                    data:
                        #"{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error"}"#
                ),
                SSEEvent(data: "[DONE]"),
            ])
    }

    @Test("an event without its closing blank line is dispatched when the body ends; an event with no data is not")
    func endOfBody() throws {
        #expect(try Self.parse([Array("data: [DONE]".utf8)[...]]) == [SSEEvent(data: "[DONE]")])
        #expect(try Self.parse([Array("event: ping\n\n".utf8)[...]]) == [])
    }

    @Test("an event over the limit is an error, also when its line never ends")
    func bounded() throws {
        let big = "data: " + String(repeating: "x", count: 200) + "\n\n"
        #expect(throws: SSEParser.Failure.eventTooLarge(limit: 100)) { try Self.parse([Array(big.utf8)[...]], maxEventBytes: 100) }
        let lines = String(repeating: "data: 0123456789\n", count: 20)
        #expect(throws: SSEParser.Failure.eventTooLarge(limit: 100)) { try Self.parse([Array(lines.utf8)[...]], maxEventBytes: 100) }
        // Many small events in a row are fine: the bound is per event.
        let many = String(repeating: "data: 0123456789\n\n", count: 100)
        #expect(try Self.parse([Array(many.utf8)[...]], maxEventBytes: 100).count == 100)
    }
}
