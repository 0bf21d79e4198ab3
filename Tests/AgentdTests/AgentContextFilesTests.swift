import Foundation
import Testing

@testable import Services

/// Files in the agent's context (`AgentContext.build`, `AgentAttachments`): pure, no I/O.
@Suite("Agent context with files: kinds, refusals, the budget, the cut note and the report")
struct AgentContextFilesTests {
    static func file(_ id: String, _ name: String, _ type: String, size: Int64) -> FileMetadata {
        FileMetadata(
            id: id, name: name, mediaType: type, size: size, sha256: String(repeating: "0", count: 64), createdAt: Date(timeIntervalSince1970: 0))
    }

    static func textPart(_ id: String, _ text: String) -> AgentAttachments.Part {
        AgentAttachments.Part(file: file(id, id + ".txt", "text/plain", size: Int64(text.utf8.count)), body: .text(text))
    }

    static func question(_ text: String, _ parts: [AgentAttachments.Part] = []) -> AgentContext.Unit {
        AgentContext.Unit(messages: [LLMMessage(role: .user, content: text)], chatMessages: 1, parts: parts)
    }

    @Test("kinds by media type (and by name for octet-stream); refusals name the reason")
    func kinds() {
        let cases: [(String, String, AgentAttachments.Kind)] = [
            ("a.txt", "text/plain", .text), ("a.json", "application/json", .text), ("a", "application/vnd.api+json", .text),
            ("a.ts", "application/typescript", .text), ("main.swift", "application/octet-stream", .text),
            ("Makefile", "application/octet-stream", .text),
            ("a.png", "image/png", .image), ("a.jpg", "image/jpeg", .image), ("a.webp", "image/webp", .image), ("a.gif", "image/gif", .image),
            ("a.pdf", "application/pdf", .extracted), ("a.zip", "application/zip", .binary), ("a.bin", "application/octet-stream", .binary),
            ("a.svg", "image/svg+xml", .text), ("a.csv", "text/csv; charset=utf-8", .text), ("a.tiff", "image/tiff", .binary),
        ]
        for (name, type, kind) in cases { #expect(AgentAttachments.kind(of: Self.file("f", name, type, size: 1)) == kind, "\(name) \(type)") }
        let png = Self.file("fil_1", "shot.png", "image/png", size: 10)
        #expect(AgentAttachments.refusal(png, acceptsImages: true, model: "gpt-4o") == nil)
        #expect(AgentAttachments.refusal(png, acceptsImages: false, model: "gpt-3.5-turbo")?.contains("gpt-3.5-turbo takes no images") == true)
        let huge = Self.file("fil_2", "big.png", "image/png", size: 21 << 20)
        #expect(AgentAttachments.refusal(huge, acceptsImages: true, model: "gpt-4o")?.contains("20 MiB") == true)
        #expect(
            AgentAttachments.refusal(Self.file("f", "a.zip", "application/zip", size: 1), acceptsImages: true, model: "m")
                == "binary content is not read (application/zip): the agent reads text, images and PDFs")
        #expect(AgentAttachments.refusal(Self.file("f", "a.pdf", "application/pdf", size: 1), acceptsImages: false, model: "m") == nil)
    }

    @Test("UTF-8: valid text is text; a read cut inside a character drops it; invalid bytes or NUL are not text")
    func utf8() {
        #expect(AgentAttachments.text(Data("héllo".utf8), complete: true) == "héllo")
        let cut = Data(Array("hé".utf8).dropLast())
        #expect(AgentAttachments.text(cut, complete: false) == "h")
        #expect(AgentAttachments.text(cut, complete: true) == nil)
        #expect(AgentAttachments.text(Data([0x61, 0xFF, 0x62]), complete: false) == nil)
        #expect(AgentAttachments.text(Data([0x61, 0x00, 0x62]), complete: true) == nil)
        #expect(AgentAttachments.utf8Prefix("aéb", bytes: 2) == "a" && AgentAttachments.utf8Prefix("aéb", bytes: 3) == "aé")
    }

    @Test("room shared fairly: short texts whole, long ones cut to equal shares, never more than the room")
    func share() {
        #expect(AgentContext.share(100, among: [10, 500, 500]) == [10, 45, 45])
        #expect(AgentContext.share(100, among: [10, 20]) == [10, 20])
        #expect(AgentContext.share(0, among: [10, 20]) == [0, 0])
        #expect(AgentContext.share(9, among: [0, 100]) == [0, 9])
    }

    @Test("a text file that fits goes whole after the question, with its header and no cut; the report has no cutFiles")
    func wholeText() throws {
        let built = try AgentContext.build(
            system: nil, history: [], current: Self.question("Summarise", [Self.textPart("fil_1", "line one\nline two")]), window: 10_000,
            reserve: 100, tools: [], provider: "fake")
        let content = try #require(built.messages.last?.content)
        #expect(content.hasPrefix("Summarise\n\nThe user attached a file"))
        #expect(content.contains("<file name=\"fil_1.txt\" id=\"fil_1\" type=\"text/plain\">\nline one\nline two\n</file>"))
        #expect(!content.contains("[cut:"))
        #expect(built.report.cutFiles == nil && built.report.keptMessages == 1)
        #expect(built.report.estimatedTokens == AgentContext.estimate(built.messages))
    }

    @Test("a text too long for the window is cut with a visible note; the report says what was kept of what; the request fits")
    func cutText() throws {
        let long = String(repeating: "0123456789", count: 2_000)  // 20,000 bytes, ~5,000 tokens
        let window = 1_000
        let reserve = 100
        let built = try AgentContext.build(
            system: "Be brief.", history: [], current: Self.question("Read it", [Self.textPart("fil_9", long)]), window: window, reserve: reserve,
            tools: [], provider: "fake")
        let content = try #require(built.messages.last?.content)
        let cut = try #require(built.report.cutFiles?.first)
        #expect(cut.fileId == "fil_9" && cut.name == "fil_9.txt" && cut.size == 20_000)
        #expect(cut.keptBytes > 2_000 && cut.keptBytes < 3_600, "\(cut)")
        #expect(content.contains("[cut: the first \(cut.keptBytes) of 20000 bytes of fil_9.txt are shown"))
        #expect(content.contains(String(long.prefix(Int(cut.keptBytes))) + "\n</file>"))
        #expect(AgentContext.estimate(built.messages) <= window - reserve)
        #expect(built.report.estimatedTokens == AgentContext.estimate(built.messages))
    }

    @Test("two files share the room: the short one whole, the long one cut; the module's files go into the system message")
    func sharedRoom() throws {
        let short = Self.textPart("fil_s", "short text")
        let long = Self.textPart("fil_l", String(repeating: "x", count: 50_000))
        let module = Self.textPart("fil_m", String(repeating: "m", count: 50_000))
        let built = try AgentContext.build(
            system: "sys", moduleFiles: [module], history: [], current: Self.question("Q", [short, long]), window: 4_000, reserve: 200, tools: [],
            provider: "fake")
        #expect(built.messages.first?.role == .system)
        #expect(built.messages.first?.content?.contains("The module's files follow.") == true)
        #expect(built.messages.first?.content?.contains("id=\"fil_m\"") == true)
        #expect(built.messages.last?.content?.contains("short text\n</file>") == true)
        let cuts = try #require(built.report.cutFiles)
        #expect(Set(cuts.map(\.fileId)) == ["fil_l", "fil_m"])
        // Fair: the two long texts keep about as much as each other.
        #expect(abs(cuts[0].keptBytes - cuts[1].keptBytes) <= 64, "\(cuts)")
        #expect(AgentContext.estimate(built.messages) <= 3_800)
    }

    @Test("images go as image parts of the question (the module's too) and cost a fixed estimate, not their bytes")
    func images() throws {
        let image = LLMImage(data: Array(repeating: 7, count: 300_000), mediaType: "image/png")
        let part = AgentAttachments.Part(file: Self.file("fil_i", "shot.png", "image/png", size: 300_000), body: .image(image))
        let modulePart = AgentAttachments.Part(
            file: Self.file("fil_j", "logo.gif", "image/gif", size: 10), body: .image(LLMImage(url: "data:image/gif;base64,R0lG")))
        let built = try AgentContext.build(
            system: "sys", moduleFiles: [modulePart], history: [], current: Self.question("What is it?", [part]), window: 8_000, reserve: 100,
            tools: [],
            provider: "fake")
        let question = try #require(built.messages.last)
        #expect(question.images == [image, LLMImage(url: "data:image/gif;base64,R0lG")])
        #expect(question.content?.contains("[image shot.png (fil_i) follows]") == true)
        #expect(built.messages.first?.images.isEmpty == true)
        #expect(built.report.estimatedTokens < 4_000 && built.report.estimatedTokens >= 2 * AgentAttachments.imageTokens)
    }

    @Test("a note (a PDF whose text is not extracted yet) is written in place of the content")
    func note() throws {
        let part = AgentAttachments.Part(
            file: Self.file("fil_p", "spec.pdf", "application/pdf", size: 1_000), body: .note("its text is still being extracted"))
        let built = try AgentContext.build(
            system: nil, history: [], current: Self.question("Q", [part]), window: 4_000, reserve: 100, tools: [], provider: "fake")
        #expect(
            built.messages.last?.content?.contains(
                "<file name=\"spec.pdf\" id=\"fil_p\" type=\"application/pdf\">\n[its text is still being extracted]\n</file>") == true)
        #expect(built.report.cutFiles == nil)
    }

    @Test("history: an older message keeps its files (cut to an eighth of the window each); units that do not fit are dropped whole, files with them")
    func history() throws {
        let old = Self.question("old", [Self.textPart("fil_o", String(repeating: "o", count: 40_000))])
        let answer = AgentContext.Unit(messages: [LLMMessage(role: .assistant, content: "ok")], chatMessages: 1)
        let built = try AgentContext.build(
            system: nil, history: [old, answer], current: Self.question("new"), window: 8_000, reserve: 200, tools: [], provider: "fake")
        #expect(built.messages.count == 3)
        let cut = try #require(built.report.cutFiles?.first)
        #expect(cut.fileId == "fil_o" && cut.keptBytes == Int64(4 * 7_800 / 8), "\(cut)")
        let tight = try AgentContext.build(
            system: nil, history: [old, answer], current: Self.question("new"), window: 400, reserve: 100, tools: [], provider: "fake")
        #expect(tight.report.droppedMessages == 1 && tight.report.cutFiles == nil)
        #expect(tight.messages.allSatisfy { !($0.content ?? "").contains("fil_o") })
    }

    @Test("no room even for the files' headers: contextOverflow, as for a question too long")
    func overflow() {
        let parts = (1...40).map { Self.textPart("fil_\($0)", "text") }
        #expect(throws: LLMError.self) {
            try AgentContext.build(
                system: nil, history: [], current: Self.question("Q", parts), window: 600, reserve: 100, tools: [], provider: "fake")
        }
    }
}
