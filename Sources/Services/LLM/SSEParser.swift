/// One server-sent event: what the providers' streaming endpoints send.
public struct SSEEvent: Sendable, Equatable {
    /// The `event:` field; nil when the event named none (the spec's default `message`). A bare
    /// `error: …` line (llama.cpp) arrives as an event named `error`.
    public var event: String?
    /// The `data:` lines joined with `\n`.
    public var data: String
    /// The last `id:` seen on the stream (it carries over to later events, as the spec says).
    public var id: String?

    public init(event: String? = nil, data: String, id: String? = nil) {
        self.event = event
        self.data = data
        self.id = id
    }
}

/// An incremental parser of `text/event-stream` (the WHATWG event-stream grammar), fed the body in
/// whatever chunks the transport delivers: an event, a line ending (CR, LF or CRLF, even a CR and
/// its LF in two chunks) or a UTF-8 sequence may be split anywhere.
///
/// - Comment lines (`:` first, keep-alives) and unknown fields are ignored; `retry:` sets
///   `reconnectionTime`; a UTF-8 BOM at the start of the stream is skipped; one space after the
///   colon is removed, none is required.
/// - llama.cpp's bare `error: {...}` line (no `data:`, sent by its 2025 builds inside a 200 stream)
///   is emitted at once as an event named `error`.
/// - Memory is bounded: an event (its data plus the line being read) over `maxEventBytes` throws
///   `SSEParser.Failure.eventTooLarge` rather than buffering a stream that never ends its event.
/// - At the end of the body, `finish()` dispatches an event left without its closing blank line (a
///   lenient choice: several servers close after `data: [DONE]\n`).
///
/// ```swift
/// var parser = SSEParser()
/// for try await chunk in response.body {
///     for event in try parser.feed(chunk) { handle(event) }
/// }
/// for event in try parser.finish() { handle(event) }
/// ```
public struct SSEParser: Sendable {
    public enum Failure: Error, Sendable, Equatable {
        case eventTooLarge(limit: Int)
    }

    public let maxEventBytes: Int
    /// The last `retry:` value, in milliseconds.
    public private(set) var reconnectionTime: Int?

    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var eventName: String?
    private var lastEventID: String?
    /// The previous chunk ended with CR: an LF starting the next one belongs to it.
    private var afterCR = false
    /// No line completed yet: the BOM check is still due.
    private var atStart = true

    public init(maxEventBytes: Int = 8 << 20) {
        self.maxEventBytes = maxEventBytes
    }

    /// Parses `chunk` and returns the events it completed, in order.
    public mutating func feed(_ chunk: some Collection<UInt8>) throws(Failure) -> [SSEEvent] {
        var events: [SSEEvent] = []
        for byte in chunk {
            if afterCR {
                afterCR = false
                if byte == 0x0A { continue }
            }
            switch byte {
            case 0x0D:
                afterCR = true
                processLine(into: &events)
            case 0x0A:
                processLine(into: &events)
            default:
                line.append(byte)
                if line.count + data.count > maxEventBytes {
                    throw .eventTooLarge(limit: maxEventBytes)
                }
            }
        }
        return events
    }

    /// The body ended: returns an event left without its blank line, if any.
    public mutating func finish() throws(Failure) -> [SSEEvent] {
        var events: [SSEEvent] = []
        if !line.isEmpty { processLine(into: &events) }
        dispatch(into: &events)
        return events
    }

    private mutating func processLine(into events: inout [SSEEvent]) {
        defer { line.removeAll(keepingCapacity: true) }
        if atStart {
            atStart = false
            if line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }
        }
        if line.isEmpty {
            dispatch(into: &events)
            return
        }
        if line[0] == UInt8(ascii: ":") { return }
        let colon = line.firstIndex(of: UInt8(ascii: ":"))
        let field = colon.map { line[..<$0] } ?? line[...]
        var valueStart = colon.map { $0 + 1 } ?? line.endIndex
        if valueStart < line.endIndex, line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        let value = line[valueStart...]
        switch String(decoding: field, as: UTF8.self) {
        case "data":
            if hasData { data.append(0x0A) }
            data.append(contentsOf: value)
            hasData = true
        case "event":
            eventName = String(decoding: value, as: UTF8.self)
        case "id":
            if !value.contains(0) { lastEventID = String(decoding: value, as: UTF8.self) }
        case "retry":
            if !value.isEmpty, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let milliseconds = Int(String(decoding: value, as: UTF8.self)) {
                reconnectionTime = milliseconds
            }
        case "error":
            events.append(SSEEvent(event: "error", data: String(decoding: value, as: UTF8.self), id: lastEventID))
        default:
            break
        }
    }

    private mutating func dispatch(into events: inout [SSEEvent]) {
        defer {
            data.removeAll(keepingCapacity: true)
            hasData = false
            eventName = nil
        }
        guard hasData else { return }
        events.append(SSEEvent(event: eventName, data: String(decoding: data, as: UTF8.self), id: lastEventID))
    }
}
