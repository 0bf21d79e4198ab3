/// The most bytes one reply may hold (`limits.reply_budget_bytes`, default 16 MiB).
///
/// Without it one call could make a reply of hundreds of MiB (500 messages of 1 MiB, an export of
/// a long chat), built in memory and queued for a client that may never read it. A list stops
/// early and answers `nextCursor` (or `hasMore`) where the next item would pass the budget; a
/// single item, or the first item of a page, that alone passes it answers `ReplyBudgetError`
/// (`-32006`, `{setting, limit, actual}`).
///
/// Sizes are estimates, never a second encoding: each item adds up the JSON-escaped length of its
/// text fields and a fixed allowance for the rest (`ReplySized`). They err on the large side.
public struct ReplyBudget: Sendable, Equatable {
    public static let defaultBytes = 16 << 20
    /// The setting, as errors name it (`data.setting`, like the other limits: without `limits.`).
    public static let setting = "reply_budget_bytes"
    /// What a reply holds besides its items: the JSON-RPC envelope, the id, `nextCursor`.
    static let envelopeBytes = 512

    public let bytes: Int

    public init(bytes: Int = ReplyBudget.defaultBytes) {
        self.bytes = bytes
    }

    /// The error for a reply of about `actual` bytes.
    public func tooLarge(_ actual: Int) -> ReplyBudgetError {
        ReplyBudgetError(limit: bytes, actual: actual)
    }

    /// `item`, when a reply holding it alone fits.
    ///
    /// - Throws: `ReplyBudgetError`.
    public func check<Item: ReplySized>(_ item: Item) throws -> Item {
        try check(size: item.replySize)
        return item
    }

    /// - Throws: `ReplyBudgetError` when a reply with `size` bytes of result would not fit.
    public func check(size: Int) throws {
        let total = size + Self.envelopeBytes
        guard total <= bytes else { throw tooLarge(total) }
    }

    /// Fills a reply with items while they fit: the running total of a list's reply.
    public struct Filler: Sendable {
        public let budget: ReplyBudget
        public private(set) var used = ReplyBudget.envelopeBytes
        public private(set) var count = 0

        public init(_ budget: ReplyBudget) { self.budget = budget }

        /// Counts an item of `size` bytes and answers true when it still fits; false (counting
        /// nothing) when it would pass the budget and items came before it.
        ///
        /// - Throws: `ReplyBudgetError` when it is the first item and does not fit alone.
        public mutating func add(size: Int) throws -> Bool {
            let next = used + size + 1  // the comma before it
            guard next <= budget.bytes else {
                if count == 0 { throw budget.tooLarge(next) }
                return false
            }
            used = next
            count += 1
            return true
        }

        public mutating func add(_ item: some ReplySized) throws -> Bool {
            try add(size: item.replySize)
        }
    }
}

/// An item whose encoded size can be estimated without encoding it.
public protocol ReplySized {
    /// About the bytes of the item as JSON, never less: the escaped length of its text and a fixed
    /// allowance for its ids, numbers, dates and keys.
    var replySize: Int { get }
}

/// Helpers for `ReplySized` estimates.
public enum ReplySize {
    /// Keys, ids, numbers and dates of an item of a few fields.
    public static let itemOverhead = 384

    /// The bytes of `text` as a JSON string literal, quotes included, escaped as the wire format
    /// escapes: `"` and `\` take two bytes, control characters two (`\n`) or six (`\u0001`),
    /// everything else (also non-ASCII) as its UTF-8. One pass over the bytes, no copy.
    public static func text(_ text: String) -> Int {
        var text = text
        return text.withUTF8 { bytes in
            var size = bytes.count + 2
            for byte in bytes where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x08, 0x09, 0x0A, 0x0C, 0x0D: size += 1
                default: size += 5
                }
            }
            return size
        }
    }

    public static func text(_ text: String?) -> Int {
        text.map { Self.text($0) } ?? 4
    }

    public static func texts(_ texts: [String]) -> Int {
        texts.reduce(2) { $0 + text($1) + 1 }
    }
}
