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
        Self.copy(from: source, to: base + count, count: length)
        count &+= length
    }

    /// memcpy, without the call for the short pieces JSON is made of (keys, ids, numbers).
    @inline(__always)
    static func copy(from source: UnsafePointer<UInt8>, to destination: UnsafeMutablePointer<UInt8>, count: Int) {
        let from = UnsafeRawPointer(source)
        let to = UnsafeMutableRawPointer(destination)
        switch count {
        case 17...32:
            // Four words: the first sixteen bytes and the last sixteen, overlapping.
            to.storeBytes(of: from.loadUnaligned(as: UInt64.self), as: UInt64.self)
            (to + 8).storeBytes(of: (from + 8).loadUnaligned(as: UInt64.self), as: UInt64.self)
            (to + (count &- 16)).storeBytes(of: (from + (count &- 16)).loadUnaligned(as: UInt64.self), as: UInt64.self)
            (to + (count &- 8)).storeBytes(of: (from + (count &- 8)).loadUnaligned(as: UInt64.self), as: UInt64.self)
        case 8...16:
            to.storeBytes(of: from.loadUnaligned(as: UInt64.self), as: UInt64.self)
            (to + (count &- 8)).storeBytes(of: (from + (count &- 8)).loadUnaligned(as: UInt64.self), as: UInt64.self)
        case 4..<8:
            to.storeBytes(of: from.loadUnaligned(as: UInt32.self), as: UInt32.self)
            (to + (count &- 4)).storeBytes(of: (from + (count &- 4)).loadUnaligned(as: UInt32.self), as: UInt32.self)
        case 0..<4:
            for offset in 0..<count { destination[offset] = source[offset] }
        default:
            to.copyMemory(from: from, byteCount: count)
        }
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

    @inline(__always)
    mutating func appendQuoted(_ utf8: UnsafeBufferPointer<UInt8>) {
        let length = utf8.count
        reserve(length &+ 2)
        guard let source = utf8.baseAddress, Self.isClean(source, count: length) else {
            appendEscaped(utf8)
            return
        }
        let out = base + count
        out[0] = UInt8(ascii: "\"")
        Self.copy(from: source, to: out + 1, count: length)
        out[length &+ 1] = UInt8(ascii: "\"")
        count &+= length &+ 2
    }

    /// Whether no byte needs escaping: eight bytes at a time, the last word overlapping.
    @inline(__always)
    private static func isClean(_ source: UnsafePointer<UInt8>, count: Int) -> Bool {
        let raw = UnsafeRawPointer(source)
        if count < 8 {
            for index in 0..<count {
                let byte = source[index]
                if byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { return false }
            }
            return true
        }
        var index = 0
        while index &+ 8 <= count {
            if needsEscaping(raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)) { return false }
            index &+= 8
        }
        return index == count || !needsEscaping(raw.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self))
    }

    /// The quoted string when some bytes need escaping (or it is empty).
    @inline(never)
    private mutating func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>) {
        let length = utf8.count
        append(UInt8(ascii: "\""))
        guard let source = utf8.baseAddress else {
            append(UInt8(ascii: "\""))
            return
        }
        var index = 0
        var mark = 0
        while index < length {
            // Skip eight clean bytes at a time.
            if length &- index >= 8 && !Self.needsEscaping(UnsafeRawPointer(source + index).loadUnaligned(as: UInt64.self)) {
                index &+= 8
                continue
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

    // MARK: Keys

    /// The first eight bytes of `utf8` as a big-endian integer, zero-padded: keys of up to eight
    /// bytes travel as one word, and comparing prefixes orders most keys.
    @inline(__always)
    static func prefix(_ utf8: UnsafeBufferPointer<UInt8>) -> UInt64 {
        guard let start = utf8.baseAddress else { return 0 }
        let length = utf8.count
        let raw = UnsafeRawPointer(start)
        if length >= 8 { return UInt64(bigEndian: raw.loadUnaligned(as: UInt64.self)) }
        if length >= 4 {
            // Bytes 0-3 and (length-4)-(length-1), overlapping: the same bytes land in the same places.
            let high = UInt64(UInt32(bigEndian: raw.loadUnaligned(as: UInt32.self))) << 32
            let low = UInt64(UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: length &- 4, as: UInt32.self)))
            return high | low << (32 &- 8 &* UInt64(length &- 4))
        }
        var prefix: UInt64 = 0
        for position in 0..<length { prefix |= UInt64(start[position]) << (56 &- 8 &* UInt64(position)) }
        return prefix
    }

    /// `"key":`. A key of up to eight bytes needing no escaping is one word store.
    @inline(__always)
    mutating func appendKey(_ utf8: UnsafeBufferPointer<UInt8>, prefix: UInt64) {
        let length = utf8.count
        // Pad the unused low bytes with a clean byte ("a") so that only the key's bytes are checked.
        let padding: UInt64 = length >= 8 ? 0 : 0x6161_6161_6161_6161 >> (8 &* UInt64(length))
        guard length <= 8 && !Self.needsEscaping(prefix | padding) else {
            appendQuoted(utf8)
            append(UInt8(ascii: ":"))
            return
        }
        reserve(11)
        let out = base + count
        out[0] = UInt8(ascii: "\"")
        UnsafeMutableRawPointer(out + 1).storeBytes(of: prefix.bigEndian, as: UInt64.self)
        out[length &+ 1] = UInt8(ascii: "\"")
        out[length &+ 2] = UInt8(ascii: ":")
        count &+= length &+ 3
    }

    /// The raw key: one word store for keys of up to eight bytes.
    @inline(__always)
    mutating func appendRawKey(_ utf8: UnsafeBufferPointer<UInt8>, prefix: UInt64) {
        let length = utf8.count
        guard length <= 8 else {
            append(utf8)
            return
        }
        reserve(8)
        UnsafeMutableRawPointer(base + count).storeBytes(of: prefix.bigEndian, as: UInt64.self)
        count &+= length
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
    static var handFormattedDates: Range<Double> { -12_654_403_200..<252_423_993_600 }

    /// The day of the last date written and its `yyyy-MM-dd` (dates in one result often share days).
    private var lastDay = Int64.min
    private var lastDayText: (UInt64, UInt16) = (0, 0)

    /// `"yyyy-MM-ddTHH:mm:ssZ"` in UTC, fractional seconds dropped (floored, as
    /// `Date.ISO8601FormatStyle` does, also before 1970). Returns false and writes nothing for a
    /// date outside `handFormattedDates`.
    mutating func appendISO8601(_ date: Date) -> Bool {
        let reference = date.timeIntervalSinceReferenceDate
        guard reference >= -12_654_403_200 && reference < 252_423_993_600 else { return false }
        let seconds = Int64(reference.rounded(.down)) &+ 978_307_200  // since 1970
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay &+= 86_400
            days &-= 1
        }
        reserve(22)
        let out = base + count
        let raw = UnsafeMutableRawPointer(out)
        @inline(__always) func two(_ value: Int64, at offset: Int) {
            out[offset] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value / 10)
            out[offset &+ 1] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value % 10)
        }
        out[0] = UInt8(ascii: "\"")
        if days == lastDay {
            raw.storeBytes(of: lastDayText.0, toByteOffset: 1, as: UInt64.self)
            raw.storeBytes(of: lastDayText.1, toByteOffset: 9, as: UInt16.self)
        } else {
            // Days since 1970-01-01 to a civil date (Howard Hinnant's civil_from_days).
            let shifted = days &+ 719_468
            let era = (shifted >= 0 ? shifted : shifted &- 146_096) / 146_097
            let dayOfEra = shifted &- era &* 146_097
            let yearOfEra = (dayOfEra &- dayOfEra / 1460 &+ dayOfEra / 36_524 &- dayOfEra / 146_096) / 365
            let dayOfYear = dayOfEra &- (365 &* yearOfEra &+ yearOfEra / 4 &- yearOfEra / 100)
            let monthIndex = (5 &* dayOfYear &+ 2) / 153
            let day = dayOfYear &- (153 &* monthIndex &+ 2) / 5 &+ 1
            let month = monthIndex < 10 ? monthIndex &+ 3 : monthIndex &- 9
            let year = yearOfEra &+ era &* 400 &+ (month <= 2 ? 1 : 0)
            two(year / 100, at: 1)
            two(year % 100, at: 3)
            out[5] = UInt8(ascii: "-")
            two(month, at: 6)
            out[8] = UInt8(ascii: "-")
            two(day, at: 9)
            lastDay = days
            lastDayText = (raw.loadUnaligned(fromByteOffset: 1, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 9, as: UInt16.self))
        }
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
