import NIOCore
import Testing

@testable import RPC

/// Inputs the fuzz targets (fuzz/run.sh) found crashing, each with the fix's expectation. The name
/// says which target found it; the input is the crash file's bytes (minimised when that was clear).
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    /// What the frame decoder produces from `input` cut into `chunk`-byte reads, then end of input.
    static func frames(_ input: [UInt8], chunk: Int, limit: Int) -> [RPCFrameDecoder.Output] {
        var decoder = RPCFrameDecoder(maxMessageBytes: limit)
        var buffer = ByteBuffer()
        var outputs: [RPCFrameDecoder.Output] = []
        var offset = 0
        while offset < input.count {
            let end = min(input.count, offset + chunk)
            buffer.writeBytes(input[offset..<end])
            offset = end
            while let output = decoder.next(&buffer) { outputs.append(output) }
        }
        while let output = decoder.nextAtEnd(&buffer) { outputs.append(output) }
        return outputs
    }

    @Test(
        "FuzzFraming: a last line without newline of maxMessageBytes + 1 bytes is skipped as oversized at end of input, not delivered over the limit")
    func lastLineOneOverTheLimit() {
        // crash-15798d68…: 0xff (chunk 64, limit 64) then 64 x 0xff and "`": 65 bytes, no newline.
        let line = [UInt8](repeating: 0xFF, count: 64) + [UInt8(ascii: "`")]
        let outputs = Self.frames(line, chunk: 64, limit: 64)
        for output in outputs {
            if case .message(let message) = output {
                Issue.record("a message of \(message.readableBytes) bytes over the limit of 64 was delivered")
            }
        }
        #expect(
            outputs.contains {
                if case .event(.oversized(_, let size)) = $0 { return size == 65 }
                return false
            })
        // At exactly the limit, and with a trailing "\r" that is not part of the message, it is delivered.
        let atLimit = Self.frames([UInt8](repeating: UInt8(ascii: "x"), count: 64) + [0x0D], chunk: 64, limit: 64)
        #expect(
            atLimit.contains {
                if case .message(let message) = $0 { return message.readableBytes == 64 }
                return false
            })
    }

    @Test("FuzzJSON: the lenient skip never leaves the scanner past the end (a string ending in a backslash at the end of input)")
    func lenientSkipStopsAtTheEnd() {
        // crash-6c0a3185…: `{"[\` (the lenient skip then read one byte past the buffer).
        for input in [#"{"[\"#, #"["\"#, #"{"a":"\"#] {
            let bytes = Array(input.utf8)
            bytes.withUnsafeBytes { raw in
                var scanner = JSONScanner(raw, maxDepth: 16)
                let skipped = scanner.skipValueLeniently()
                let index = scanner.index
                #expect(!skipped)
                #expect(index <= raw.count, "index \(index) past \(raw.count) for \(input)")
            }
        }
        // Through the parser: a member too deep for the limit whose string ends the input.
        let parser = RPCMessageParser(maxDepth: 1, maxBatchLength: 10)
        guard case .failed(let error) = parser.parse(ByteBuffer(string: #"[{"a":[{"b":"\"#)) else {
            Issue.record("an unterminated message parsed")
            return
        }
        #expect(error.code == .parseError)
    }
}
