import NIOCore

/// One call as it arrived: the envelope is parsed, params are still raw bytes.
public struct RPCRequest: Sendable {
    /// The id to answer with, or nil for a notification (which is never answered).
    public var id: RPCID?
    public var method: String
    /// The raw `params` value (an object or an array), or nil when absent.
    public var params: ByteBuffer?
    public var paramsAreByPosition: Bool

    public init(id: RPCID?, method: String, params: ByteBuffer? = nil, paramsAreByPosition: Bool = false) {
        self.id = id
        self.method = method
        self.params = params
        self.paramsAreByPosition = paramsAreByPosition
    }

    public var isNotification: Bool { id == nil }
}

/// A parsed message: one call, a batch of them, or a failure answered once with a null id.
/// (`package`: the fuzz targets drive the parser directly.)
package enum RPCMessage {
    package enum Entry {
        case request(RPCRequest)
        /// Answered with this error (and this id, null when it could not be read).
        case invalid(id: RPCID?, error: RPCError)
        /// A notification that broke a limit: notifications are never answered, so it is only logged.
        case droppedNotification(method: String, error: RPCError)
    }
    case single(Entry)
    case batch([Entry])
    case failed(RPCError)
}

/// Parses messages with `JSONScanner`: validates the whole message, then extracts the envelope.
package struct RPCMessageParser: Sendable {
    package var maxDepth: Int
    package var maxBatchLength: Int

    package init(maxDepth: Int, maxBatchLength: Int) {
        self.maxDepth = maxDepth
        self.maxBatchLength = maxBatchLength
    }

    package func parse(_ buffer: ByteBuffer) -> RPCMessage {
        buffer.withUnsafeReadableBytes { bytes in
            var scanner = JSONScanner(bytes, maxDepth: maxDepth)
            do throws(JSONScanner.Failure) {
                scanner.skipWhitespace()
                let message: RPCMessage
                switch scanner.peek() {
                case UInt8(ascii: "{"):
                    message = .single(try parseEntry(&scanner, depth: 1, buffer: buffer))
                case UInt8(ascii: "["):
                    message = try parseBatch(&scanner, buffer: buffer)
                case nil:
                    throw .syntax(offset: 0)
                default:
                    _ = try scanner.skipValue(depth: 0)  // a scalar: cannot be too deep
                    message = .failed(.invalidRequest("a request must be an object, a batch an array"))
                }
                scanner.skipWhitespace()
                guard scanner.atEnd else { throw .syntax(offset: scanner.index) }
                return message
            } catch .syntax(let offset) {
                return .failed(RPCError(.parseError, "Parse error", data: ["reason": "invalid JSON at byte \(offset)"]))
            } catch {
                // .tooDeep: only reachable for a too-deep value that even the lenient skip could not close.
                return .failed(tooDeep(actual: JSONScanner.maximumDepth(of: bytes)))
            }
        }
    }

    private func tooDeep(actual: Int) -> RPCError {
        .limit(.nestingTooDeep, "JSON nested too deeply", setting: "max_json_depth", limit: maxDepth, actual: actual)
    }

    private func parseBatch(_ scanner: inout JSONScanner, buffer: ByteBuffer) throws(JSONScanner.Failure) -> RPCMessage {
        scanner.index += 1  // [
        scanner.skipWhitespace()
        if scanner.peek() == UInt8(ascii: "]") {
            scanner.index += 1
            return .failed(.invalidRequest("empty batch"))
        }
        var entries: [RPCMessage.Entry] = []
        var length = 0
        while true {
            length += 1
            if scanner.peek() == UInt8(ascii: "{") {
                let entry = try parseEntry(&scanner, depth: 2, buffer: buffer)
                if length <= maxBatchLength { entries.append(entry) }
            } else {
                let start = scanner.index
                do throws(JSONScanner.Failure) {
                    _ = try scanner.skipValue(depth: 1)
                } catch .tooDeep {
                    scanner.index = start
                    guard scanner.skipValueLeniently() else { throw .syntax(offset: scanner.index) }
                }
                if length <= maxBatchLength {
                    entries.append(.invalid(id: nil, error: .invalidRequest("a batch member must be an object")))
                }
            }
            scanner.skipWhitespace()
            guard let byte = scanner.peek() else { throw .syntax(offset: scanner.index) }
            if byte == UInt8(ascii: ",") {
                scanner.index += 1
                scanner.skipWhitespace()
                continue
            }
            try scanner.expect(UInt8(ascii: "]"))
            break
        }
        if length > maxBatchLength {
            return .failed(.limit(.batchTooLarge, "Batch too large", setting: "max_batch_length", limit: maxBatchLength, actual: length))
        }
        return .batch(entries)
    }

    /// Parses one request object. Syntax errors throw (the whole message is a parse error); every
    /// other problem becomes an `.invalid` entry that keeps the id when it could be read.
    private func parseEntry(_ scanner: inout JSONScanner, depth: Int, buffer: ByteBuffer) throws(JSONScanner.Failure) -> RPCMessage.Entry {
        guard depth <= maxDepth else {
            let start = scanner.index
            _ = scanner.skipValueLeniently()
            let actual = JSONScanner.maximumDepth(of: UnsafeRawBufferPointer(start: scanner.base + start, count: scanner.index - start))
            return .invalid(id: nil, error: tooDeep(actual: actual + depth - 1))
        }
        scanner.index += 1  // {
        var id: RPCID?
        var hasID = false
        var idIsInvalid = false
        var hasVersion = false
        var versionIsValid = false
        var method: String?
        var methodIsInvalid = false
        var params: ByteBuffer?
        var paramsAreByPosition = false
        var paramsAreInvalid = false
        var deepest = 0

        scanner.skipWhitespace()
        if scanner.peek() == UInt8(ascii: "}") {
            scanner.index += 1
        } else {
            while true {
                guard scanner.peek() == UInt8(ascii: "\"") else { throw .syntax(offset: scanner.index) }
                let key = try scanner.scanString()
                let member = Member(scanner: scanner, key: key)
                scanner.skipWhitespace()
                try scanner.expect(UInt8(ascii: ":"))
                scanner.skipWhitespace()
                let valueStart = scanner.index
                let kind: JSONScanner.Kind
                do throws(JSONScanner.Failure) {
                    kind = try scanner.skipValue(depth: depth)
                } catch .tooDeep {
                    scanner.index = valueStart
                    guard scanner.skipValueLeniently() else { throw .syntax(offset: scanner.index) }
                    let valueDepth = JSONScanner.maximumDepth(
                        of: UnsafeRawBufferPointer(start: scanner.base + valueStart, count: scanner.index - valueStart))
                    deepest = max(deepest, depth + valueDepth)
                    kind = .object
                }
                let value = valueStart..<scanner.index
                switch member {
                case .jsonrpc:
                    hasVersion = true
                    versionIsValid =
                        kind == .string && value.count == 5
                        && scanner.base[value.lowerBound + 1] == UInt8(ascii: "2")
                        && scanner.base[value.lowerBound + 2] == UInt8(ascii: ".")
                        && scanner.base[value.lowerBound + 3] == UInt8(ascii: "0")
                case .id:
                    hasID = true
                    if kind == .string || kind == .number || (kind == .literal && scanner.base[value.lowerBound] == UInt8(ascii: "n")) {
                        id = RPCID(
                            json: String(decoding: UnsafeRawBufferPointer(start: scanner.base + value.lowerBound, count: value.count), as: UTF8.self))
                        idIsInvalid = false
                    } else {
                        id = nil
                        idIsInvalid = true
                    }
                case .method:
                    if kind == .string {
                        method = Self.decodeString(scanner.base, value)
                        methodIsInvalid = false
                    } else {
                        methodIsInvalid = true
                    }
                case .params:
                    if kind == .object || kind == .array {
                        params = buffer.getSlice(at: buffer.readerIndex + value.lowerBound, length: value.count)
                        paramsAreByPosition = kind == .array
                        paramsAreInvalid = false
                    } else {
                        paramsAreInvalid = true
                    }
                case .other:
                    break
                }
                scanner.skipWhitespace()
                guard let byte = scanner.peek() else { throw .syntax(offset: scanner.index) }
                if byte == UInt8(ascii: ",") {
                    scanner.index += 1
                    scanner.skipWhitespace()
                    continue
                }
                try scanner.expect(UInt8(ascii: "}"))
                break
            }
        }

        if deepest > 0 {
            if !hasID, versionIsValid, let method, !methodIsInvalid {
                return .droppedNotification(method: method, error: tooDeep(actual: deepest))
            }
            return .invalid(id: id, error: tooDeep(actual: deepest))
        }
        // A request without a usable id gets a reply with a null id (JSON-RPC §5): an invalid message
        // is never treated as a silent notification.
        if idIsInvalid { return .invalid(id: nil, error: .invalidRequest("id must be a string, a number or null")) }
        if !hasVersion || !versionIsValid {
            return .invalid(id: id, error: .invalidRequest("jsonrpc must be \"2.0\""))
        }
        guard let method, !methodIsInvalid else {
            return .invalid(id: id, error: .invalidRequest("method must be a string"))
        }
        if paramsAreInvalid {
            return .invalid(id: id, error: .invalidRequest("params must be an object or an array"))
        }
        return .request(RPCRequest(id: id, method: method, params: params, paramsAreByPosition: paramsAreByPosition))
    }

    private enum Member {
        case jsonrpc, id, method, params, other

        init(scanner: borrowing JSONScanner, key: (contents: Range<Int>, escaped: Bool)) {
            let name: String
            if key.escaped {
                name = RPCMessageParser.decodeString(scanner.base, key.contents.lowerBound - 1..<key.contents.upperBound + 1)
            } else {
                // Compare bytes first: almost every key is one of four short ASCII names.
                let count = key.contents.count
                let start = scanner.base + key.contents.lowerBound
                func equals(_ literal: StaticString) -> Bool {
                    literal.utf8CodeUnitCount == count && memcmp(start, literal.utf8Start, count) == 0
                }
                if equals("jsonrpc") {
                    self = .jsonrpc
                } else if equals("id") {
                    self = .id
                } else if equals("method") {
                    self = .method
                } else if equals("params") {
                    self = .params
                } else {
                    self = .other
                }
                return
            }
            switch name {
            case "jsonrpc": self = .jsonrpc
            case "id": self = .id
            case "method": self = .method
            case "params": self = .params
            default: self = .other
            }
        }
    }

    /// Decodes a validated JSON string literal (`range` includes the quotes).
    static func decodeString(_ base: UnsafePointer<UInt8>, _ range: Range<Int>) -> String {
        let inner = UnsafeRawBufferPointer(start: base + range.lowerBound + 1, count: range.count - 2)
        if !inner.contains(UInt8(ascii: "\\")) {
            return String(decoding: inner, as: UTF8.self)
        }
        var result: [UInt8] = []
        result.reserveCapacity(inner.count)
        var index = 0
        var pendingHighSurrogate: UInt32?
        func appendScalar(_ value: UInt32) {
            let scalar = Unicode.Scalar(value) ?? "\u{FFFD}"
            result.append(contentsOf: Array(String(Character(scalar)).utf8))
        }
        while index < inner.count {
            let byte = inner[index]
            guard byte == UInt8(ascii: "\\") else {
                if let high = pendingHighSurrogate {
                    appendScalar(high)
                    pendingHighSurrogate = nil
                }
                result.append(byte)
                index += 1
                continue
            }
            let escape = inner[index + 1]
            index += 2
            if escape == UInt8(ascii: "u") {
                var value: UInt32 = 0
                for offset in 0..<4 {
                    let digit = inner[index + offset]
                    value = value << 4 | UInt32(digit.isDigit ? digit - UInt8(ascii: "0") : (digit | 0x20) - UInt8(ascii: "a") + 10)
                }
                index += 4
                if let high = pendingHighSurrogate {
                    pendingHighSurrogate = nil
                    if (0xDC00...0xDFFF).contains(value) {
                        appendScalar(0x10000 + ((high - 0xD800) << 10) + (value - 0xDC00))
                        continue
                    }
                    appendScalar(0xFFFD)
                }
                if (0xD800...0xDBFF).contains(value) { pendingHighSurrogate = value } else { appendScalar(value) }
                continue
            }
            if pendingHighSurrogate != nil {
                appendScalar(0xFFFD)
                pendingHighSurrogate = nil
            }
            switch escape {
            case UInt8(ascii: "b"): result.append(0x08)
            case UInt8(ascii: "f"): result.append(0x0C)
            case UInt8(ascii: "n"): result.append(0x0A)
            case UInt8(ascii: "r"): result.append(0x0D)
            case UInt8(ascii: "t"): result.append(0x09)
            default: result.append(escape)
            }
        }
        if pendingHighSurrogate != nil { appendScalar(0xFFFD) }
        return String(decoding: result, as: UTF8.self)
    }
}

/// Finds the top-level `id` of a message that is known only by a prefix (an oversized message), so
/// that its error can still be answered with the request's id. Returns nil when the id is not in the
/// prefix or the prefix is not a request object.
package func findRequestID(inPrefix buffer: ByteBuffer) -> RPCID? {
    buffer.withUnsafeReadableBytes { bytes -> RPCID? in
        var scanner = JSONScanner(bytes, maxDepth: Int.max)
        scanner.skipWhitespace()
        guard scanner.peek() == UInt8(ascii: "{") else { return nil }
        scanner.index += 1
        while true {
            scanner.skipWhitespace()
            guard scanner.peek() == UInt8(ascii: "\""), let key = try? scanner.scanString() else { return nil }
            scanner.skipWhitespace()
            guard (try? scanner.expect(UInt8(ascii: ":"))) != nil else { return nil }
            scanner.skipWhitespace()
            let start = scanner.index
            let isID =
                !key.escaped && key.contents.count == 2
                && scanner.base[key.contents.lowerBound] == UInt8(ascii: "i")
                && scanner.base[key.contents.lowerBound + 1] == UInt8(ascii: "d")
            if isID {
                guard let kind = try? scanner.skipValue(depth: 1) else { return nil }
                guard kind == .string || kind == .number || (kind == .literal && scanner.base[start] == UInt8(ascii: "n")) else {
                    return nil
                }
                return RPCID(json: String(decoding: UnsafeRawBufferPointer(start: scanner.base + start, count: scanner.index - start), as: UTF8.self))
            }
            guard scanner.skipValueLeniently() else { return nil }
            scanner.skipWhitespace()
            guard scanner.peek() == UInt8(ascii: ",") else { return nil }
            scanner.index += 1
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
