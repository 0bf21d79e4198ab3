import ArgumentParser
import RPC
import RPCClient

#if canImport(Glibc)
import Glibc
#endif

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow events live, one line each: seq topic data.",
        discussion: """
            TOPIC is a name, `prefix.*` or `*` (the default). Each event is printed once, in seq order: \
            after an events.overflow (this client fell behind), an events.ended or a lost connection, \
            agentctl subscribes again from the last seq it printed (reconnecting with backoff, 0.1 s up \
            to 5 s), so nothing is lost or repeated. --json prints each event as a JSON line.

            Examples:
              agentctl watch
              agentctl watch 'chat.*' module.created
              agentctl watch --since 120 --chat cht_…
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("Topics to follow (default: *).", valueName: "topic"))
    var topics: [String] = []

    @Option(help: "Start after this seq: stored events after it come first.")
    var since: Int?

    @Option(help: "Only this chat's events.")
    var chat: String?

    @Option(help: "Only this module's events (and its chats').")
    var module: String?

    func run() throws {
        var follower = Follower(options: self)
        try follower.run()
    }

    struct Follower {
        let options: Watch
        /// The newest seq printed (or the subscription's starting point).
        var lastSeq: Int?

        init(options: Watch) {
            self.options = options
            lastSeq = options.since
        }

        mutating func run() throws {
            var connectedOnce = false
            var backoff: Duration = .milliseconds(100)
            while true {
                do {
                    let session = try Session(options.global)
                    connectedOnce = true
                    backoff = .milliseconds(100)
                    try follow(session)
                } catch let failure as CLIFailure where failure.status == .cannotConnect && connectedOnce {
                    Terminal.err("agentctl: \(failure.description); reconnecting in \(backoff.formatted)\n")
                    var pause = timespec(tv_sec: Int(backoff.components.seconds), tv_nsec: Int(backoff.components.attoseconds / 1_000_000_000))
                    nanosleep(&pause, nil)
                    backoff = min(backoff * 2, .seconds(5))
                }
            }
        }

        /// Subscribes and prints until the connection ends (throws `.cannotConnect`).
        private mutating func follow(_ session: Session) throws {
            var subscription = try subscribe(session)
            while true {
                let notification: (method: String, params: JSONFragment?)?
                do {
                    notification = try session.connection.nextNotification()
                } catch {
                    throw Session.failure(error)
                }
                guard let notification, let params = notification.params.flatMap({ try? JSONTree(parsing: $0.text) }) else { continue }
                guard params["subscription"]?.string == subscription else { continue }
                switch notification.method {
                case "events.event":
                    guard let seq = params["seq"]?.integer else { continue }
                    if let lastSeq, seq <= lastSeq { continue }  // never twice
                    print(event: params, seq: seq)
                    lastSeq = seq
                case "events.overflow":
                    Terminal.err(
                        "agentctl: fell behind (events.overflow at seq \(params["lastSeq"]?.compact ?? "?")); resuming after seq \(lastSeq.map(String.init) ?? "?")\n"
                    )
                    subscription = try subscribe(session)
                case "events.ended":
                    Terminal.err(
                        "agentctl: subscription ended (\(params["reason"]?.string ?? "?")); resuming after seq \(lastSeq.map(String.init) ?? "?")\n")
                    subscription = try subscribe(session)
                default:
                    continue
                }
            }
        }

        private mutating func subscribe(_ session: Session) throws -> String {
            var params: [(String, JSONTree)] = [("topics", .array((options.topics.isEmpty ? ["*"] : options.topics).map(JSONTree.string)))]
            if let lastSeq { params.append(("since", .number(String(lastSeq)))) }
            var filter: [(String, JSONTree)] = []
            if let chat = options.chat { filter.append(("chatId", .string(chat))) }
            if let module = options.module { filter.append(("moduleId", .string(module))) }
            if !filter.isEmpty { params.append(("filter", .object(filter))) }
            let result = try session.call("events.subscribe", .object(params))
            guard let id = result["subscription"]?.string else {
                throw CLIFailure("events.subscribe answered no subscription: \(result.compact)", status: .otherRPCError)
            }
            if lastSeq == nil { lastSeq = result["after"]?.integer }
            return id
        }

        private func print(event: JSONTree, seq: Int) {
            if options.global.json {
                guard case .object(let members) = event else { return }
                Terminal.out(JSONTree.object(members.filter { $0.key != "subscription" }).compact + "\n")
                return
            }
            let topic = event["topic"]?.string ?? "?"
            let data = event["data"]?.compact ?? "null"
            if options.global.palette != nil {
                Terminal.out("\u{1B}[90m\(seq)\u{1B}[0m \u{1B}[36m\(topic)\u{1B}[0m \(data)\n")
            } else {
                Terminal.out("\(seq) \(topic) \(data)\n")
            }
        }
    }
}

extension Duration {
    var formatted: String {
        let milliseconds = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
        return milliseconds >= 1000 ? "\(Double(milliseconds) / 1000) s" : "\(milliseconds) ms"
    }
}
