import ArgumentParser
import Foundation

/// What `modules`, `chats` and `prompts` share: list (all pages up to --limit, as a table), show,
/// delete.
struct ResourceKind: Sendable {
    let plural: String
    let columns: [(header: String, cell: @Sendable (JSONTree) -> String)]
    /// Extra list params (filters).

    func list(_ global: GlobalOptions, limit: Int, filters: [(String, JSONTree)]) throws {
        guard limit > 0 else { throw CLIFailure.usage("--limit must be at least 1") }
        let session = try Session(global)
        var items: [JSONTree] = []
        var cursor: String?
        repeat {
            var params = filters
            params.append(("limit", .number(String(min(200, limit - items.count)))))
            if let cursor { params.append(("cursor", .string(cursor))) }
            let page = try session.call("\(plural).list", .object(params))
            items += page["items"]?.array ?? []
            cursor = page["nextCursor"]?.string
        } while cursor != nil && items.count < limit
        if global.json {
            global.printJSON(.array(items))
            return
        }
        Table(headers: columns.map(\.header), rows: items.map { item in columns.map { $0.cell(item) } })
            .print(bold: global.palette != nil)
    }

    func show(_ global: GlobalOptions, id: String) throws {
        let session = try Session(global)
        global.printJSON(try session.call("\(plural).get", .object([("id", .string(id))])))
    }

    func delete(_ global: GlobalOptions, ids: [String]) throws {
        let session = try Session(global)
        for id in ids {
            let result = try session.call("\(plural).delete", .object([("id", .string(id))]))
            if global.pretty { Terminal.out("deleted \(id)\n") } else { global.printJSON(result) }
        }
    }

    static func updated(_ item: JSONTree) -> String { item["updatedAt"]?.string ?? "" }
}

/// Columns padded to their widest cell; the last one is not padded.
struct Table {
    let headers: [String]
    let rows: [[String]]

    func print(bold: Bool) {
        let all = [headers] + rows.map { $0.map { $0.replacingOccurrences(of: "\n", with: " ") } }
        let widths = headers.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        for (index, row) in all.enumerated() {
            var line = row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
            }.joined(separator: "  ")
            while line.last == " " { line.removeLast() }
            Terminal.out(index == 0 && bold ? "\u{1B}[1m\(line)\u{1B}[0m\n" : line + "\n")
        }
    }
}

struct ListOptions: ParsableArguments {
    @Option(help: "Most items to list (pages are followed up to it).")
    var limit = 100
}

struct IDArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("The id.", valueName: "id"))
    var id: String
}

struct IDsArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("One or more ids.", valueName: "id"))
    var ids: [String]
}

// MARK: Modules

struct Modules: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, create, show and delete your modules.",
        discussion: """
            Examples:
              agentctl modules list --tag notes
              agentctl modules create --title Intro --content-file README.md --tag notes
              agentctl modules show mod_…
              agentctl modules delete mod_…
            """,
        subcommands: [List.self, Create.self, Show.self, Delete.self])

    static let kind = ResourceKind(
        plural: "modules",
        columns: [
            ("ID", { $0["id"]?.string ?? "" }), ("TITLE", { $0["title"]?.string ?? "" }),
            ("TAGS", { $0["tags"]?.cellText ?? "" }), ("UPDATED", ResourceKind.updated),
        ])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your modules as a table (newest first).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var list: ListOptions
        @Option(help: "Only modules with this tag.") var tag: String?
        @Option(help: "Only modules whose title or description contains this.") var query: String?
        func run() throws {
            var filters: [(String, JSONTree)] = []
            if let tag { filters.append(("tag", .string(tag))) }
            if let query { filters.append(("query", .string(query))) }
            try Modules.kind.list(global, limit: list.limit, filters: filters)
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a module and print it.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Its title (1-200 characters).") var title: String
        @Option(help: "Its description.") var description: String?
        @Option(help: "Its content.") var content: String?
        @Option(help: ArgumentHelp("Read its content from a file (- for stdin).", valueName: "path")) var contentFile: String?
        @Option(name: .customLong("tag"), help: "A tag (repeatable).") var tags: [String] = []
        func run() throws {
            var params: [(String, JSONTree)] = [("title", .string(title))]
            if let description { params.append(("description", .string(description))) }
            if let text = try contentText(content, file: contentFile, what: "content") { params.append(("content", .string(text))) }
            if !tags.isEmpty { params.append(("tags", .array(tags.map(JSONTree.string)))) }
            let session = try Session(global)
            global.printJSON(try session.call("modules.create", .object(params)))
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one module.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var id: IDArgument
        func run() throws { try Modules.kind.show(global, id: id.id) }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete modules.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var ids: IDsArgument
        func run() throws { try Modules.kind.delete(global, ids: ids.ids) }
    }
}

/// A text given inline or from a file (`-`: stdin); both at once is a usage error.
func contentText(_ inline: String?, file: String?, what: String) throws -> String? {
    switch (inline, file) {
    case (let inline?, nil): return inline
    case (nil, "-"): return Terminal.readAll()
    case (nil, let path?):
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CLIFailure.usage("cannot read \(path)") }
        return text
    case (nil, nil): return nil
    case (_?, _?): throw CLIFailure.usage("give the \(what) inline or from a file, not both")
    }
}

// MARK: Chats

struct Chats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, create, show and delete your chats.",
        discussion: """
            Examples:
              agentctl chats list --module mod_…
              agentctl chats create --title Design
              agentctl chats show cht_…
              agentctl chats delete cht_…
            """,
        subcommands: [List.self, Create.self, Show.self, Delete.self])

    static let kind = ResourceKind(
        plural: "chats",
        columns: [
            ("ID", { $0["id"]?.string ?? "" }), ("TITLE", { $0["title"]?.string ?? "" }),
            // Version 2 names the module; version 1 gives its id.
            ("MODULE", { $0["module"]?["title"]?.string ?? $0["moduleId"]?.string ?? "" }),
            ("MESSAGES", { $0["messageCount"]?.compact ?? "" }), ("UPDATED", ResourceKind.updated),
        ])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your chats as a table (newest first).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var list: ListOptions
        @Option(help: "Only the chats of this module.") var module: String?
        func run() throws {
            try Chats.kind.list(global, limit: list.limit, filters: module.map { [("moduleId", .string($0))] } ?? [])
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a chat and print it.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Its title (default: New chat).") var title: String?
        @Option(help: "The module it is about.") var module: String?
        func run() throws {
            var params: [(String, JSONTree)] = []
            if let title { params.append(("title", .string(title))) }
            if let module { params.append(("moduleId", .string(module))) }
            let session = try Session(global)
            global.printJSON(try session.call("chats.create", .object(params)))
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one chat (with its message count and last message).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var id: IDArgument
        func run() throws { try Chats.kind.show(global, id: id.id) }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete chats and their messages.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var ids: IDsArgument
        func run() throws { try Chats.kind.delete(global, ids: ids.ids) }
    }
}

// MARK: Prompts

struct Prompts: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, create, show and delete your prompts (and see the built-in ones).",
        discussion: """
            Examples:
              agentctl prompts list
              agentctl prompts create --name greeting --body 'Hello {{user}}'
              agentctl prompts show prm_default_system
              agentctl prompts delete prm_…
            """,
        subcommands: [List.self, Create.self, Show.self, Delete.self])

    static let kind = ResourceKind(
        plural: "prompts",
        columns: [
            ("ID", { $0["id"]?.string ?? "" }), ("NAME", { $0["name"]?.string ?? "" }),
            ("VERSION", { $0["latestVersion"]?.compact ?? "" }),
            ("BUILT-IN", { $0["builtIn"] == .bool(true) ? "yes" : "" }), ("UPDATED", ResourceKind.updated),
        ])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List prompts as a table (newest first, built-ins included).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var list: ListOptions
        func run() throws { try Prompts.kind.list(global, limit: list.limit, filters: []) }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a prompt and print it.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Its name.") var name: String
        @Option(help: "Its body, with {{variable}} placeholders.") var body: String?
        @Option(help: ArgumentHelp("Read its body from a file (- for stdin).", valueName: "path")) var bodyFile: String?
        @Option(help: "Its description.") var description: String?
        @Option(name: .customLong("variable"), help: "A declared variable (repeatable; default: those of the body).")
        var variables: [String] = []
        func run() throws {
            guard let text = try contentText(body, file: bodyFile, what: "body") else { throw CLIFailure.usage("give --body or --body-file") }
            var params: [(String, JSONTree)] = [("name", .string(name)), ("body", .string(text))]
            if let description { params.append(("description", .string(description))) }
            if !variables.isEmpty { params.append(("variables", .array(variables.map(JSONTree.string)))) }
            let session = try Session(global)
            global.printJSON(try session.call("prompts.create", .object(params)))
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one prompt (its latest version).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var id: IDArgument
        func run() throws { try Prompts.kind.show(global, id: id.id) }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete prompts (every version).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var ids: IDsArgument
        func run() throws { try Prompts.kind.delete(global, ids: ids.ids) }
    }
}
