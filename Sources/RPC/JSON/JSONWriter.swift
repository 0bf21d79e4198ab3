import Foundation
import NIOCore

/// JSON text built by hand, for the few values on a hot path that skip the generic encoder.
public enum JSONText {
    /// Appends `value` as a JSON string literal (quoted, escaped as `RPCJSONEncoder` escapes).
    public static func appendQuoted(_ value: String, to text: inout String) {
        if JSONWriter.needsEscaping(value) {
            text += JSONWriter.quoted(value)
            return
        }
        text += "\""
        text += value
        text += "\""
    }
}

/// Writes JSON text: string quoting and the response envelopes, straight into a `ByteBuffer`.
enum JSONWriter {
    /// The encoder settings of the wire format: no escaped slashes, and sorted keys so that documents
    /// (and tests) are stable. `RPCJSONEncoder` writes the same bytes much faster and is what results
    /// and notifications use; this one remains the reference (tests compare the two), the fallback
    /// for the few patterns `RPCJSONEncoder` cannot stream, and the base of pretty-printing.
    static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    static func encodeToString<T: Encodable>(_ value: T) throws -> String {
        try RPCJSONEncoder().encodeToString(value)
    }

    /// `value` as a JSON string literal.
    static func quoted(_ value: String) -> String {
        var buffer = ByteBufferAllocator().buffer(capacity: value.utf8.count + 2)
        writeQuoted(value, into: &buffer)
        return String(buffer: buffer)
    }

    /// Whether `value` has a character a JSON string literal must escape (a control character, `"`
    /// or `\`); most ids and names have none, and are copied as they are.
    static func needsEscaping(_ value: String) -> Bool {
        value.utf8.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
    }

    static func writeQuoted(_ value: String, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        if !needsEscaping(value) {
            buffer.writeString(value)
        } else {
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                case 0x0A: buffer.writeStaticString("\\n")
                case 0x0D: buffer.writeStaticString("\\r")
                case 0x09: buffer.writeStaticString("\\t")
                case 0x08: buffer.writeStaticString("\\b")
                case 0x0C: buffer.writeStaticString("\\f")
                case 0..<0x20:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    buffer.writeStaticString("\\u00")
                    buffer.writeInteger(hex[Int(byte >> 4)])
                    buffer.writeInteger(hex[Int(byte & 0xF)])
                default: buffer.writeInteger(byte)
                }
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    /// `{"jsonrpc":"2.0","id":ID,"result":RESULT}`, written with one capacity check and plain
    /// copies (each separate `ByteBuffer.write…` call costs ~200 instructions).
    static func writeResult(id: RPCID, result: ByteBuffer, into buffer: inout ByteBuffer) {
        let head: StaticString = "{\"jsonrpc\":\"2.0\",\"id\":"
        let middle: StaticString = ",\"result\":"
        var idText = id.json
        idText.withUTF8 { idBytes in
            result.withUnsafeReadableBytes { resultBytes in
                let total = head.utf8CodeUnitCount + idBytes.count + middle.utf8CodeUnitCount + resultBytes.count + 1
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { out in
                    var offset = 0
                    func copy(_ pointer: UnsafeRawPointer, _ count: Int) {
                        (out.baseAddress! + offset).copyMemory(from: pointer, byteCount: count)
                        offset += count
                    }
                    copy(head.utf8Start, head.utf8CodeUnitCount)
                    copy(idBytes.baseAddress!, idBytes.count)
                    copy(middle.utf8Start, middle.utf8CodeUnitCount)
                    if resultBytes.count > 0 { copy(resultBytes.baseAddress!, resultBytes.count) }
                    out[offset] = UInt8(ascii: "}")
                    return total
                }
            }
        }
    }

    /// `{"jsonrpc":"2.0","id":ID,"error":{"code":C,"message":M,"data":D}}`
    static func writeError(id: RPCID, error: RPCError, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"jsonrpc\":\"2.0\",\"id\":")
        buffer.writeString(id.json)
        buffer.writeStaticString(",\"error\":{\"code\":")
        buffer.writeString(String(error.code.rawValue))
        buffer.writeStaticString(",\"message\":")
        writeQuoted(error.message, into: &buffer)
        if let data = error.data {
            buffer.writeStaticString(",\"data\":")
            buffer.writeString(data.text)
        }
        buffer.writeStaticString("}}")
    }

    /// `{"jsonrpc":"2.0","method":M,"params":P}`
    static func writeNotification(method: String, params: ByteBuffer?, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"jsonrpc\":\"2.0\",\"method\":")
        writeQuoted(method, into: &buffer)
        if var params {
            buffer.writeStaticString(",\"params\":")
            buffer.writeBuffer(&params)
        }
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    static func writeOutcome(id: RPCID, outcome: RPCOutcome, into buffer: inout ByteBuffer) {
        switch outcome {
        case .result(let result): writeResult(id: id, result: result, into: &buffer)
        case .deprecatedResult(let result, let notice):
            // `{"jsonrpc":"2.0","id":ID,"result":RESULT,"deprecation":NOTICE}`
            writeResult(id: id, result: result, into: &buffer)
            buffer.moveWriterIndex(to: buffer.writerIndex - 1)
            buffer.writeStaticString(",\"deprecation\":")
            buffer.writeImmutableBuffer(notice)
            buffer.writeStaticString("}")
        case .error(let error): writeError(id: id, error: error, into: &buffer)
        }
    }
}
