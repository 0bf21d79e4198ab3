// The cost of encoding one result, JSONEncoder (as RPCResultEncoder did) against RPCJSONEncoder (as
// it does now). Run through bench/encoder.sh, which builds it in release like the daemon.
import Foundation
import NIOCore
import RPC
import Services

/// A `modules.list` page: `count` modules like bench/storage.sh seeds (short content, one tag), or
/// with `contentBytes` of content and five tags.
func page(count: Int, contentBytes: Int? = nil) -> ModulesService.Page {
    let start = Date(timeIntervalSince1970: 1_795_755_813.123)
    return ModulesService.Page(
        items: (0..<count).map { index in
            Module(
                id: "mod_\(String(index, radix: 16).padding(toLength: 24, withPad: "0", startingAt: 0))", title: "Module \(index)",
                description: "seeded",
                content: contentBytes.map { String(repeating: "Lorem ipsum dolor sit amet, consectetur adipiscing. ", count: $0 / 52 + 1) + "\n" }
                    ?? "Some content for module \(index).",
                tags: contentBytes == nil ? ["bench"] : ["bench", "notes", "project/alpha", "todo", "2026"],
                createdAt: start.addingTimeInterval(Double(index) * 61.7), updatedAt: start.addingTimeInterval(Double(index) * 97.3))
        },
        nextCursor: "c_MTAwMDA")
}

/// Nanoseconds per call of `body`: the median of `rounds` rounds of `iterations` calls.
func measure(rounds: Int = 15, iterations: Int, _ body: () throws -> ByteBuffer) rethrows -> (median: Double, best: Double) {
    var bytes = 0
    for _ in 0..<iterations / 4 { bytes &+= try body().readableBytes }  // warm up: caches, pools, allocator
    var perCall: [Double] = []
    let clock = ContinuousClock()
    for _ in 0..<rounds {
        let elapsed = try clock.measure {
            for _ in 0..<iterations { bytes &+= try body().readableBytes }
        }
        perCall.append(
            Double(elapsed.components.attoseconds) / 1e9 / Double(iterations) + Double(elapsed.components.seconds) * 1e9 / Double(iterations))
    }
    precondition(bytes > 0)
    perCall.sort()
    return (perCall[perCall.count / 2], perCall[0])
}

let cases: [(name: String, page: ModulesService.Page, iterations: Int)] = [
    ("modules.list page, 50 modules as bench/storage.sh seeds", page(count: 50), 400),
    ("modules.list page, 50 modules with 1 KiB content, 5 tags", page(count: 50, contentBytes: 1024), 200),
    ("modules.get, 1 module", page(count: 1), 8000),
]

let arguments = CommandLine.arguments.dropFirst()
if arguments.first == "--profile" {
    // For perf or callgrind: only RPCJSONEncoder (or JSONEncoder, with `old`) on the first case.
    let count = arguments.dropFirst().first.flatMap(Int.init) ?? 20_000
    let value = cases[0].page
    var bytes = 0
    if arguments.contains("old") {
        for _ in 0..<count {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            bytes &+= try encoder.encode(value).count
        }
    } else {
        for _ in 0..<count { bytes &+= try RPCJSONEncoder().encode(value).readableBytes }
    }
    print(bytes)
    exit(0)
}
let rounds = arguments.first.flatMap(Int.init) ?? 15
print("ns per encode (median of \(rounds) rounds; best in parentheses)")
for (name, value, iterations) in cases {
    // What RPCResultEncoder did before: a JSONEncoder per call, its Data copied into a ByteBuffer.
    let old = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return ByteBuffer(bytes: try encoder.encode(value))
    }
    let new = { try RPCJSONEncoder().encode(value) }
    let oldBytes = try old()
    let newBytes = try new()
    precondition(oldBytes == newBytes, "the encoders disagree on \(name)")
    let before = try measure(rounds: rounds, iterations: iterations, old)
    let after = try measure(rounds: rounds, iterations: iterations, new)
    print("\(name) (\(oldBytes.readableBytes) bytes)")
    print(String(format: "  JSONEncoder     %10.0f ns  (%.0f)", before.median, before.best))
    print(String(format: "  RPCJSONEncoder  %10.0f ns  (%.0f)   %.1fx faster", after.median, after.best, before.median / after.median))
}
