// libFuzzer target: the provider stream decoding every byte from an LLM server goes through — the
// SSE parser (SSEParser) and the Chat Completions decoder (OpenAIChatStreamDecoder) — fed the input
// whole and cut into reads at points the input's first bytes choose. Checks: no crash, the same
// events whatever the cut, at most one `.finished` and it comes last, events bounded by the input.
import Services

#if !FUZZING
import FuzzSupport
#endif

/// The SSE events of `body` read in pieces of `sizes` (cycled), or nil when the parser refused it.
func events(of body: UnsafeRawBufferPointer, sizes: [Int]) -> [SSEEvent]? {
    var parser = SSEParser(maxEventBytes: 4096)
    var out: [SSEEvent] = []
    var offset = 0
    var turn = 0
    do {
        while offset < body.count {
            let size = max(1, sizes[turn % sizes.count])
            turn += 1
            let end = min(body.count, offset + size)
            out += try parser.feed(body[offset..<end])
            offset = end
        }
        out += try parser.finish()
    } catch {
        return nil
    }
    return out
}

func fuzzSSE(_ input: UnsafeRawBufferPointer) {
    guard input.count >= 2 else { return }
    let sizes = [Int(input[0] % 17) + 1, Int(input[1] % 5) + 1]
    let body = UnsafeRawBufferPointer(rebasing: input[2...])
    let whole = events(of: body, sizes: [body.count + 1])
    let cut = events(of: body, sizes: sizes)
    precondition((whole == nil) == (cut == nil), "refused whole but not cut, or the reverse")
    guard let whole, let cut else { return }
    precondition(whole == cut, "the events depend on where the reads were cut")
    precondition(whole.count <= body.count + 1, "more events than bytes")

    var decoder = OpenAIChatStreamDecoder(provider: "fuzz", requestedModel: "fuzz-model", promptBytes: body.count)
    var decoded: [LLMStreamEvent] = []
    do {
        for event in whole { decoded += try decoder.decode(event) }
        decoded += try decoder.finish()
    } catch {
        return  // an LLMError (stream broken, provider error event, …) is an answer, not a crash
    }
    let finishes = decoded.indices.filter { if case .finished = decoded[$0] { return true } else { return false } }
    precondition(finishes.count <= 1, "more than one .finished")
    if let last = finishes.first { precondition(last == decoded.count - 1, ".finished is not last") }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzSSE(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#else
@main
enum Replay {
    static func main() { CorpusReplay.main(fuzzSSE) }
}
#endif
