import Services
import Testing

/// The `{{variable}}` template language on its own: parsing, errors with their place, rendering.
@Suite("Prompt templates")
struct PromptTemplateTests {
    @Test("placeholders with or without inner whitespace, dotted names, each name once in order of first use")
    func parses() throws {
        let template = try PromptTemplate(parsing: "Hi {{user}}, {{ module.title }} {{\tuser\n}}{{_x9}}.")
        #expect(template.variables == ["user", "module.title", "_x9"])
        #expect(
            template.segments == [
                .text("Hi "), .variable("user"), .text(", "), .variable("module.title"), .text(" "), .variable("user"), .variable("_x9"),
                .text("."),
            ])
        #expect(try template.render(["user": "Ann", "module.title": "Notes", "_x9": "!"]) == "Hi Ann, Notes Ann!.")
    }

    @Test("{{{{ is a literal {{; lone braces and }} are text")
    func literalBraces() throws {
        let template = try PromptTemplate(parsing: "json: {\"a\": 1} }} {{{{not a var}} {{{{{ {{x}}")
        #expect(template.variables == ["x"])
        #expect(try template.render(["x": "1"]) == "json: {\"a\": 1} }} {{not a var}} {{{ 1")
        #expect(try PromptTemplate(parsing: "{").render([:]) == "{")
        #expect(try PromptTemplate(parsing: "{{{{").render([:]) == "{{")
    }

    @Test("a value is inserted as is, never expanded again: no injection")
    func noReexpansion() throws {
        let template = try PromptTemplate(parsing: "A {{a}} B {{b}}")
        let text = try template.render(["a": "{{b}}", "b": "{{{{a}} }}"])
        #expect(text == "A {{b}} B {{{{a}} }}")
    }

    @Test("an unclosed {{ and a bad name are refused with their line and column")
    func errors() {
        #expect(throws: PromptTemplate.ParseError.unclosed(line: 1, column: 7)) { try PromptTemplate(parsing: "Hello {{user") }
        #expect(throws: PromptTemplate.ParseError.unclosed(line: 2, column: 3)) { try PromptTemplate(parsing: "é\nab{{ a {{ b }}") }
        #expect(throws: PromptTemplate.ParseError.invalidName("1user", line: 3, column: 2)) { try PromptTemplate(parsing: "\n\nx{{1user}}") }
        #expect(throws: PromptTemplate.ParseError.invalidName("", line: 1, column: 1)) { try PromptTemplate(parsing: "{{ }}") }
        #expect(throws: PromptTemplate.ParseError.invalidName("a b", line: 1, column: 1)) { try PromptTemplate(parsing: "{{a b}}") }
        #expect(throws: PromptTemplate.ParseError.invalidName("a-b", line: 1, column: 1)) { try PromptTemplate(parsing: "{{a-b}}") }
        #expect(throws: PromptTemplate.ParseError.invalidName("{x", line: 1, column: 1)) { try PromptTemplate(parsing: "{{{x}}}") }
        #expect(throws: PromptTemplate.ParseError.invalidName(".a", line: 1, column: 1)) { try PromptTemplate(parsing: "{{.a}}") }
        let message = PromptTemplate.ParseError.unclosed(line: 2, column: 3).description
        #expect(message.contains("line 2, column 3"), "\(message)")
    }

    @Test("the first missing value is named; unused values are listed; the size limit is checked first")
    func rendering() throws {
        let template = try PromptTemplate(parsing: "{{a}}{{b}}{{c}}")
        #expect(throws: PromptTemplate.RenderError.missing("b")) { try template.render(["a": "", "extra": "x"]) }
        #expect(template.unusedNames(in: ["a": "", "z": "", "b": "", "m": ""]) == ["m", "z"])
        let many = try PromptTemplate(parsing: String(repeating: "{{x}}", count: 1000))
        #expect(throws: PromptTemplate.RenderError.tooLarge(limit: 1_000_000)) {
            try many.render(["x": String(repeating: "a", count: 1001)], maxBytes: 1_000_000)
        }
        #expect(try many.render(["x": String(repeating: "a", count: 1000)], maxBytes: 1_000_000).utf8.count == 1_000_000)
    }

    @Test("names: a letter or _, then letters, digits, _ and .")
    func names() {
        for valid in ["a", "_", "A_b.c9", "module.title", "x."] { #expect(PromptTemplate.isValidName(valid), "\(valid)") }
        for invalid in ["", "9a", ".a", "a-b", "a b", "é", "a{"] { #expect(!PromptTemplate.isValidName(invalid), "\(invalid)") }
    }
}
