import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

struct Call: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Call any method and print its result.",
        discussion: """
            Params are one JSON object or array, `key=value` pairs (a value is taken as JSON when it \
            parses, else as a string; `a.b=1` nests), or `-` to read JSON from stdin. An error reply \
            goes to stderr with its code, message and data, and sets the exit status.

            Examples:
              agentctl call system.echo '{"any":[1,2]}'
              agentctl call modules.list limit=5 tag=notes
              agentctl call chats.create title='Design notes'
              agentctl call prompts.render id=prm_default_system variables.user=me
              agentctl call v1.chats.list            # a method of another API version
              jq -n '{title:"x"}' | agentctl call modules.create -
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The method, e.g. modules.list.", valueName: "method"))
    var method: String

    @Argument(help: ArgumentHelp("Params: one JSON value, key=value pairs, or - for stdin.", valueName: "params"))
    var params: [String] = []

    func run() throws {
        let parsed = try ParamsParser.parse(params, readStdin: Terminal.readAll)
        let session = try Session(global)
        global.printJSON(try session.call(method, parsed))
    }
}

/// `agentctl call`'s params: JSON, `key=value` pairs, or stdin.
enum ParamsParser {
    static func parse(_ arguments: [String], readStdin: () -> String) throws -> JSONTree? {
        if arguments.isEmpty { return nil }
        if arguments == ["-"] {
            return try structured(readStdin(), source: "stdin")
        }
        if arguments.count == 1, let first = arguments[0].first, first == "{" || first == "[" {
            return try structured(arguments[0], source: "the params argument")
        }
        var object: JSONTree = .object([])
        for argument in arguments {
            guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else {
                throw CLIFailure.usage("params must be one JSON object or array, key=value pairs, or -; got \(argument.debugDescription)")
            }
            let key = String(argument[..<equals])
            let text = String(argument[argument.index(after: equals)...])
            let value = (try? JSONTree(parsing: text)) ?? .string(text)
            object = try set(value, at: key.split(separator: ".", omittingEmptySubsequences: false).map(String.init), in: object)
        }
        return object
    }

    private static func structured(_ text: String, source: String) throws -> JSONTree {
        let value: JSONTree
        do {
            value = try JSONTree(parsing: text)
        } catch {
            throw CLIFailure.usage("\(source) is not JSON: \(error)")
        }
        switch value {
        case .object, .array: return value
        default: throw CLIFailure.usage("params must be a JSON object or array, not \(value.compact)")
        }
    }

    private static func set(_ value: JSONTree, at path: [String], in tree: JSONTree) throws -> JSONTree {
        guard case .object(var members) = tree else {
            throw CLIFailure.usage("\(path.joined(separator: ".")) is set both as a value and as an object")
        }
        guard let key = path.first, !key.isEmpty else { throw CLIFailure.usage("an empty key in \(path.joined(separator: "."))") }
        let index = members.firstIndex { $0.key == key }
        if path.count == 1 {
            guard index == nil else { throw CLIFailure.usage("\(key) is given twice") }
            members.append((key, value))
        } else {
            let inner = try set(value, at: Array(path.dropFirst()), in: index.map { members[$0].value } ?? .object([]))
            if let index { members[index].value = inner } else { members.append((key, inner)) }
        }
        return .object(members)
    }
}
