import NIOCore

/// A message a client receives from the server: the answer to one of its calls, or a notification.
public enum RPCServerMessage: Sendable {
    /// The reply to call `id`: its result (raw JSON text) or its error.
    case response(id: RPCID, outcome: Result<JSONFragment, RPCError>)
    /// A notification (`events.event`, `agent.delta`, `server.shuttingDown`, …) with its raw params.
    case notification(method: String, params: JSONFragment?)
}

/// The client half of the wire format, next to the server's: requests written with the same
/// `JSONWriter` the server answers with, replies read with the same validating `JSONScanner` it
/// reads requests with. Framing (NDJSON) is `RPCFrameDecoder`'s, on both sides.
public enum RPCClientCodec {
    /// `{"jsonrpc":"2.0","id":ID,"method":M,"params":P}\n` (no `id` for a notification, no `params`
    /// when nil).
    public static func request(id: RPCID?, method: String, params: JSONFragment?) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"jsonrpc\":\"2.0\",")
        if let id {
            buffer.writeStaticString("\"id\":")
            buffer.writeString(id.json)
            buffer.writeStaticString(",")
        }
        buffer.writeStaticString("\"method\":")
        JSONWriter.writeQuoted(method, into: &buffer)
        if let params {
            buffer.writeStaticString(",\"params\":")
            buffer.writeString(params.text)
        }
        buffer.writeStaticString("}\n")
        return buffer
    }

    /// Parses one message from the server. A batch reply (an array) is not expected by a client
    /// that never sends batches and is reported as malformed, like anything that is neither a
    /// response nor a notification.
    ///
    /// - Throws: `RPCClientCodec.Malformed` with a reason.
    public static func parse(_ buffer: ByteBuffer) throws(Malformed) -> RPCServerMessage {
        try buffer.withUnsafeReadableBytes { bytes throws(Malformed) -> RPCServerMessage in
            var scanner = JSONScanner(bytes, maxDepth: 10_000)
            let envelope: Envelope
            do throws(JSONScanner.Failure) {
                scanner.skipWhitespace()
                guard scanner.peek() == UInt8(ascii: "{") else { throw .syntax(offset: scanner.index) }
                envelope = try Envelope(&scanner)
                scanner.skipWhitespace()
                guard scanner.atEnd else { throw .syntax(offset: scanner.index) }
            } catch .syntax(let offset) {
                throw Malformed("not a JSON object (at byte \(offset))")
            } catch {
                throw Malformed("JSON nested too deeply")
            }
            return try envelope.message(scanner.base)
        }
    }

    public struct Malformed: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// The byte ranges of the members a client looks at.
    private struct Envelope {
        var id: Range<Int>?
        var method: Range<Int>?
        var params: Range<Int>?
        var result: Range<Int>?
        var error: Range<Int>?
        var errorKind: JSONScanner.Kind?
        var methodKind: JSONScanner.Kind?

        init(_ scanner: inout JSONScanner) throws(JSONScanner.Failure) {
            let members = try Self.members(&scanner, depth: 1)
            for (name, range, kind) in members {
                switch name {
                case "id": id = range
                case "method":
                    method = range
                    methodKind = kind
                case "params": params = range
                case "result": result = range
                case "error":
                    error = range
                    errorKind = kind
                default: break
                }
            }
        }

        /// Scans the object at the scanner's position, returning each member's name, value range and kind.
        static func members(_ scanner: inout JSONScanner, depth: Int) throws(JSONScanner.Failure) -> [(String, Range<Int>, JSONScanner.Kind)] {
            try scanner.expect(UInt8(ascii: "{"))
            var members: [(String, Range<Int>, JSONScanner.Kind)] = []
            scanner.skipWhitespace()
            if scanner.peek() == UInt8(ascii: "}") {
                scanner.index += 1
                return members
            }
            while true {
                guard scanner.peek() == UInt8(ascii: "\"") else { throw .syntax(offset: scanner.index) }
                let keyStart = scanner.index
                _ = try scanner.scanString()
                let key = RPCMessageParser.decodeString(scanner.base, keyStart..<scanner.index)
                scanner.skipWhitespace()
                try scanner.expect(UInt8(ascii: ":"))
                scanner.skipWhitespace()
                let start = scanner.index
                let kind = try scanner.skipValue(depth: depth)
                members.append((key, start..<scanner.index, kind))
                scanner.skipWhitespace()
                if scanner.peek() == UInt8(ascii: ",") {
                    scanner.index += 1
                    scanner.skipWhitespace()
                    continue
                }
                try scanner.expect(UInt8(ascii: "}"))
                return members
            }
        }

        func message(_ base: UnsafePointer<UInt8>) throws(Malformed) -> RPCServerMessage {
            func text(_ range: Range<Int>) -> String {
                String(decoding: UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count), as: UTF8.self)
            }
            if let method {
                guard methodKind == .string else { throw Malformed("method is not a string") }
                return .notification(
                    method: RPCMessageParser.decodeString(base, method), params: params.map { JSONFragment(unchecked: text($0)) })
            }
            guard let id else { throw Malformed("neither a response (no id) nor a notification (no method)") }
            let rpcID = RPCID(json: text(id))
            if let result { return .response(id: rpcID, outcome: .success(JSONFragment(unchecked: text(result)))) }
            guard let error, errorKind == .object else { throw Malformed("a response without result or error object") }
            return .response(id: rpcID, outcome: .failure(try Self.decodeError(base, error)))
        }

        /// `{"code":C,"message":M,"data":D}`: code and message required, data kept as raw text.
        static func decodeError(_ base: UnsafePointer<UInt8>, _ range: Range<Int>) throws(Malformed) -> RPCError {
            var scanner = JSONScanner(UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count), maxDepth: 10_000)
            let members: [(String, Range<Int>, JSONScanner.Kind)]
            do throws(JSONScanner.Failure) {
                members = try Self.members(&scanner, depth: 1)
            } catch {
                throw Malformed("unreadable error object")
            }
            let inner = scanner.base
            func text(_ range: Range<Int>) -> String {
                String(decoding: UnsafeRawBufferPointer(start: inner + range.lowerBound, count: range.count), as: UTF8.self)
            }
            var code: Int?
            var message = ""
            var data: JSONFragment?
            for (name, value, kind) in members {
                switch name {
                case "code" where kind == .number: code = Int(text(value))
                case "message" where kind == .string: message = RPCMessageParser.decodeString(inner, value)
                case "data": data = JSONFragment(unchecked: text(value))
                default: break
                }
            }
            guard let code else { throw Malformed("an error without an integer code") }
            return RPCError(RPCError.Code(code), message, data: data)
        }
    }
}
