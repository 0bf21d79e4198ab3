import Foundation
import Testing

@testable import Storage

/// The hand-written timestamp format writes what Foundation's ISO8601FormatStyle writes, and reads
/// back the same instant.
@Suite("Timestamp")
struct TimestampTests {
    @Test("whole-millisecond instants from 1970 to 2200: the format style's text, read back exactly")
    func wholeMilliseconds() throws {
        var generator = SystemRandomNumberGenerator()
        let special: [Int64] = [0, 1, 999, 86_399_999, 951_782_400_000, 1_709_164_800_500, 4_102_444_800_000, 7_258_118_399_999]
        let random = (0..<20_000).map { _ in Int64.random(in: 0..<7_258_118_400_000, using: &generator) }
        var mismatches = 0
        for milliseconds in special + random {
            let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            let text = Timestamp.text(date)
            // Foundation is exact on whole seconds; the milliseconds are the integer's.
            let whole = Timestamp.style.format(Date(timeIntervalSince1970: Double(milliseconds / 1000)))
            let expected = whole.dropLast(4) + String(format: "%03d", Int(milliseconds % 1000)) + "Z"
            let parsed = try Timestamp.date(text)
            if text != expected || parsed != date { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }

    @Test("any instant reads back within half a millisecond; text sorts in time order")
    func anyInstant() throws {
        var generator = SystemRandomNumberGenerator()
        let instants = (0..<5_000).map { _ in Double.random(in: 0..<7_258_118_400, using: &generator) }.sorted()
        let texts = instants.map { Timestamp.text(Date(timeIntervalSince1970: $0)) }
        #expect(texts == texts.sorted())
        for (seconds, text) in zip(instants, texts) {
            #expect(abs(try Timestamp.date(text).timeIntervalSince1970 - seconds) <= 0.0005 + 1e-6, "\(text)")
        }
    }

    @Test("other ISO 8601 forms still parse (fallback); garbage throws")
    func fallback() throws {
        #expect(try Timestamp.date("2026-01-31T12:00:00Z") == Date(timeIntervalSince1970: 1_769_860_800))
        #expect(throws: (any Error).self) { try Timestamp.date("2026-13-31T12:00:00.000Z") }
        #expect(throws: (any Error).self) { try Timestamp.date("yesterday") }
    }
}
