import Foundation
import Testing

@testable import RPC

/// Encodes a value with `RPCJSONEncoder` and with the reference, `JSONWriter.makeEncoder()`
/// (Foundation's `JSONEncoder`), and records an issue unless both give the same bytes or both throw
/// the same `EncodingError`.
///
/// - Parameter streams: also require that `RPCJSONEncoder` wrote the bytes itself instead of falling
///   back to `JSONEncoder`.
/// - Returns: whether the two agreed.
@discardableResult
func expectSameEncoding<T: Encodable>(
    _ value: T, streams: Bool = true, _ context: @autoclosure () -> String = "", sourceLocation: SourceLocation = #_sourceLocation
) -> Bool {
    let expected = Result { try Array(JSONWriter.makeEncoder().encode(value)) }
    let actual = Result { try RPCJSONEncoder().encodeToBytes(value) }
    switch (expected, actual) {
    case (.success(let expected), .success(let actual)):
        guard actual == expected else {
            Issue.record(
                "\(context())\nRPCJSONEncoder: \(String(decoding: actual, as: UTF8.self))\nJSONEncoder:    \(String(decoding: expected, as: UTF8.self))",
                sourceLocation: sourceLocation)
            return false
        }
        if streams {
            let streamed = try? RPCJSONEncoder().streamedBytes(value)
            guard streamed == expected else {
                Issue.record("\(context())\nfell back to JSONEncoder (or streamed other bytes)", sourceLocation: sourceLocation)
                return false
            }
        }
        return true
    case (.failure(let expected), .failure(let actual)):
        guard describe(expected) == describe(actual) else {
            Issue.record(
                "\(context())\nRPCJSONEncoder threw: \(describe(actual))\nJSONEncoder threw:    \(describe(expected))", sourceLocation: sourceLocation
            )
            return false
        }
        return true
    case (.success(let expected), .failure(let error)):
        Issue.record(
            "\(context())\nRPCJSONEncoder threw \(describe(error)); JSONEncoder wrote \(String(decoding: expected, as: UTF8.self))",
            sourceLocation: sourceLocation)
        return false
    case (.failure(let error), .success(let actual)):
        Issue.record(
            "\(context())\nJSONEncoder threw \(describe(error)); RPCJSONEncoder wrote \(String(decoding: actual, as: UTF8.self))",
            sourceLocation: sourceLocation)
        return false
    }
}

/// An error's kind, message and coding path, for comparing the two encoders' errors.
private func describe(_ error: any Error) -> String {
    guard let error = error as? EncodingError, case .invalidValue(_, let context) = error else { return "\(error)" }
    return "invalidValue at [\(context.codingPath.map(\.stringValue).joined(separator: ", "))]: \(context.debugDescription)"
}

/// A seeded generator (SplitMix64), so that a failing randomized case can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Values that trouble JSON writers.
enum NastyValues {
    /// Pieces strings are made of: every control character, quotes, backslashes, slashes, DEL,
    /// non-ASCII of every UTF-8 length, combining marks, line and paragraph separators.
    static let stringPieces: [String] =
        (0..<0x20).map { String(UnicodeScalar(UInt8($0))) } + [
            "\"", "\\", "/", "\u{7F}", "a", "Z", "0", " ", "é", "e\u{301}", "ß", "日本", "😀", "👩‍👩‍👧", "\u{2028}", "\u{2029}",
            "\u{FEFF}", "</script>", "\\u0041", "plain words ", "http://example.com/a?b=c", "\u{10FFFF}",
        ]

    static func string(_ random: inout SeededGenerator, maxPieces: Int = 12) -> String {
        if Int.random(in: 0..<8, using: &random) == 0 {
            // Long and mostly clean: the escaper's word-at-a-time path, with the odd escape.
            var text = String(repeating: "content of a module, ", count: Int.random(in: 1...20, using: &random))
            if Bool.random(using: &random) { text += stringPieces.randomElement(using: &random)! + "tail" }
            return text
        }
        return (0..<Int.random(in: 0...maxPieces, using: &random)).map { _ in stringPieces.randomElement(using: &random)! }.joined()
    }

    /// Keys whose UTF-8 order differs from other orders: case, digits, prefixes, the empty key,
    /// non-ASCII, and characters that are escaped (whose escaped bytes sort differently).
    static let keys: [String] = [
        "a", "b", "B", "A", "ab", "aB", "Ab", "_", "-", "id", "ID", "Id", "createdAt", "created_at", "createdat", "updatedAt",
        "10", "9", "1", "01", "", " ", "z", "Z", "é", "ß", "日本", "😀", "\"", "\\", "/", "a\nb", "\u{1}", "\u{7F}", "~", "items",
        "nextCursor", "x-errors", "x-notifications", "ü", "u", "v",
        // Around the eight-byte key prefix: NUL padding, exactly eight, nine, escapes and non-ASCII past it.
        "a\u{0}", "a\u{0}b", "\u{0}", "abcdefgh", "abcdefghi", "abcdefgh\u{0}", "abcdefg\"", "abcdefgh\"", "12345678é", "1234567é",
    ]

    static let integers: [Int] = [0, 1, -1, 9, 10, -10, 99, 100, 1_000_000, Int.max, Int.min, Int.max - 1, Int.min + 1, 1 << 53, -(1 << 53) - 1]

    static let doubles: [Double] = [
        0, -0.0, 1, -1, 0.1, 0.2, 0.30000000000000004, 1.5, -2.5, 100, 1e15, 1e16, 1e17, 1e21, 1e22, 1e-5, 1e-7, 123456789.125,
        1e300, -1e300, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, 2.2250738585072014e-308, Double.greatestFiniteMagnitude,
        -Double.greatestFiniteMagnitude,
        Double(Int.max), Double(Int64.min), 9_007_199_254_740_994, 1.0 / 3.0, .pi, 4.35, 0.000001, 1234567.0,
    ]

    static func double(_ random: inout SeededGenerator) -> Double {
        switch Int.random(in: 0..<3, using: &random) {
        case 0: return doubles.randomElement(using: &random)!
        case 1: return Double.random(in: -1e6...1e6, using: &random)
        default:
            // Any finite bit pattern.
            while true {
                let value = Double(bitPattern: random.next())
                if value.isFinite { return value }
            }
        }
    }

    static func float(_ random: inout SeededGenerator) -> Float {
        let specials: [Float] = [0, -0.0, 1, 0.1, 3.4e38, .leastNonzeroMagnitude, .leastNormalMagnitude, 16_777_216, 0.3]
        if Bool.random(using: &random) { return specials.randomElement(using: &random)! }
        while true {
            let value = Float(bitPattern: UInt32(truncatingIfNeeded: random.next()))
            if value.isFinite { return value }
        }
    }

    /// Dates with fractional seconds over the whole hand-formatted range, near its edges, before
    /// 1970, and outside it (which Foundation formats).
    static func date(_ random: inout SeededGenerator) -> Date {
        let range = JSONOutput.handFormattedDates
        switch Int.random(in: 0..<6, using: &random) {
        case 0: return Date(timeIntervalSinceReferenceDate: Double.random(in: range, using: &random))
        case 1: return Date(timeIntervalSince1970: Double.random(in: 1.6e9...1.9e9, using: &random))
        case 2:
            // A whole second, or one ulp either side of it.
            let whole = Double(Int64.random(in: -3_000_000_000...5_000_000_000, using: &random))
            return Date(timeIntervalSince1970: [whole, whole.nextUp, whole.nextDown].randomElement(using: &random)!)
        case 3:
            let edges = [range.lowerBound, range.upperBound, 0, -978_307_200, -978_307_200.5]
            let edge = edges.randomElement(using: &random)!
            return Date(timeIntervalSinceReferenceDate: edge + Double.random(in: -2...2, using: &random))
        case 4: return Date(timeIntervalSinceReferenceDate: Double.random(in: -7e10 ... -1.2e10, using: &random))  // 0-1600: Julian
        default: return Date(timeIntervalSinceReferenceDate: Double.random(in: 2.5e11...1e13, using: &random))  // years 10000+
        }
    }
}
