import Foundation

/// A file's media type from its first bytes, when the client gave none: the magic numbers of the
/// formats the agent or a client may care about, else text (valid UTF-8 without NUL) or JSON (text
/// starting with `{` or `[` that parses), else `application/octet-stream`.
public enum MediaTypeSniffer {
    /// How many leading bytes the text check reads (a file longer than this is text when these are).
    public static let textWindow = 64 << 10
    /// JSON is checked by parsing the whole file, only up to this size (beyond: `text/plain`).
    public static let jsonLimit = 4 << 20

    /// - Parameters:
    ///   - head: the file's first bytes: at least `min(size, jsonLimit)` of them for the JSON check
    ///     of a file that size, else at least `min(size, textWindow)`.
    ///   - size: the file's whole size.
    public static func mediaType(head: Data, size: Int64) -> String {
        if let magic = magicType(head) { return magic }
        let window = head.prefix(textWindow)
        guard isText(window, complete: Int64(window.count) == size) else { return "application/octet-stream" }
        if size <= Int64(jsonLimit), head.count >= size, looksLikeJSON(head) { return "application/json" }
        return "text/plain"
    }

    private static func magicType(_ head: Data) -> String? {
        let bytes = [UInt8](head.prefix(16))
        func starts(_ prefix: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + prefix.count && Array(bytes[offset..<offset + prefix.count]) == prefix
        }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "image/png" }
        if starts([0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return "image/gif" }
        if starts(Array("RIFF".utf8)), starts(Array("WEBP".utf8), at: 8) { return "image/webp" }
        if starts(Array("%PDF-".utf8)) { return "application/pdf" }
        if starts([0x1F, 0x8B]) { return "application/gzip" }
        if starts([0x50, 0x4B, 0x03, 0x04]) || starts([0x50, 0x4B, 0x05, 0x06]) { return "application/zip" }
        return nil
    }

    /// Valid UTF-8 without NUL. `complete`: these are all the file's bytes; else a multi-byte
    /// character cut at the window's end is fine.
    static func isText(_ bytes: Data, complete: Bool) -> Bool {
        guard !bytes.contains(0) else { return false }
        var body = bytes
        if !complete {
            // Drop an incomplete trailing sequence (at most 3 bytes: a lead byte and continuations).
            var cut = 0
            for byte in bytes.suffix(3).reversed() {
                cut += 1
                if byte & 0xC0 != 0x80 {
                    if byte & 0x80 == 0 { cut = 0 }
                    break
                }
            }
            if cut > 0, let lead = bytes.suffix(cut).first {
                let needed = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
                if needed > cut { body = bytes.dropLast(cut) }
            }
        }
        return String(validating: body, as: UTF8.self) != nil
    }

    private static func looksLikeJSON(_ bytes: Data) -> Bool {
        guard let first = bytes.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }), first == UInt8(ascii: "{") || first == UInt8(ascii: "[")
        else { return false }
        return (try? JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed])) != nil
    }
}
