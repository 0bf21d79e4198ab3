import ArgumentParser
import RPC
import RPCClient

#if canImport(Glibc)
import Glibc
#endif

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk with the assistant: type a message, the answer streams as it arrives.",
        discussion: """
            Each line you type is sent with agent.act; agent.delta text is printed as it \
            streams. Ctrl-C while an answer streams cancels that answer and returns to the prompt; \
            Ctrl-C at the prompt, Ctrl-D or /quit leave.

            --attach uploads files (as `agentctl files upload` does) and attaches them to your first \
            message; /attach does the same for the next one.

            Commands:
              /new            start a new chat (the next message creates it)
              /attach PATH    attach a file to your next message
              /model NAME     use this model from now on (/model alone shows it)
              /search on|off  let the assistant search the web
              /help           this list
              /quit           leave

            Examples:
              agentctl chat
              agentctl chat --module mod_… --model gpt-4o-mini
              agentctl chat --chat cht_…        # continue a chat
              agentctl chat --attach build.log --attach screenshot.png
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "The module the conversation is about.")
    var module: String?

    @Option(help: "Continue this chat.")
    var chat: String?

    @Option(help: "The model (default: the daemon's).")
    var model: String?

    @Flag(help: "Start with web search on.")
    var search = false

    @Option(name: .customLong("attach"), help: ArgumentHelp("Upload this file and attach it to your first message (repeatable).", valueName: "path"))
    var attachments: [String] = []

    func run() throws {
        let session = try Session(global)
        try session.requireVersion2(for: "chat")
        var conversation = Conversation(
            session: session, chatID: chat, moduleID: module, model: model, webSearch: search, interrupt: InterruptPipe.install(),
            colors: Terminal.wantsColor(noColorFlag: global.noColor))
        // Uploaded before the prompt appears: a file that cannot be stored ends the command
        // before anything is asked.
        for path in attachments { try conversation.attach(path) }
        try conversation.run()
    }
}

/// The interactive loop of `agentctl chat`.
struct Conversation {
    let session: Session
    var chatID: String?
    let moduleID: String?
    var model: String?
    var webSearch: Bool
    /// Files (`fil_…`) sent with the next message, then forgotten.
    private(set) var pendingAttachments: [String] = []
    /// Readable after each SIGINT.
    let interrupt: Int32
    let colors: Bool
    private var input = LineReader(fd: STDIN_FILENO)

    init(session: Session, chatID: String?, moduleID: String?, model: String?, webSearch: Bool, interrupt: Int32, colors: Bool) {
        self.session = session
        self.chatID = chatID
        self.moduleID = moduleID
        self.model = model
        self.webSearch = webSearch
        self.interrupt = interrupt
        self.colors = colors
    }

    static let help = """
        /new            start a new chat
        /attach PATH    attach a file to your next message
        /model NAME     use this model (/model alone shows it)
        /search on|off  web search
        /help           this list
        /quit           leave (also Ctrl-D, or Ctrl-C at the prompt)

        """

    mutating func run() throws {
        Terminal.out("agentctl chat: \(chatID.map { "chat \($0)" } ?? "new chat")\(moduleID.map { ", module \($0)" } ?? ""); /help for commands\n")
        while true {
            InterruptPipe.drain()
            Terminal.out(colors ? "\u{1B}[1m> \u{1B}[0m" : "> ")
            switch input.next(alsoWatching: [interrupt]) {
            case .endOfInput, .interrupted:
                Terminal.out("\n")
                return
            case .line(let line):
                let text = line.trimmedWhitespace()
                if text.isEmpty { continue }
                if text.hasPrefix("/") {
                    if try !command(text) { return }
                    continue
                }
                try ask(text)
            }
        }
    }

    /// A slash command; false to leave.
    private mutating func command(_ text: String) throws -> Bool {
        let words = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        switch (words[0], words.count) {
        case ("/quit", _), ("/exit", _):
            return false
        case ("/help", _):
            Terminal.out(Self.help)
        case ("/new", 1):
            chatID = nil
            Terminal.out("(new chat: your next message starts it)\n")
        case ("/model", 1):
            Terminal.out("model: \(model ?? "the daemon's default")\n")
        case ("/model", 2):
            model = words[1]
            Terminal.out("model: \(words[1])\n")
        case ("/attach", _) where words.count >= 2:
            // The path is the rest of the line, spaces included.
            let path = String(text.dropFirst("/attach".count)).trimmedWhitespace()
            do {
                try attach(path)
            } catch let failure as CLIFailure {
                Terminal.err("agentctl: \(failure.description)\n")
            }
        case ("/search", 2) where words[1] == "on" || words[1] == "off":
            webSearch = words[1] == "on"
            Terminal.out("web search: \(words[1])\n")
        default:
            Terminal.out("unknown command \(text.debugDescription); /help lists them\n")
        }
        return true
    }

    /// Stores the file at `path` (an import or an upload, see `FileUploader`) and keeps its id for
    /// the next message.
    mutating func attach(_ path: String) throws {
        let file = try FileUploader(session: session, progress: Terminal.stderrIsTerminal)
            .store(path: path, name: nil, mediaType: nil, mode: .automatic)
        guard let id = file["id"]?.string else {
            throw CLIFailure("the file was stored but agentd answered no id: \(file.compact)", status: .otherRPCError)
        }
        pendingAttachments.append(id)
        let size = file["size"]?.integer.map(ByteCount.text) ?? "?"
        Terminal.out("(attached \(file["name"]?.string ?? path), \(file["mediaType"]?.string ?? "?"), \(size): \(id); sent with your next message)\n")
    }

    /// Sends one message with agent.act and streams the answer; Ctrl-C cancels it.
    private mutating func ask(_ message: String) throws {
        var params: [(String, JSONTree)] = [("message", .string(message))]
        if !pendingAttachments.isEmpty {
            params.append(("attachments", .array(pendingAttachments.map(JSONTree.string))))
            // Sent once, whatever the answer: the question is stored with them when it is stored.
            pendingAttachments = []
        }
        if let chatID { params.append(("chatId", .string(chatID))) }
        if chatID == nil, let moduleID { params.append(("moduleId", .string(moduleID))) }
        if let model { params.append(("model", .string(model))) }
        if webSearch { params.append(("webSearch", .bool(true))) }
        let connection = session.connection
        let id: RPCID
        do {
            id = try connection.send("agent.act", params: JSONFragment(unchecked: JSONTree.object(params).compact))
        } catch {
            throw Session.failure(error)
        }
        InterruptPipe.drain()
        var streamed = false
        var runID: String?
        var cancelDeadline: ContinuousClock.Instant?
        while true {
            let message: RPCServerMessage?
            do {
                message = try connection.nextMessage(until: cancelDeadline, alsoWatching: cancelDeadline == nil ? [interrupt] : [])
            } catch {
                throw Session.failure(error)
            }
            guard let message else {
                if cancelDeadline == nil, InterruptPipe.drain() {
                    // Ctrl-C: cancel the call (LSP style) and the run (agent.cancel), then wait
                    // for the call's reply, which says how it ended.
                    try? connection.notify("$/cancelRequest", params: JSONFragment(unchecked: #"{"id":\#(id.json)}"#))
                    if let runID {
                        _ = try? connection.send(
                            "agent.cancel", params: JSONFragment(unchecked: JSONTree.object([("runId", .string(runID))]).compact))
                    }
                    cancelDeadline = .now + .seconds(10)
                    continue
                }
                if cancelDeadline != nil {
                    Terminal.out("\n(cancelled; agentd did not confirm)\n")
                    return
                }
                continue
            }
            switch message {
            case .notification(let method, let params):
                guard method == "agent.delta", let delta = params.flatMap({ try? JSONTree(parsing: $0.text) }) else { continue }
                if let chatID, let deltaChat = delta["chatId"]?.string, deltaChat != chatID { continue }
                if let runID, let deltaRun = delta["runId"]?.string, deltaRun != runID { continue }
                runID = runID ?? delta["runId"]?.string
                if let text = delta["text"]?.string, !text.isEmpty {
                    Terminal.out(text)
                    streamed = true
                }
            case .response(let replyID, let outcome):
                guard replyID == id else { continue }  // agent.cancel's reply
                switch outcome {
                case .success(let fragment):
                    let result = try? JSONTree(parsing: fragment.text)
                    if let chat = result?["chatId"]?.string { chatID = chat }
                    if !streamed, let content = result?["message"]?["content"]?.string { Terminal.out(content) }
                    Terminal.out("\n")
                case .failure(let error) where error.code == .requestCancelled:
                    Terminal.out("\n(cancelled)\n")
                case .failure(let error):
                    if streamed { Terminal.out("\n") }
                    Terminal.err("agentctl: \(CLIFailure.describe(error))\n")
                }
                return
            }
        }
    }
}
