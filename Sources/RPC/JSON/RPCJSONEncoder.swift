import Foundation
import NIOCore

/// Encodes any `Encodable` as compact JSON, byte for byte what `JSONEncoder` writes with
/// `[.withoutEscapingSlashes, .sortedKeys]` and `.iso8601` dates (`JSONWriter.makeEncoder()`), at a
/// fraction of the cost: results and notifications go through it.
///
/// ```swift
/// let bytes: ByteBuffer = try RPCJSONEncoder().encode(page)   // {"items":[…],"nextCursor":"…"}
/// ```
///
/// What it shares with `JSONEncoder`, exactly: keys sorted by their UTF-8 bytes (Foundation on Linux
/// compares `key.utf8`, so `"B" < "a" < "é"`, `"10" < "9"`); a key written twice keeps its last value;
/// `nil` omitted by `encodeIfPresent`, `null` from `encodeNil`; strings escaped only where JSON
/// requires (`\"`, `\\`, `\b\f\n\r\t`, `\u00XX`), `/` and all non-ASCII left as they are; integers
/// in full; floats as their shortest `description` without a trailing `.0` (`1`, `-0`, `1e+300`);
/// `Date` as `2026-11-27T05:03:33Z` (UTC, fractional seconds floored); `Data` as base64; `URL` as
/// its absolute string; `Decimal` as its description; a value that encodes nothing as `{}`.
///
/// - Throws: `EncodingError.invalidValue` where `JSONEncoder` throws: NaN or an infinity, a
///   top-level value that encodes nothing, arrays and objects nested 512 deep; and errors thrown by
///   the values' own `encode(to:)`.
/// - Important: a few `Encoder` patterns cannot be streamed (a container written to after a later
///   sibling was, two containers for one key, keys equal only under Unicode canonical equivalence);
///   for those the value is encoded again by `JSONEncoder`, so its `encode(to:)` runs twice. Misuses
///   that make `JSONEncoder` trap (a single value container written twice) throw instead.
public struct RPCJSONEncoder: Sendable {
    public init() {}

    /// `value` as JSON in a new buffer.
    public func encode<T: Encodable>(_ value: T) throws -> ByteBuffer {
        try withEncoded(value) { ByteBuffer(bytes: $0) }  // allocated at its final size
    }

    /// Appends `value` as JSON to `buffer`. Nothing is appended when it throws.
    public func encode<T: Encodable>(_ value: T, into buffer: inout ByteBuffer) throws {
        _ = try withEncoded(value) { bytes in
            buffer.writeBytes(bytes)
        }
    }

    /// `value` as a JSON string.
    public func encodeToString<T: Encodable>(_ value: T) throws -> String {
        try withEncoded(value) { bytes in
            String(decoding: bytes, as: UTF8.self)
        }
    }

    /// `value` as JSON bytes.
    public func encodeToBytes<T: Encodable>(_ value: T) throws -> [UInt8] {
        try withEncoded(value) { Array($0) }
    }

    /// Runs `body` on the encoded bytes, which live only as long as the call.
    func withEncoded<T: Encodable, Result>(_ value: T, _ body: (UnsafeRawBufferPointer) throws -> Result) throws -> Result {
        let sink = JSONEncodingSink.take()
        defer { JSONEncodingSink.recycle(sink) }
        guard try stream(value, into: sink) else {
            return try JSONWriter.makeEncoder().encode(value).withUnsafeBytes(body)
        }
        return try body(sink.out.bytes)
    }

    /// The streamed bytes, or nil where `encode` falls back to `JSONEncoder` (for tests).
    func streamedBytes<T: Encodable>(_ value: T) throws -> [UInt8]? {
        let sink = JSONEncodingSink.take()
        defer { JSONEncodingSink.recycle(sink) }
        return try stream(value, into: sink) ? Array(sink.out.bytes) : nil
    }

    /// Writes `value` into `sink.out`; false when it has to be left to `JSONEncoder`.
    private func stream<T: Encodable>(_ value: T, into sink: JSONEncodingSink) throws -> Bool {
        try sink.encode(value, in: -1, key: .none)
        if sink.frames.count > 0 { sink.endFrame(0, sink.frames[0].id) }  // a frame left open by a failure
        switch sink.failure {
        case nil:
            break
        case .fallback:
            return false
        case .invalid(let reason):
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: reason))
        }
        if sink.topLevelIsEmpty {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "Top-level \(T.self) did not encode any values."))
        }
        if sink.tooDeep {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "Unable to encode the given top-level value to JSON."))
        }
        return true
    }
}
