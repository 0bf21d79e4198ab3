import Foundation

/// Turns a PDF into text. `PdftotextExtractor` (Storage) runs poppler's `pdftotext` in a process of
/// its own: a hostile PDF can crash or hang that process, never the daemon. Calls block (a child
/// process, up to `timeout`): run them on a `BlockingWorkRunner`.
public protocol PDFTextExtractor: Sendable {
    /// The text of the PDF at `path`, at most `maxBytes` of UTF-8 (cut at a character boundary,
    /// `truncated`); gives up after `timeout`.
    ///
    /// - Throws: `PDFTextExtractionError.unreadable` for a PDF it cannot read (damaged, encrypted,
    ///   hostile, too slow); `.unavailable` when the extractor itself cannot run (not installed).
    func extractText(path: String, maxBytes: Int, timeout: Duration) throws -> (text: String, truncated: Bool)
}

public enum PDFTextExtractionError: Error, Equatable, Sendable {
    /// This PDF gives no text, and trying again would not change that: the reason says why.
    case unreadable(String)
    /// The extractor could not run (`pdftotext` missing, no process could be started): the file's
    /// text stays pending and is tried again later.
    case unavailable(String)
}
