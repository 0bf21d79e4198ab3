import Services

/// Builds the response head from libcurl's header callback, one line at a time.
///
/// libcurl reports every header block it reads: `100 Continue` and other 1xx interim responses,
/// a proxy's `CONNECT` answer, then the real response (and, after the body, trailers). Each status
/// line starts a new block; the last complete non-1xx block is the response.
struct ResponseHeadParser {
    enum Event {
        case none
        /// A block ended with this head (not an interim 1xx one).
        case blockEnded(HTTPResponseHead)
    }

    private var status: Int?
    private var headers: [(name: String, value: String)] = []

    mutating func feed(_ line: UnsafeRawBufferPointer) -> Event {
        var end = line.count
        while end > 0, line[end - 1] == UInt8(ascii: "\n") || line[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        if end == 0 {
            defer {
                status = nil
                headers = []
            }
            guard let status, !(100..<200).contains(status) else { return .none }
            return .blockEnded(HTTPResponseHead(status: status, headers: headers))
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: line[0..<end]), as: UTF8.self)
        if text.hasPrefix("HTTP/") {
            // "HTTP/1.1 200 OK", "HTTP/2 200"
            let parts = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
            status = parts.count >= 2 ? Int(parts[1]) : nil
            headers = []
            return .none
        }
        guard status != nil else { return .none }
        if let first = text.first, first == " " || first == "\t", !headers.isEmpty {
            // Obsolete line folding: a continuation of the previous value.
            headers[headers.count - 1].value += " " + text.trimmed
            return .none
        }
        guard let colon = text.firstIndex(of: ":") else { return .none }
        headers.append((name: String(text[..<colon]), value: text[text.index(after: colon)...].trimmed))
        return .none
    }
}

extension StringProtocol {
    fileprivate var trimmed: String {
        var slice = self[...]
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
