import AgentdTesting
import Foundation
import Services
import Testing

@Suite("Time-ordered ids")
struct IDGeneratorTests {
    @Test("an id is the prefix and 32 hex digits; a later millisecond sorts after, ids within one are unique")
    func ordered() {
        let clock = TestClock()
        let ids = TimeOrderedIDGenerator(clock: clock)
        var previous = ids.makeID(prefix: "msg_")
        var seen: Set<String> = [previous]
        for _ in 0..<200 {
            clock.advance(by: 0.002)
            let sameMillisecond = (0..<5).map { _ in ids.makeID(prefix: "msg_") }
            for id in sameMillisecond {
                #expect(id.hasPrefix("msg_"))
                #expect(id.dropFirst(4).count == 32)
                #expect(id.dropFirst(4).allSatisfy { $0.isHexDigit && !$0.isUppercase })
                #expect(id > previous, "\(id) after \(previous)")
                #expect(seen.insert(id).inserted)
            }
            previous = sameMillisecond.max()!
        }
        // The first 12 digits are the clock's milliseconds.
        let millis = UInt64(clock.now().timeIntervalSince1970 * 1000)
        #expect(ids.makeID(prefix: "").prefix(12) == String(millis, radix: 16).leftPadded(to: 12))
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
