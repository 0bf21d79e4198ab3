import Foundation

/// The opaque cursors of keyset-paginated lists: a row's position (a `seq` or a depth) as base64
/// text, so clients pass it back without reading into it.
public enum PageCursor {
    public static func encode(_ position: Int64) -> String {
        Data(String(position).utf8).base64EncodedString()
    }

    /// The position in `cursor`; nil when it is not a cursor (or not a positive position).
    public static func decode(_ cursor: String) -> Int64? {
        guard let data = Data(base64Encoded: cursor), let text = String(data: data, encoding: .utf8),
            let position = Int64(text), position > 0
        else { return nil }
        return position
    }
}

/// A page of a keyset-paginated list: the items, and the cursor of the next page when there may
/// be more. Every `*.list` method answers one, made by `init(rows:limit:budget:position:item:)`
/// (KeysetPage+ReplyBudget.swift), which also keeps it within the reply budget.
public struct KeysetPage<Item: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var items: [Item]
    public var nextCursor: String?

    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}
