import Testing

/// Checks that a batch reply holds exactly the expected replies, in any order (JSON-RPC §6: the
/// client matches replies by id). `error.data` is ignored, as in the spec's examples.
func expectBatch(_ actual: JSON, equals expectedText: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let expected = try JSON(parsing: expectedText).withoutErrorData
    guard let actualItems = actual.withoutErrorData.arrayValue else {
        Issue.record("expected a batch reply (an array), got \(actual)", sourceLocation: sourceLocation)
        return
    }
    guard let expectedItems = expected.arrayValue else {
        Issue.record("the expected batch is not an array: \(expectedText)", sourceLocation: sourceLocation)
        return
    }
    var remaining = actualItems
    var missing: [JSON] = []
    for item in expectedItems {
        if let index = remaining.firstIndex(of: item) {
            remaining.remove(at: index)
        } else {
            missing.append(item)
        }
    }
    if !missing.isEmpty || !remaining.isEmpty {
        Issue.record(
            "batch reply differs: missing \(missing), unexpected \(remaining); whole reply: \(actual)",
            sourceLocation: sourceLocation)
    }
}

/// Checks one reply against the expected JSON text, ignoring `error.data`.
func expectReply(_ actual: JSON, equals expectedText: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let expected = try JSON(parsing: expectedText).withoutErrorData
    #expect(actual.withoutErrorData == expected, "reply \(actual) differs from \(expected)", sourceLocation: sourceLocation)
}

/// The exact text of a top-level member's value in a JSON object text, e.g. `rawMember("id", in:
/// #"{"id":1.50}"#)` is `1.50`: for checks where the bytes themselves are the contract (ids and
/// echoed params must come back as sent, not re-encoded). Nil when the member is absent.
func rawMember(_ name: String, in text: String) -> String? {
    let bytes = Array(text.utf8)
    var index = 0
    func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }
    func skipString() -> Bool {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return false }
        index += 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\\"): index += 2
            case UInt8(ascii: "\""):
                index += 1
                return true
            default: index += 1
            }
        }
        return false
    }
    func skipValue() -> Bool {
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            return skipString()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    guard skipString() else { return false }
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 {
                        index += 1
                        return true
                    }
                default: break
                }
                index += 1
            }
            return false
        default:
            let end: Set<UInt8> = [UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D]
            while index < bytes.count, !end.contains(bytes[index]) { index += 1 }
            return true
        }
    }
    skipWhitespace()
    guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return nil }
    index += 1
    while true {
        skipWhitespace()
        let keyStart = index
        guard skipString() else { return nil }
        let key = String(decoding: bytes[(keyStart + 1)..<(index - 1)], as: UTF8.self)
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
        index += 1
        skipWhitespace()
        let valueStart = index
        guard skipValue() else { return nil }
        if key == name { return String(decoding: bytes[valueStart..<index], as: UTF8.self) }
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ",") else { return nil }
        index += 1
    }
}
