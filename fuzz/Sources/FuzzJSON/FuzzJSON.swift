// libFuzzer target: the JSON scanner and the JSON-RPC envelope parser (RPCMessageParser), the code
// every byte a client sends goes through before any handler: validation, depth limits, batches,
// ids, the oversized-message id finder.
import NIOCore
import RPC

#if !FUZZING
import FuzzSupport
#endif

func fuzzJSON(_ input: UnsafeRawBufferPointer) {
    // The parser exactly as a connection runs it (default limits), then with tight ones.
    let buffer = ByteBuffer(bytes: input)
    for parser in [RPCMessageParser(maxDepth: 64, maxBatchLength: 1000), RPCMessageParser(maxDepth: 3, maxBatchLength: 2)] {
        switch parser.parse(buffer) {
        case .single(let entry): checkEntry(entry)
        case .batch(let entries):
            precondition(!entries.isEmpty && entries.count <= parser.maxBatchLength, "batch of \(entries.count)")
            entries.forEach(checkEntry)
        case .failed: break
        }
    }
    // The scanner on its own: strict and lenient skipping stay within the input.
    var scanner = JSONScanner(input, maxDepth: 16)
    scanner.skipWhitespace()
    if scanner.peek() != nil {
        _ = try? scanner.skipValue(depth: 0)
        precondition(scanner.index <= input.count, "scanner ran past the end")
    }
    var lenient = JSONScanner(input, maxDepth: 16)
    lenient.skipWhitespace()
    if lenient.peek() != nil {
        _ = lenient.skipValueLeniently()
        precondition(lenient.index <= input.count, "lenient skip ran past the end")
    }
    precondition(JSONScanner.maximumDepth(of: input) >= 0)
    // The id finder sees arbitrary prefixes of oversized messages.
    _ = findRequestID(inPrefix: buffer)
}

func checkEntry(_ entry: RPCMessage.Entry) {
    if case .request(let request) = entry, let params = request.params {
        // Params are an object or an array, by the spec.
        let first = params.getInteger(at: params.readerIndex, as: UInt8.self)
        precondition(first == UInt8(ascii: "{") || first == UInt8(ascii: "["), "params that are not a container")
        precondition(request.paramsAreByPosition == (first == UInt8(ascii: "[")))
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzJSON(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#else
@main
enum Replay {
    static func main() { CorpusReplay.main(fuzzJSON) }
}
#endif
