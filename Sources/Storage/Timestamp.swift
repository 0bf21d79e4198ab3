import Foundation
import Services

/// Timestamps as the schema stores them: ISO 8601 UTC text with milliseconds, which sorts as text
/// in time order (`2026-01-31T12:00:00.000Z`).
///
/// Formatted and parsed by hand: Foundation's `ISO8601FormatStyle` costs microseconds per call,
/// which showed up on the group-committed append path (every message has a timestamp, and a
/// page of 50 rows parses 100). The text has the shape `ISO8601FormatStyle` with fractional seconds
/// writes, to the nearest millisecond; any other ISO 8601 text is parsed by it as a fallback.
enum Timestamp {
    static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    static func text(_ date: Date) -> String {
        // The nearest millisecond, so an instant with whole milliseconds reads back exactly
        // (rounding down, as the format style does, turns 0.999 into .998 through binary fractions).
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        guard milliseconds >= 0, milliseconds < 253_402_300_800_000 else { return style.format(date) }  // years 1970–9999
        let (days, dayMilliseconds) = milliseconds.quotientAndRemainder(dividingBy: 86_400_000)
        let (year, month, day) = CivilDate.civil(fromDays: days)
        let seconds = dayMilliseconds / 1000
        var bytes = [UInt8](repeating: 0, count: 24)
        func put(_ value: Int64, at offset: Int, digits: Int) {
            var value = value
            for index in stride(from: offset + digits - 1, through: offset, by: -1) {
                bytes[index] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            }
        }
        put(year, at: 0, digits: 4)
        bytes[4] = UInt8(ascii: "-")
        put(month, at: 5, digits: 2)
        bytes[7] = UInt8(ascii: "-")
        put(day, at: 8, digits: 2)
        bytes[10] = UInt8(ascii: "T")
        put(seconds / 3600, at: 11, digits: 2)
        bytes[13] = UInt8(ascii: ":")
        put(seconds / 60 % 60, at: 14, digits: 2)
        bytes[16] = UInt8(ascii: ":")
        put(seconds % 60, at: 17, digits: 2)
        bytes[19] = UInt8(ascii: ".")
        put(dayMilliseconds % 1000, at: 20, digits: 3)
        bytes[23] = UInt8(ascii: "Z")
        return String(decoding: bytes, as: UTF8.self)
    }

    static func date(_ text: String) throws -> Date {
        if let date = fastDate(text) { return date }
        return try style.parse(text)
    }

    /// `yyyy-MM-ddTHH:mm:ss.SSSZ` exactly; nil for anything else.
    private static func fastDate(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { bytes -> Date? in
            guard bytes.count == 24, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
                bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"), bytes[19] == UInt8(ascii: "."), bytes[23] == UInt8(ascii: "Z")
            else { return nil }
            func number(_ offset: Int, _ digits: Int) -> Int64? {
                var value: Int64 = 0
                for index in offset..<(offset + digits) {
                    let digit = bytes[index] &- UInt8(ascii: "0")
                    guard digit < 10 else { return nil }
                    value = value * 10 + Int64(digit)
                }
                return value
            }
            guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2),
                let minute = number(14, 2), let second = number(17, 2), let millisecond = number(20, 3),
                (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60
            else { return nil }
            let days = CivilDate.days(fromCivil: year, month, day)
            let milliseconds = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millisecond
            return Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        }
    }
}
