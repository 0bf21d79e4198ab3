import Foundation

/// A growable byte buffer for `RPCJSONEncoder`: raw pointer writes, one capacity comparison per
/// write, and the JSON text forms of strings, numbers and dates exactly as `JSONEncoder` writes
/// them with `.withoutEscapingSlashes` and `.iso8601` dates.
///
/// It owns its memory: the owner calls `deallocate()` once.
struct JSONOutput {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var capacity: Int
    /// Bytes written. Lowering it drops the tail (the encoder rewrites objects in place).
    var count = 0

    init(capacity: Int) {
        self.capacity = Swift.max(capacity, 16)
        self.base = .allocate(capacity: self.capacity)
    }

    func deallocate() { base.deallocate() }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    @inline(__always)
    mutating func reserve(_ extra: Int) {
        if _slowPath(capacity &- count < extra) { grow(extra) }
    }

    @inline(never)
    private mutating func grow(_ extra: Int) {
        let newCapacity = Swift.max(capacity &* 2, count &+ extra)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count &+= 1
    }

    @inline(__always)
    mutating func append(_ source: UnsafePointer<UInt8>, count length: Int) {
        reserve(length)
        (base + count).update(from: source, count: length)
        count &+= length
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress else { return }
        append(source, count: bytes.count)
    }

    @inline(__always)
    mutating func append(_ text: StaticString) {
        append(text.utf8Start, count: text.utf8CodeUnitCount)
    }

    /// The text of a string that needs no escaping (numbers, formatted dates), unquoted.
    mutating func appendPlain(_ text: String) {
        var text = text
        text.withUTF8 { append($0) }
    }

    // MARK: Strings

    /// `string` as a JSON string literal, escaped like `JSONEncoder`: `\"`, `\\`, `\b \f \n \r \t`,
    /// `\u00XX` (lowercase hex) for the other control characters; `/`, DEL and all non-ASCII as they are.
    @inline(__always)
    mutating func appendQuoted(_ string: String) {
        var string = string
        string.withUTF8 { appendQuoted($0) }
    }

    mutating func appendQuoted(_ utf8: UnsafeBufferPointer<UInt8>) {
        let length = utf8.count
        reserve(length &+ 2)
        base[count] = UInt8(ascii: "\"")
        count &+= 1
        guard let source = utf8.baseAddress else {
            base[count] = UInt8(ascii: "\"")
            count &+= 1
            return
        }
        var index = 0
        var mark = 0
        while index < length {
            // Eight clean bytes at a time: none below 0x20, none a quote or a backslash.
            if length &- index >= 8 {
                let word = UnsafeRawPointer(source + index).loadUnaligned(as: UInt64.self)
                if !Self.needsEscaping(word) {
                    index &+= 8
                    continue
                }
            }
            let byte = source[index]
            if byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                index &+= 1
                continue
            }
            if index > mark { append(source + mark, count: index &- mark) }
            appendEscape(byte)
            index &+= 1
            mark = index
        }
        if length > mark { append(source + mark, count: length &- mark) }
        append(UInt8(ascii: "\""))
    }

    /// Whether any byte of `word` is below 0x20, `"` or `\` (exact: no false positives).
    @inline(__always)
    private static func needsEscaping(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let below20 = (word &- ones &* 0x20) & ~word & highs
        let quote = word ^ (ones &* UInt64(UInt8(ascii: "\"")))
        let backslash = word ^ (ones &* UInt64(UInt8(ascii: "\\")))
        let hasQuote = (quote &- ones) & ~quote & highs
        let hasBackslash = (backslash &- ones) & ~backslash & highs
        return (below20 | hasQuote | hasBackslash) != 0
    }

    private mutating func appendEscape(_ byte: UInt8) {
        reserve(6)
        let out = base + count
        out[0] = UInt8(ascii: "\\")
        switch byte {
        case UInt8(ascii: "\""): out[1] = UInt8(ascii: "\"")
        case UInt8(ascii: "\\"): out[1] = UInt8(ascii: "\\")
        case 0x08: out[1] = UInt8(ascii: "b")
        case 0x0C: out[1] = UInt8(ascii: "f")
        case 0x0A: out[1] = UInt8(ascii: "n")
        case 0x0D: out[1] = UInt8(ascii: "r")
        case 0x09: out[1] = UInt8(ascii: "t")
        default:
            out[1] = UInt8(ascii: "u")
            out[2] = UInt8(ascii: "0")
            out[3] = UInt8(ascii: "0")
            out[4] = Self.hexDigit(byte >> 4)
            out[5] = Self.hexDigit(byte & 0xF)
            count &+= 6
            return
        }
        count &+= 2
    }

    @inline(__always)
    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") &+ value : UInt8(ascii: "a") &+ value &- 10
    }

    // MARK: Numbers

    @inline(__always)
    mutating func appendInteger(_ value: Int64) {
        if value < 0 {
            append(UInt8(ascii: "-"))
            appendInteger(value.magnitude)
        } else {
            appendInteger(UInt64(value))
        }
    }

    mutating func appendInteger(_ value: UInt64) {
        var digits = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            digits &+= 1
        }
        reserve(digits)
        var cursor = base + (count &+ digits)
        rest = value
        repeat {
            cursor -= 1
            cursor.pointee = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
        } while rest != 0
        count &+= digits
    }

    /// Any integer as `description` writes it.
    @inline(__always)
    mutating func appendInteger<Integer: FixedWidthInteger>(_ value: Integer) {
        if Integer.bitWidth <= 64 {
            if Integer.isSigned {
                appendInteger(Int64(truncatingIfNeeded: value))
            } else {
                appendInteger(UInt64(truncatingIfNeeded: value))
            }
        } else {
            appendPlain(value.description)
        }
    }

    /// A finite float as `JSONEncoder` writes it: its `description` without a trailing `.0`
    /// (`1`, `-0`, `0.1`, `1e+300`, `5e-324`).
    mutating func appendFloat<Float: BinaryFloatingPoint & CustomStringConvertible>(_ value: Float) {
        var text = value.description
        text.withUTF8 { utf8 in
            var length = utf8.count
            if length >= 2 && utf8[length &- 2] == UInt8(ascii: ".") && utf8[length &- 1] == UInt8(ascii: "0") {
                length &-= 2
            }
            append(UnsafeBufferPointer(rebasing: utf8[0..<length]))
        }
    }

    // MARK: Dates

    /// 1600-01-01T00:00:00Z and 10000-01-01T00:00:00Z as seconds since 2001-01-01. Inside this
    /// range the proleptic Gregorian calendar and four-digit years hold; outside it Foundation's
    /// calendar switches to Julian dates (before 1582-10-15) or widens the year, so
    /// `appendISO8601` leaves those dates to Foundation.
    static let handFormattedDates: Range<Double> = -12_654_403_200 ..< 252_423_993_600

    /// `"yyyy-MM-ddTHH:mm:ssZ"` in UTC, fractional seconds dropped (floored, as
    /// `Date.ISO8601FormatStyle` does, also before 1970). Returns false and writes nothing for a
    /// date outside `handFormattedDates`.
    mutating func appendISO8601(_ date: Date) -> Bool {
        let reference = date.timeIntervalSinceReferenceDate
        guard Self.handFormattedDates.contains(reference) else { return false }
        let seconds = Int64(reference.rounded(.down)) &+ 978_307_200  // since 1970
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay &+= 86_400
            days &-= 1
        }
        // Days since 1970-01-01 to a civil date (Howard Hinnant's days_from_civil inverse).
        let shifted = days &+ 719_468
        let era = (shifted >= 0 ? shifted : shifted &- 146_096) / 146_097
        let dayOfEra = shifted &- era &* 146_097
        let yearOfEra = (dayOfEra &- dayOfEra / 1460 &+ dayOfEra / 36_524 &- dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra &- (365 &* yearOfEra &+ yearOfEra / 4 &- yearOfEra / 100)
        let monthIndex = (5 &* dayOfYear &+ 2) / 153
        let day = dayOfYear &- (153 &* monthIndex &+ 2) / 5 &+ 1
        let month = monthIndex < 10 ? monthIndex &+ 3 : monthIndex &- 9
        let year = yearOfEra &+ era &* 400 &+ (month <= 2 ? 1 : 0)

        reserve(22)
        let out = base + count
        @inline(__always) func two(_ value: Int64, at offset: Int) {
            out[offset] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value / 10)
            out[offset &+ 1] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value % 10)
        }
        out[0] = UInt8(ascii: "\"")
        two(year / 100, at: 1)
        two(year % 100, at: 3)
        out[5] = UInt8(ascii: "-")
        two(month, at: 6)
        out[8] = UInt8(ascii: "-")
        two(day, at: 9)
        out[11] = UInt8(ascii: "T")
        two(secondOfDay / 3600, at: 12)
        out[14] = UInt8(ascii: ":")
        two(secondOfDay / 60 % 60, at: 15)
        out[17] = UInt8(ascii: ":")
        two(secondOfDay % 60, at: 18)
        out[20] = UInt8(ascii: "Z")
        out[21] = UInt8(ascii: "\"")
        count &+= 22
        return true
    }
}
