import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

struct Methods: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the daemon's methods (from rpc.discover), with their summaries and params.",
        discussion: """
            PATTERN is a shell glob on the method name. --json prints the matching OpenRPC method objects.

            Examples:
              agentctl methods
              agentctl methods 'modules.*'
              agentctl methods '*.list' --json
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("A glob such as 'chats.*' (default: every method).", valueName: "pattern"))
    var pattern: String?

    func run() throws {
        let session = try Session(global)
        let methods = try Discovery.methods(session).filter { method in
            guard let pattern else { return true }
            return fnmatch(pattern, method["name"]?.string ?? "", 0) == 0
        }
        if !global.pretty {
            global.printJSON(.array(methods))
            return
        }
        let bold = global.palette == nil ? ("", "") : ("\u{1B}[1m", "\u{1B}[0m")
        for method in methods {
            let name = method["name"]?.string ?? "?"
            let deprecated = method["deprecated"] == .bool(true) ? " (deprecated)" : ""
            Terminal.out("\(bold.0)\(name)\(bold.1)\(deprecated)  \(method["summary"]?.string ?? "")\n")
            Terminal.out("    params: \(Discovery.paramsLine(method))\n")
        }
        if methods.isEmpty, let pattern { Terminal.err("agentctl: no method matches \(pattern)\n") }
    }
}

struct Describe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show one method's params and result schemas, errors and notes.",
        discussion: """
            Examples:
              agentctl describe modules.create
              agentctl describe chats.list --json
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The method's name.", valueName: "method"))
    var method: String

    func run() throws {
        let session = try Session(global)
        guard let found = try Discovery.methods(session).first(where: { $0["name"]?.string == method }) else {
            throw CLIFailure("no method \(method) in API version \(session.apiVersion); see `agentctl methods`", status: .notFound)
        }
        if !global.pretty {
            global.printJSON(found)
            return
        }
        let palette = global.palette
        Terminal.out("\(method)\(found["deprecated"] == .bool(true) ? " (deprecated)" : "")\n")
        if let summary = found["summary"]?.string { Terminal.out("  \(summary)\n") }
        if let description = found["description"]?.string { Terminal.out("  \(description)\n") }
        Terminal.out("\nParams (\(found["paramStructure"]?.string ?? "by name")):\n")
        for param in found["params"]?.array ?? [] {
            let required = param["required"] == .bool(true) ? "required" : "optional"
            let schema = param["schema"]?.pretty(colors: palette) ?? "{}"
            Terminal.out("  \(param["name"]?.string ?? "?") (\(required)): \(schema.replacingNewlines(indent: "  "))\n")
        }
        if found["params"]?.array?.isEmpty ?? true { Terminal.out("  none\n") }
        Terminal.out("\nResult:\n  \((found["result"]?["schema"]?.pretty(colors: palette) ?? "{}").replacingNewlines(indent: "  "))\n")
        if let errors = found["errors"]?.array, !errors.isEmpty {
            Terminal.out("\nErrors:\n")
            for error in errors {
                Terminal.out("  \(error["code"]?.compact ?? "?")  \(error["message"]?.string ?? "")\n")
            }
        }
    }
}

enum Discovery {
    /// The connection's API version's methods, sorted by name.
    static func methods(_ session: Session) throws -> [JSONTree] {
        let document = try session.call("rpc.discover")
        return (document["methods"]?.array ?? []).sorted { ($0["name"]?.string ?? "") < ($1["name"]?.string ?? "") }
    }

    /// `title: string, description?: string, tags?: array`
    static func paramsLine(_ method: JSONTree) -> String {
        let params = method["params"]?.array ?? []
        guard !params.isEmpty else { return "none" }
        return params.map { param in
            let optional = param["required"] == .bool(true) ? "" : "?"
            return "\(param["name"]?.string ?? "?")\(optional): \(typeName(param["schema"]))"
        }.joined(separator: ", ")
    }

    static func typeName(_ schema: JSONTree?) -> String {
        guard let schema else { return "any" }
        if let type = schema["type"]?.string {
            if type == "array", let items = schema["items"] { return "[\(typeName(items))]" }
            return type
        }
        if let types = schema["type"]?.array { return types.compactMap(\.string).joined(separator: "|") }
        if let options = schema["enum"]?.array { return options.map(\.compact).joined(separator: "|") }
        if let any = schema["oneOf"]?.array ?? schema["anyOf"]?.array { return any.map { typeName($0) }.joined(separator: "|") }
        return "any"
    }
}

extension String {
    func replacingNewlines(indent: String) -> String {
        split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n" + indent)
    }
}
