// libFuzzer target: RPCFrameDecoder (newline and Content-Length framing, the size limit, skipping).
// The input is split into reads at arbitrary points (its first byte picks the chunk size) so that
// partial frames, headers cut anywhere and skips across reads are all reached.
import NIOCore
import RPC

#if !FUZZING
import FuzzSupport
#endif

func fuzzFraming(_ input: UnsafeRawBufferPointer) {
    guard let first = input.first else { return }
    let chunk = Int(first % 64) + 1
    // A small limit so that the oversized paths are reached with small inputs.
    let limit = (first & 0x40) != 0 ? 64 : 4096
    var decoder = RPCFrameDecoder(maxMessageBytes: limit)
    var buffer = ByteBuffer()
    var offset = 1
    var messages = 0
    while offset < input.count {
        let end = min(input.count, offset + chunk)
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: input[offset..<end]))
        offset = end
        while let output = decoder.next(&buffer) {
            check(output, limit: limit, &messages)
        }
        buffer.discardReadBytes()
    }
    while let output = decoder.nextAtEnd(&buffer) {
        check(output, limit: limit, &messages)
    }
}

/// Invariants: a message never exceeds the limit, an oversized prefix stays within 4 KiB, and
/// decoding always makes progress (bounded by the input's size).
func check(_ output: RPCFrameDecoder.Output, limit: Int, _ messages: inout Int) {
    messages += 1
    precondition(messages < 1_000_000, "decoder produced outputs without consuming input")
    switch output {
    case .message(let message):
        precondition(message.readableBytes <= limit, "message over the limit: \(message.readableBytes) > \(limit)")
    case .event(.oversized(let prefix, let size)):
        precondition(prefix.readableBytes <= 4096, "oversized prefix \(prefix.readableBytes)")
        precondition(size > limit, "oversized event for \(size) bytes under the limit \(limit)")
    case .event:
        break
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzFraming(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#else
@main
enum Replay {
    static func main() { CorpusReplay.main(fuzzFraming) }
}
#endif
