import NIOCore

/// How messages are delimited on a connection. Detected from the first bytes a client sends;
/// every reply and notification uses the same framing.
public enum RPCFraming: Sendable, Equatable {
    /// One JSON value per line (`\n`, `\r\n` accepted; blank lines ignored): what `socat` users type.
    case newlineDelimited
    /// LSP base protocol: `Content-Length: N\r\n`, other headers tolerated, `\r\n`, N bytes.
    case contentLength
}

/// What the frame decoder tells the connection besides the messages themselves (which travel as
/// plain `ByteBuffer`s: NIO carries those without boxing, which a richer enum would cost per message).
public enum RPCFrameEvent: Sendable {
    /// The connection's framing, sent once before its first message.
    case framingDetected(RPCFraming)
    /// A message over the size limit, skipped without being buffered. `prefix` is its first bytes
    /// (to recover the request id); `size` is its full length.
    case oversized(prefix: ByteBuffer, size: Int)
    /// A broken LSP header: the stream cannot be resynchronised; the connection is answered and closed.
    case unframeable(reason: String)
}

/// Splits the byte stream into messages, enforcing the size limit without buffering oversized
/// messages: past the limit, bytes are counted and dropped until the frame ends.
public struct RPCFrameDecoder: Sendable {
    /// What one decoding step produced.
    public enum Output: Sendable {
        case message(ByteBuffer)
        case event(RPCFrameEvent)
    }

    enum Step {
        case output(Output)
        /// Something was consumed (a blank line, the start of a skip): decode again.
        case again
        case needMoreData
    }

    /// How much of an oversized message is kept to find its `id`.
    static let prefixBytes = 4096
    /// Longest LSP header block accepted.
    static let maxHeaderBytes = 8192

    /// Raised once a connection signs in (from `RPCLimits.maxUnauthenticatedMessageBytes`).
    var maxMessageBytes: Int
    private(set) var framing: RPCFraming?
    private var skipping: Skip?
    /// Bytes already searched for a newline in the current line (avoids rescanning on each read).
    private var searched = 0

    private struct Skip {
        var prefix: ByteBuffer
        var size: Int
        /// Bytes still to drop (Content-Length framing); nil means "until the next newline".
        var remaining: Int?
    }

    public init(maxMessageBytes: Int) {
        self.maxMessageBytes = maxMessageBytes
    }

    /// Whether a message over the limit is being skipped (its bytes are dropped, not buffered).
    public var isSkipping: Bool { skipping != nil }

    /// The first bytes (up to `prefixBytes`) and the size so far of the message being skipped: its
    /// whole size in Content-Length framing, the bytes received until now in newline framing.
    public var skippedSoFar: (prefix: ByteBuffer, size: Int)? { skipping.map { ($0.prefix, $0.size) } }

    /// The next message or event in `buffer`, consuming its bytes; nil when more bytes are needed.
    /// The connection calls this in a loop on each read (no `ByteToMessageHandler` in between: the
    /// profile showed its loop and the pipeline hop cost ~2k instructions a message).
    public mutating func next(_ buffer: inout ByteBuffer) -> Output? {
        while true {
            let step: Step
            if skipping != nil {
                step = skip(&buffer)
            } else if let framing {
                switch framing {
                case .newlineDelimited: step = decodeLine(&buffer)
                case .contentLength: step = decodeContentLength(&buffer)
                }
            } else {
                guard let detected = detectFraming(&buffer) else { return nil }
                return .event(.framingDetected(detected))
            }
            switch step {
            case .output(let output): return output
            case .again: continue
            case .needMoreData: return nil
            }
        }
    }

    /// Like `next`, once the client has finished sending: a last line without its newline is still a
    /// message (`printf '{...}' | socat …`), and a message being skipped ends here.
    public mutating func nextAtEnd(_ buffer: inout ByteBuffer) -> Output? {
        if let output = next(&buffer) { return output }
        if framing == .newlineDelimited, skipping == nil, buffer.readableBytes > 0 {
            // Up to maxMessageBytes + 1 bytes wait for a newline (the +1 for a "\r"): at the end
            // there is none, so the size limit is checked here too.
            var length = buffer.readableBytes
            if buffer.getInteger(at: buffer.writerIndex - 1, as: UInt8.self) == 0x0D { length -= 1 }
            searched = 0
            if length > maxMessageBytes {
                let prefix = buffer.getSlice(at: buffer.readerIndex, length: min(length, Self.prefixBytes))!
                buffer.moveReaderIndex(to: buffer.writerIndex)
                return .event(.oversized(prefix: prefix, size: length))
            }
            let line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(to: buffer.writerIndex)  // the "\r", if any
            return Self.isBlank(line) ? nil : .message(line)
        }
        if let skip = skipping {
            skipping = nil
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return .event(.oversized(prefix: skip.prefix, size: skip.size))
        }
        return nil
    }

    private mutating func detectFraming(_ buffer: inout ByteBuffer) -> RPCFraming? {
        while let byte = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) {
            switch byte {
            case 0x20, 0x09, 0x0A, 0x0D:
                buffer.moveReaderIndex(forwardBy: 1)
            case UInt8(ascii: "C"), UInt8(ascii: "c"):
                framing = .contentLength
                return framing
            default:
                framing = .newlineDelimited
                return framing
            }
        }
        return nil
    }

    private mutating func decodeLine(_ buffer: inout ByteBuffer) -> Step {
        let view = buffer.readableBytesView
        // A line may hold maxMessageBytes plus "\r\n".
        let searchEnd = view.startIndex + min(view.count, maxMessageBytes + 2)
        if let newline = Self.firstNewline(in: buffer, from: min(searched, searchEnd - view.startIndex), to: searchEnd - view.startIndex)
            .map({ view.startIndex + $0 })
        {
            searched = 0
            var length = newline - view.startIndex
            let crlf = length > 0 && view[newline - 1] == 0x0D
            if crlf { length -= 1 }
            if length > maxMessageBytes {
                let prefix = buffer.getSlice(at: buffer.readerIndex, length: min(length, Self.prefixBytes))!
                buffer.moveReaderIndex(forwardBy: newline - view.startIndex + 1)
                return .output(.event(.oversized(prefix: prefix, size: length)))
            }
            let line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: crlf ? 2 : 1)
            return Self.isBlank(line) ? .again : .output(.message(line))
        }
        if view.count > maxMessageBytes + 1 {
            // Over the limit with no end in sight: keep a prefix for the id, drop the rest as it comes.
            searched = 0
            skipping = Skip(prefix: ByteBuffer(), size: 0, remaining: nil)
            return .again
        }
        searched = view.count
        return .needMoreData
    }

    /// The offset (from the reader index) of the first `\n` in `from..<to`: `memchr`, since
    /// `ByteBufferView.firstIndex` goes byte by byte, which was a tenth of a 5 MiB
    /// `files.upload.chunk` call's time (bench/files.sh).
    private static func firstNewline(in buffer: ByteBuffer, from: Int, to: Int) -> Int? {
        guard from < to else { return nil }
        return buffer.withUnsafeReadableBytes { bytes in
            guard let start = bytes.baseAddress, let found = memchr(start + from, 0x0A, to - from) else { return nil }
            return UnsafeRawPointer(found) - UnsafeRawPointer(start)
        }
    }

    private mutating func decodeContentLength(_ buffer: inout ByteBuffer) -> Step {
        // Tolerate stray line breaks between messages.
        while let byte = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), byte == 0x0D || byte == 0x0A {
            buffer.moveReaderIndex(forwardBy: 1)
        }
        let view = buffer.readableBytesView
        guard let headerEnd = Self.headerEnd(view) else {
            if view.count > Self.maxHeaderBytes {
                return fail("header block longer than \(Self.maxHeaderBytes) bytes", &buffer)
            }
            return .needMoreData
        }
        // Parsed as bytes: header lines are ASCII, and String work here cost ~20k instructions a message.
        var contentLength: Int?
        var lineStart = view.startIndex
        while lineStart < headerEnd.start {
            var lineEnd = lineStart
            while lineEnd < headerEnd.start, view[lineEnd] != 0x0A { lineEnd += 1 }
            var end = lineEnd
            if end > lineStart, view[end - 1] == 0x0D { end -= 1 }
            if end > lineStart {
                guard let colon = view[lineStart..<end].firstIndex(of: UInt8(ascii: ":")) else {
                    return fail("malformed header line", &buffer)
                }
                if Self.isContentLength(view[lineStart..<colon]) {
                    guard let value = Self.parseLength(view[(colon + 1)..<end]) else {
                        return fail("invalid Content-Length", &buffer)
                    }
                    contentLength = value
                }
            }
            lineStart = lineEnd + 1
        }
        guard let contentLength else { return fail("missing Content-Length header", &buffer) }
        let headerLength = headerEnd.end - view.startIndex
        if contentLength > maxMessageBytes {
            buffer.moveReaderIndex(forwardBy: headerLength)
            skipping = Skip(prefix: ByteBuffer(), size: contentLength, remaining: contentLength)
            return .again
        }
        guard view.count >= headerLength + contentLength else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: headerLength)
        let body = buffer.readSlice(length: contentLength)!
        return .output(.message(body))
    }

    private mutating func fail(_ reason: String, _ buffer: inout ByteBuffer) -> Step {
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .output(.event(.unframeable(reason: reason)))
    }

    private mutating func skip(_ buffer: inout ByteBuffer) -> Step {
        guard var skip = skipping else { return .again }
        let view = buffer.readableBytesView
        // How many of the readable bytes belong to the skipped message, and whether it ends here.
        let take: Int
        let ends: Bool
        let consumed: Int
        if let remaining = skip.remaining {
            take = min(remaining, view.count)
            consumed = take
            skip.remaining = remaining - take
            ends = skip.remaining == 0
        } else if let newline = view.firstIndex(of: 0x0A) {
            take = newline - view.startIndex
            consumed = take + 1
            ends = true
        } else {
            take = view.count
            consumed = take
            ends = false
        }
        // Keep the message's first bytes: its id is usually among them.
        let keep = min(take, Self.prefixBytes - skip.prefix.readableBytes)
        if keep > 0 { skip.prefix.writeBytes(view.prefix(keep)) }
        if skip.remaining == nil {
            skip.size += take
            if ends, take > 0, view[view.startIndex + take - 1] == 0x0D { skip.size -= 1 }
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        guard ends else {
            skipping = skip
            return .needMoreData
        }
        skipping = nil
        return .output(.event(.oversized(prefix: skip.prefix, size: skip.size)))
    }

    /// Where the header block ends: after "\r\n\r\n" (or a bare "\n\n", which some clients send).
    private static func headerEnd(_ view: ByteBufferView) -> (start: Int, end: Int)? {
        let limit = min(view.endIndex, view.startIndex + maxHeaderBytes)
        var index = view.startIndex
        while index < limit {
            if view[index] == 0x0A {
                if index + 1 < view.endIndex, view[index + 1] == 0x0A { return (index, index + 2) }
                if index + 2 < view.endIndex, view[index + 1] == 0x0D, view[index + 2] == 0x0A { return (index, index + 3) }
            }
            index += 1
        }
        return nil
    }

    private static func isContentLength(_ name: ByteBufferView.SubSequence) -> Bool {
        let expected = Array("content-length".utf8)
        let trimmed = name.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }.reversed()
        guard trimmed.count == expected.count else { return false }
        return zip(trimmed, expected).allSatisfy { ($0 | 0x20) == $1 }
    }

    /// A decimal length of at most 15 digits (anything longer is not a length we could accept).
    private static func parseLength(_ bytes: ByteBufferView.SubSequence) -> Int? {
        let digits = bytes.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }.reversed()
        guard !digits.isEmpty, digits.count <= 15 else { return nil }
        var value = 0
        for digit in digits {
            guard digit.isDigit else { return nil }
            value = value * 10 + Int(digit - UInt8(ascii: "0"))
        }
        return value
    }

    static func isBlank(_ buffer: ByteBuffer) -> Bool {
        buffer.readableBytesView.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
