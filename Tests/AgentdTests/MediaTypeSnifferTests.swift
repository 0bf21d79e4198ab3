import Foundation
import Services
import Testing

/// `MediaTypeSniffer` on its own: signatures, text cut at the window, JSON only when it parses.
@Suite("Media type sniffing")
struct MediaTypeSnifferTests {
    func sniff(_ data: Data) -> String { MediaTypeSniffer.mediaType(head: data, size: Int64(data.count)) }

    @Test("signatures: JPEG, GIF, WebP, zip; RIFF without WEBP is not an image")
    func signatures() {
        #expect(sniff(Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10])) == "image/jpeg")
        #expect(sniff(Data("GIF89a\u{1}\u{0}".utf8)) == "image/gif")
        #expect(sniff(Data("RIFF\u{0}\u{0}\u{0}\u{0}WEBPVP8 ".utf8)) == "image/webp")
        #expect(sniff(Data("RIFF\u{0}\u{0}\u{0}\u{0}WAVEfmt ".utf8)) == "application/octet-stream")
        #expect(sniff(Data([0x50, 0x4B, 0x03, 0x04, 0x14, 0])) == "application/zip")
        #expect(sniff(Data()) == "text/plain")
    }

    @Test("text longer than the window: a character cut at the window's end is still text; invalid UTF-8 inside is not")
    func textWindow() {
        let window = MediaTypeSniffer.textWindow
        // "€" (3 bytes) straddling the window's end.
        let text = Data(repeating: UInt8(ascii: "a"), count: window - 1) + Data("€ and more".utf8)
        #expect(MediaTypeSniffer.mediaType(head: text.prefix(window), size: Int64(text.count)) == "text/plain")
        var broken = Data(repeating: UInt8(ascii: "a"), count: 100)
        broken[50] = 0xFF
        #expect(sniff(broken) == "application/octet-stream")
        // A complete file may not end in a cut character.
        #expect(sniff(Data("abc".utf8) + Data([0xE2, 0x82])) == "application/octet-stream")
    }

    @Test("JSON: a leading { or [ that parses (whitespace first is fine); past jsonLimit, text")
    func json() {
        #expect(sniff(Data("  [1, 2, 3]\n".utf8)) == "application/json")
        #expect(sniff(Data("[1, 2,".utf8)) == "text/plain")
        #expect(sniff(Data("\"just a string\"".utf8)) == "text/plain")
        let big = Data("[".utf8) + Data(repeating: UInt8(ascii: " "), count: MediaTypeSniffer.jsonLimit) + Data("]".utf8)
        #expect(MediaTypeSniffer.mediaType(head: big.prefix(MediaTypeSniffer.jsonLimit), size: Int64(big.count)) == "text/plain")
    }
}
