import Foundation

/// A domain's error for a param that fails validation: its `invalid(field:reason:)` case, `-32602`
/// with `{field, reason}` on the wire.
///
/// The checks every domain makes alike (a title or name, a page's limit, a page's cursor) are
/// written once, below, and throw the calling domain's own error type: each domain keeps its errors,
/// and a reason reads the same in every domain.
protocol InvalidParamsError: Error {
    static func invalid(field: String, reason: String) -> Self
}

extension InvalidParamsError {
    /// A title or a name, trimmed: 1 to `maxLength` characters.
    static func validTitle(_ text: String, field: String = "title", maxLength: Int) throws(Self) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw invalid(field: field, reason: "must not be empty") }
        guard trimmed.count <= maxLength else { throw invalid(field: field, reason: "at most \(maxLength) characters") }
        return trimmed
    }

    /// A page's size: `limit`, or `defaultLimit` when not given; 1 to `maxLimit`.
    static func validLimit(_ limit: Int?, default defaultLimit: Int, max maxLimit: Int) throws(Self) -> Int {
        let limit = limit ?? defaultLimit
        guard (1...maxLimit).contains(limit) else { throw invalid(field: "limit", reason: "between 1 and \(maxLimit)") }
        return limit
    }

    /// The position a page's cursor holds (`PageCursor`); `method` is the list that gave it.
    static func position(cursor: String, from method: String) throws(Self) -> Int64 {
        guard let position = PageCursor.decode(cursor) else { throw invalid(field: "cursor", reason: "not a cursor from \(method)") }
        return position
    }
}
