import CSystemd

#if canImport(Glibc)
import Glibc
#endif

/// One log line's fields laid out for `sd_journal_sendv`: every field's bytes in one buffer, and
/// an `iovec` per field pointing into it with the field's real length. No per-field C string:
/// a copy made with `strdup` stops at a NUL while the length said more, and the journal read past
/// the copy's end (issue 17).
public struct JournalEntry {
    /// The fields' bytes, one after the other (no separators: each iovec says where it ends).
    public private(set) var bytes: [UInt8] = []
    /// Each field's end offset in `bytes`.
    public private(set) var ends: [Int] = []

    public init(fields: [String]) {
        bytes.reserveCapacity(fields.reduce(0) { $0 + $1.utf8.count })
        ends.reserveCapacity(fields.count)
        for field in fields {
            bytes.append(contentsOf: field.utf8)
            ends.append(bytes.count)
        }
    }

    /// Calls `body` with an iovec per field; the pointers are valid only during the call.
    public func withIOVecs<Result>(_ body: (UnsafeBufferPointer<iovec>) throws -> Result) rethrows -> Result {
        try bytes.withUnsafeBufferPointer { buffer in
            var vectors = [iovec]()
            vectors.reserveCapacity(ends.count)
            var start = 0
            for end in ends {
                // Never null, even for an empty buffer: the journal takes the pointer as it is.
                let base = UnsafeMutableRawPointer(
                    mutating: buffer.baseAddress.map { UnsafeRawPointer($0 + start) } ?? UnsafeRawPointer(bitPattern: 1)!)
                vectors.append(iovec(iov_base: base, iov_len: end - start))
                start = end
            }
            return try vectors.withUnsafeBufferPointer(body)
        }
    }

    /// Sends the entry to journald; false when the journal refused it or none runs.
    @discardableResult
    public func send() -> Bool {
        withIOVecs { csystemd_journal_sendv($0.baseAddress, Int32($0.count)) >= 0 }
    }
}
