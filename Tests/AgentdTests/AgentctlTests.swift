import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `agentctl` against the real daemon on a temporary socket (and, for the chat's streaming and
/// cancellation, against `FakeAgentServer` until the daemon has `agent.act`).
// Serialized: each test starts a daemon and several agentctl processes (the overflow test ~1 MB of
// events); one at a time keeps that load off the rest of the parallel run (the suite takes ~8 s,
// never the longest path).
@Suite("agentctl", .blockingIO, .serialized, .timeLimit(.minutes(3)))
struct AgentctlTests {
    /// A daemon and an agentctl pointed at it, with a config folder of its own.
    static func withAgentctl<T>(
        _ arguments: [String] = [], environment: [String: String] = [:], _ body: (DaemonProcess, Agentctl, String) throws -> T
    ) throws -> T {
        try withDaemon(arguments, environment: environment) { daemon in
            try daemon.waitUntilConnectable()
            let folder = URL(fileURLWithPath: daemon.socketPath).deletingLastPathComponent().path
            return try body(daemon, Agentctl(socketPath: daemon.socketPath, configHome: folder + "/config"), folder)
        }
    }

    // MARK: call

    @Test("call: params as JSON, as key=value (JSON when it parses, dotted keys nest), from stdin; piped output is one compact line")
    func callParams() throws {
        try Self.withAgentctl { _, ctl, _ in
            let json = try ctl.run(["call", "system.echo", #"{"any":["json",1.50],"big":9007199254740993}"#])
            #expect(json.status == 0, "\(json)")
            #expect(json.stdout == #"{"any":["json",1.50],"big":9007199254740993}"# + "\n", "numbers as sent, compact")

            let pairs = try ctl.run(["call", "system.echo", "a=1", "b=text", "c=[1,2]", "d.e=true", "f=\"quoted\"", "g=two words"])
            #expect(pairs.status == 0, "\(pairs)")
            #expect(try JSON(parsing: pairs.stdout) == JSON(parsing: #"{"a":1,"b":"text","c":[1,2],"d":{"e":true},"f":"quoted","g":"two words"}"#))

            let stdin = try ctl.run(["call", "modules.create", "-"], stdin: #"{"title":"From stdin","tags":["x"]}"#)
            #expect(stdin.status == 0, "\(stdin)")
            let module = try JSON(parsing: stdin.stdout)
            #expect(module["title"] == .string("From stdin") && module["tags"] == .array([.string("x")]))
            #expect(stdin.stdout.split(separator: "\n").count == 1)

            let none = try ctl.run(["call", "system.ping"])
            #expect(none.stdout == "\"pong\"\n" && none.status == 0, "\(none)")

            // Another API version by prefix.
            let v1 = try ctl.run(["call", "v1.chats.list"])
            #expect(try v1.status == 0 && (JSON(parsing: v1.stdout))["items"] != nil, "\(v1)")
        }
    }

    @Test("call on a terminal: indented and coloured; --json and --no-color on a terminal are compact and plain")
    func terminalOutput() throws {
        try Self.withAgentctl { _, ctl, folder in
            let pretty = try ctl.startOnTerminal(["call", "system.echo", #"{"a":[1,"x"],"b":null}"#], in: folder)
            #expect(try pretty.waitForExit() == .exited(0))
            let shown = pretty.stdout.replacingOccurrences(of: "\r\n", with: "\n")
            let expected = """
                {
                  \u{1B}[34;1m"a"\u{1B}[0m: [
                    \u{1B}[36m1\u{1B}[0m,
                    \u{1B}[32m"x"\u{1B}[0m
                  ],
                  \u{1B}[34;1m"b"\u{1B}[0m: \u{1B}[90mnull\u{1B}[0m
                }

                """
            #expect(shown == expected, "\(shown.debugDescription)")

            let compact = try ctl.startOnTerminal(["call", "--json", "system.echo", #"{"a":1}"#], in: folder)
            #expect(try compact.waitForExit() == .exited(0))
            #expect(compact.stdout.replacingOccurrences(of: "\r\n", with: "\n") == "{\"a\":1}\n")

            let plain = try ctl.startOnTerminal(["call", "--no-color", "system.echo", #"{"a":1}"#], in: folder)
            #expect(try plain.waitForExit() == .exited(0))
            #expect(plain.stdout.replacingOccurrences(of: "\r\n", with: "\n") == "{\n  \"a\": 1\n}\n")
        }
    }

    @Test("exit status per error class, the error on stderr with code, message and data, nothing on stdout")
    func exitStatuses() throws {
        try Self.withAgentctl { _, ctl, _ in
            let notFound = try ctl.run(["call", "modules.get", "id=mod_missing"])
            #expect(notFound.status == 4 && notFound.stdout.isEmpty, "\(notFound)")
            #expect(notFound.stderr == #"agentctl: error -32030: Not found {"id":"mod_missing","kind":"module"}"# + "\n")

            let noMethod = try ctl.run(["call", "no.such.method"])
            #expect(noMethod.status == 4 && noMethod.stderr.contains("error -32601: Method not found"), "\(noMethod)")

            let invalid = try ctl.run(["call", "modules.create", "description=no title"])
            #expect(invalid.status == 5 && invalid.stderr.contains("error -32602: Invalid params"), "\(invalid)")

            let version = try ctl.run(["call", "rpc.discover", "version=\"99\""])
            #expect(version.status == 8 && version.stderr.contains("error -32016"), "\(version)")

            let badJSON = try ctl.run(["call", "system.echo", "{not json"])
            #expect(badJSON.status == 1 && badJSON.stderr.contains("not JSON"), "\(badJSON)")
            let badPair = try ctl.run(["call", "system.echo", "novalue"])
            #expect(badPair.status == 1, "\(badPair)")
            let badFlag = try ctl.run(["call", "--nope", "system.ping"])
            #expect(badFlag.status == 1 && badFlag.stderr.contains("--nope"), "\(badFlag)")

            // Unauthorized: a wrong password, then a saved token the daemon does not know.
            _ = try ctl.run(["call", "auth.register", "username=erin", "password=correct horse battery"])
            let wrong = try ctl.run(["login", "erin", "--password-stdin"], stdin: "wrong password\n")
            #expect(wrong.status == 3 && wrong.stderr.contains("-32021"), "\(wrong)")
            try FileManager.default.createDirectory(atPath: ctl.configHome + "/agentctl", withIntermediateDirectories: true)
            try "not-a-real-token\n".write(toFile: ctl.configHome + "/agentctl/token", atomically: true, encoding: .utf8)
            let refused = try ctl.run(["call", "system.ping"])
            #expect(refused.status == 3 && refused.stderr.contains("agentctl login"), "\(refused)")
            try FileManager.default.removeItem(atPath: ctl.configHome + "/agentctl/token")

            // Rate limited: the sixth failed login within 15 minutes is refused with -32023.
            for _ in 0..<4 { _ = try ctl.run(["login", "erin", "--password-stdin"], stdin: "wrong password\n") }
            let limited = try ctl.run(["login", "erin", "--password-stdin"], stdin: "wrong password\n")
            #expect(limited.status == 6 && limited.stderr.contains("-32023"), "\(limited)")
        }
    }

    @Test("no daemon: the message names the socket tried and how to start one; exit status 2")
    func noDaemon() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let ctl = Agentctl(socketPath: directory.path + "/none.sock", configHome: directory.path)
        let outcome = try ctl.run(["call", "system.ping"])
        #expect(outcome.status == 2, "\(outcome)")
        #expect(outcome.stderr.contains("no daemon listening at \(directory.path)/none.sock"), "\(outcome)")
        #expect(outcome.stderr.contains("make run") && outcome.stderr.contains("systemctl --user start agentd.socket"), "\(outcome)")
        // --socket wins over $AGENTD_SOCKET.
        let flag = try ctl.run(["modules", "list", "--socket", directory.path + "/other.sock"])
        #expect(flag.status == 2 && flag.stderr.contains(directory.path + "/other.sock"), "\(flag)")
    }

    @Test("the common options go before the subcommand (agentctl --socket PATH call …, agentctl --json chats list) or after it")
    func optionsBeforeTheSubcommand() throws {
        try Self.withAgentctl { daemon, ctl, folder in
            // $AGENTD_SOCKET names no daemon: only a --socket that was parsed reaches this one.
            let elsewhere = ["AGENTD_SOCKET": folder + "/nothing-here.sock"]
            let before = try ctl.run(["--socket", daemon.socketPath, "call", "system.ping"], extraEnvironment: elsewhere)
            #expect(before.status == 0 && before.stdout == "\"pong\"\n", "\(before)")
            let after = try ctl.run(["call", "system.ping", "--socket", daemon.socketPath], extraEnvironment: elsewhere)
            #expect(after.status == 0 && after.stdout == "\"pong\"\n", "\(after)")
            let between = try ctl.run(["chats", "--socket=\(daemon.socketPath)", "list", "--json"], extraEnvironment: elsewhere)
            #expect(between.status == 0 && between.stdout == "[]\n", "\(between)")
            let unset = try ctl.run(["call", "system.ping"], extraEnvironment: elsewhere)
            #expect(unset.status == 2 && unset.stderr.contains("nothing-here.sock"), "\(unset)")

            // --json before a nested subcommand: a JSON array instead of the table it prints piped.
            _ = try ctl.run(["chats", "create", "--title", "Plans"])
            let table = try ctl.run(["chats", "list"])
            #expect(table.stdout.hasPrefix("ID "), "\(table)")
            let json = try ctl.run(["--json", "chats", "list"])
            #expect(try json.status == 0 && JSON(parsing: json.stdout).arrayValue?.first?["title"] == .string("Plans"), "\(json)")

            // --no-color before the subcommand, on a terminal: indented, no escape sequences.
            let plain = try ctl.startOnTerminal(["--no-color", "call", "system.echo", #"{"a":1}"#], in: folder)
            #expect(try plain.waitForExit() == .exited(0))
            #expect(plain.stdout.replacingOccurrences(of: "\r\n", with: "\n") == "{\n  \"a\": 1\n}\n")

            // An unknown option before the subcommand is still a usage error.
            let unknown = try ctl.run(["--nope", "call", "system.ping"])
            #expect(unknown.status == 1 && unknown.stderr.contains("--nope"), "\(unknown)")
        }
    }

    // MARK: methods, describe

    @Test("methods lists rpc.discover's methods with summaries and params, filtered by a glob; describe shows schemas")
    func methodsAndDescribe() throws {
        try Self.withAgentctl { _, ctl, folder in
            let all = try ctl.run(["methods"])
            let names = try #require(try JSON(parsing: all.stdout).arrayValue).compactMap { $0["name"]?.stringValue }
            #expect(names.contains("modules.create") && names.contains("system.metrics") && names == names.sorted(), "\(names)")

            let chats = try ctl.run(["methods", "chats.*"])
            let chatNames = try #require(try JSON(parsing: chats.stdout).arrayValue).compactMap { $0["name"]?.stringValue }
            #expect(!chatNames.isEmpty && chatNames.allSatisfy { $0.hasPrefix("chats.") }, "\(chatNames)")

            let shown = try ctl.startOnTerminal(["methods", "--no-color", "modules.*"], in: folder)
            #expect(try shown.waitForExit() == .exited(0))
            #expect(shown.stdout.contains("modules.create  Creates a module"), "\(shown.stdout)")
            #expect(shown.stdout.contains("params: title: string, description?: string, content?: string, tags?: [string]"), "\(shown.stdout)")

            let describe = try ctl.run(["describe", "modules.get"])
            let method = try JSON(parsing: describe.stdout)
            #expect(method["name"] == .string("modules.get") && method["result"]?["schema"] != nil && method["params"] != nil, "\(describe)")

            let described = try ctl.startOnTerminal(["describe", "--no-color", "modules.get"], in: folder)
            #expect(try described.waitForExit() == .exited(0))
            #expect(described.stdout.contains("Params (either):") && described.stdout.contains("id (required)"), "\(described.stdout)")
            #expect(described.stdout.contains("Result:") && described.stdout.contains("-32030  Not found"), "\(described.stdout)")

            let missing = try ctl.run(["describe", "nope.nope"])
            #expect(missing.status == 4 && missing.stderr.contains("no method nope.nope in API version 2"), "\(missing)")
        }
    }

    // MARK: login, logout, whoami

    @Test("login saves the token 0600 in a 0700 folder; later commands act as that account; logout revokes and removes it")
    func loginLogoutWhoami() throws {
        try Self.withAgentctl { _, ctl, _ in
            let before = try ctl.run(["whoami"])
            let unixAccount = try JSON(parsing: before.stdout)
            #expect(unixAccount["linkedUID"]?.intValue == Int(getuid()), "\(before)")

            let registered = try ctl.run(["call", "auth.register", "username=alice", "password=correct horse battery"])
            #expect(registered.status == 0, "\(registered)")
            let login = try ctl.run(["login", "alice", "--password-stdin"], stdin: "correct horse battery\n")
            #expect(login.status == 0 && login.stderr.contains("Logged in as alice"), "\(login)")

            let tokenPath = ctl.configHome + "/agentctl/token"
            var file = stat()
            #expect(stat(tokenPath, &file) == 0 && file.st_mode & 0o777 == 0o600, "token mode \(String(file.st_mode & 0o777, radix: 8))")
            var folder = stat()
            #expect(stat(ctl.configHome + "/agentctl", &folder) == 0 && folder.st_mode & 0o777 == 0o700)
            let token = try String(contentsOfFile: tokenPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(token.count >= 40)

            let whoami = try ctl.run(["whoami"])
            #expect(try JSON(parsing: whoami.stdout)["username"] == .string("alice"), "\(whoami)")
            // Things made now belong to alice, not to the Unix account.
            _ = try ctl.run(["modules", "create", "--title", "Alice's"])
            let list = try ctl.run(["modules", "list", "--json"])
            #expect(try JSON(parsing: list.stdout).arrayValue?.count == 1, "\(list)")

            let logout = try ctl.run(["logout"])
            #expect(logout.status == 0 && !FileManager.default.fileExists(atPath: tokenPath), "\(logout)")
            let after = try ctl.run(["whoami"])
            #expect(try JSON(parsing: after.stdout)["linkedUID"]?.intValue == Int(getuid()), "\(after)")

            // The token was revoked on the daemon, not only forgotten here.
            try token.write(toFile: tokenPath, atomically: true, encoding: .utf8)
            let revoked = try ctl.run(["whoami"])
            #expect(revoked.status == 3, "\(revoked)")
            let again = try ctl.run(["logout"])
            #expect(again.status == 0 && !FileManager.default.fileExists(atPath: tokenPath), "\(again)")
        }
    }

    // MARK: modules, chats, prompts

    @Test("modules, chats and prompts: create, list as an aligned table (or --json), show, delete")
    func resourceVerbs() throws {
        try Self.withAgentctl { _, ctl, _ in
            let created = try ctl.run(
                ["modules", "create", "--title", "Deploy notes", "--tag", "ops", "--tag", "notes", "--content-file", "-"], stdin: "# Steps\n")
            let module = try JSON(parsing: created.stdout)
            let moduleID = try #require(module["id"]?.stringValue, "\(created)")
            #expect(
                module["content"] == .string("# Steps\n") && Set((module["tags"]?.arrayValue ?? []).compactMap(\.stringValue)) == ["ops", "notes"],
                "\(module)")
            _ = try ctl.run(["modules", "create", "--title", "Second"])

            let table = try ctl.run(["modules", "list"])
            let lines = table.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 3, "\(table)")
            #expect(lines[0].hasPrefix("ID ") && lines[0].contains("TITLE") && lines[0].contains("UPDATED"), "\(table)")
            let titleColumn = lines[0].distance(from: lines[0].startIndex, to: try #require(lines[0].range(of: "TITLE")).lowerBound)
            #expect(lines.dropFirst().allSatisfy { Array($0)[titleColumn - 2..<titleColumn] == [" ", " "] }, "aligned: \(lines)")
            #expect(
                lines[2].contains(moduleID) && lines[2].contains("Deploy notes")
                    && (lines[2].contains("ops,notes") || lines[2].contains("notes,ops")), "newest first: \(lines)")
            #expect(try ctl.run(["modules", "list", "--tag", "ops", "--json"]).stdout.contains(moduleID))
            #expect(try JSON(parsing: ctl.run(["modules", "list", "--limit", "1", "--json"]).stdout).arrayValue?.count == 1)

            let shown = try ctl.run(["modules", "show", moduleID])
            #expect(try JSON(parsing: shown.stdout)["title"] == .string("Deploy notes"))

            let chat = try JSON(parsing: ctl.run(["chats", "create", "--title", "Plans", "--module", moduleID]).stdout)
            let chatID = try #require(chat["id"]?.stringValue)
            let chats = try ctl.run(["chats", "list"])
            #expect(
                chats.stdout.contains("MODULE") && chats.stdout.contains(chatID) && chats.stdout.contains("Deploy notes"),
                "v2 shows the module's title: \(chats)")
            #expect(try JSON(parsing: ctl.run(["chats", "show", chatID]).stdout)["messageCount"] == .integer(0))

            let prompt = try JSON(parsing: ctl.run(["prompts", "create", "--name", "greet", "--body", "Hi {{user}}"]).stdout)
            let promptID = try #require(prompt["id"]?.stringValue)
            #expect(prompt["variables"] == .array([.string("user")]))
            let prompts = try ctl.run(["prompts", "list"])
            #expect(
                prompts.stdout.contains(promptID) && prompts.stdout.contains("prm_default_system") && prompts.stdout.contains("yes"), "\(prompts)")
            #expect(try JSON(parsing: ctl.run(["prompts", "show", promptID]).stdout)["body"] == .string("Hi {{user}}"))

            for (kind, id) in [("prompts", promptID), ("chats", chatID), ("modules", moduleID)] {
                let deleted = try ctl.run([kind, "delete", id])
                #expect(try deleted.status == 0 && (JSON(parsing: deleted.stdout))["deleted"] == .bool(true), "\(deleted)")
                let gone = try ctl.run([kind, "show", id])
                #expect(gone.status == 4, "\(kind) \(gone)")
            }
            let both = try ctl.run(["modules", "create"])
            #expect(both.status == 1 && both.stderr.contains("--title"), "\(both)")
        }
    }

    // MARK: watch

    @Test("watch prints events caused by another client, one line each: seq topic data")
    func watchFollows() throws {
        try Self.withAgentctl { daemon, ctl, folder in
            let watch = try ctl.start(["watch", "module.*", "chat.created"], in: folder)
            // Subscribed once a first event arrives: keep making modules until one is printed.
            let publisher = ClientConnection(try daemon.connect())
            var first = ""
            let deadline = Deadline(.seconds(30))
            while !watch.stdout.contains("module.created"), !deadline.hasPassed {
                first = try #require(try publisher.result("modules.create", #"{"title":"probe"}"#)["id"]?.stringValue)
                _ = try? watch.waitForOutput(timeout: .milliseconds(200), "a first event") { $0.contains(first) }
            }
            let before = watch.stdout.count
            let chat = try #require(try publisher.result("chats.create", #"{"title":"Plans"}"#)["id"]?.stringValue)
            _ = try publisher.result("chats.messages.append", #"{"chatId":"\#(chat)","role":"user","content":"hi"}"#)
            _ = try publisher.result("modules.delete", #"{"id":"\#(first)"}"#)
            let text = try watch.waitForOutput(containing: "module.deleted", after: before)
            let lines = String(text.dropFirst(before)).split(separator: "\n").map(String.init)
            #expect(lines.count == 2, "chat.message.created is not followed: \(lines)")
            let parts = lines.map { $0.split(separator: " ", maxSplits: 2).map(String.init) }
            #expect(try parts[0][1] == "chat.created" && (JSON(parsing: parts[0][2]))["chatId"] == .string(chat), "\(lines)")
            #expect(try parts[1][1] == "module.deleted" && (JSON(parsing: parts[1][2]))["moduleId"] == .string(first), "\(lines)")
            #expect(Int(parts[1][0])! > Int(parts[0][0])!)
        }
    }

    @Test("watch falls behind (SIGSTOP) into an events.overflow and resumes from its last seq: every event exactly once, in order")
    func watchResumesAfterOverflow() throws {
        try Self.withAgentctl(environment: ["AGENTD_EVENTS_QUEUE_CAPACITY": "16"]) { daemon, ctl, folder in
            let publisher = ClientConnection(try daemon.connect())
            let (_, leaf) = try EventsTests.chain(publisher, length: 100)
            let since = try EventsTests.newestSeq(publisher)
            let watch = try ctl.start(["watch", "--since", String(since)], in: folder)
            _ = try publisher.result("modules.create", #"{"title":"live"}"#)
            try watch.waitForOutput(containing: "module.created")  // subscribed and reading

            watch.signal(SIGSTOP)
            // ~1 MB of events: far more than the socket buffers and the queue of 16 hold.
            for _ in 0..<15 {
                try EventsTests.sendForks(publisher.client, of: leaf, count: 2)
                _ = try EventsTests.readResults(publisher.client, count: 2)
            }
            watch.signal(SIGCONT)

            let stored = try EventsTests.replayAll(publisher, since: since).compactMap { $0["seq"]?.intValue }
            let last = try #require(stored.last)
            try watch.waitForOutput(timeout: .seconds(60), "seq \(last)") { $0.contains("\n\(last) ") }
            let seqs = watch.stdout.split(separator: "\n").compactMap { Int($0.split(separator: " ").first ?? "") }
            #expect(
                seqs == stored,
                "printed \(seqs.count) events, stored \(stored.count); first difference at \(String(describing: zip(seqs, stored).enumerated().first { $1.0 != $1.1 }))"
            )
            #expect(watch.stderr.contains("events.overflow"), "the test must have overflowed: \(watch.stderr)")
        }
    }

    @Test("watch survives a daemon restart: it reconnects and resumes after the last seq it printed")
    func watchReconnects() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socket = directory.path + "/agentd.sock"
        let arguments = ["--database", directory.path + "/agentd.sqlite"]
        var daemon = try DaemonProcess(socketPath: socket, arguments: arguments)
        try daemon.waitUntilConnectable()
        let ctl = Agentctl(socketPath: socket, configHome: directory.path + "/config")
        let watch = try ctl.start(["watch", "module.created", "--since", "0"], in: directory.path)
        _ = try ClientConnection(try daemon.connect()).result("modules.create", #"{"title":"before"}"#)
        try watch.waitForOutput(containing: "module.created")

        daemon.terminate()
        _ = try daemon.waitForExit()
        daemon = try DaemonProcess(socketPath: socket, arguments: arguments)
        defer { daemon.kill() }
        try daemon.waitUntilConnectable()
        let publisher = ClientConnection(try daemon.connect())
        _ = try publisher.result("modules.create", #"{"title":"after"}"#)
        let stored = try EventsTests.replayAll(publisher, since: 0).filter { $0["topic"] == .string("module.created") }
        let last = try #require(stored.last?["seq"]?.intValue)
        try watch.waitForOutput(timeout: .seconds(60), "seq \(last)") { $0.contains("\n\(last) ") }
        let seqs = watch.stdout.split(separator: "\n").compactMap { Int($0.split(separator: " ").first ?? "") }
        #expect(seqs == stored.compactMap { $0["seq"]?.intValue }, "\(watch.stdout)")
        #expect(watch.stderr.contains("reconnecting"), "\(watch.stderr)")
    }

    // MARK: chat

    @Test("chat on a terminal against the real daemon: slash commands, an error reply returns to the prompt, Ctrl-C at the prompt leaves")
    func chatCommandsOnTerminal() throws {
        try Self.withAgentctl { _, ctl, folder in
            let chat = try ctl.startOnTerminal(["chat", "--no-color"], in: folder)
            try chat.waitForOutput(containing: "/help for commands")
            var mark = chat.stdout.count
            try chat.type("/help\n")
            try chat.waitForOutput(containing: "/search on|off", after: mark)
            mark = chat.stdout.count
            try chat.type("/search on\n")
            try chat.waitForOutput(containing: "web search: on", after: mark)
            mark = chat.stdout.count
            try chat.type("/model small-model\n")
            try chat.waitForOutput(containing: "model: small-model", after: mark)
            mark = chat.stdout.count
            try chat.type("/nope\n")
            try chat.waitForOutput(containing: "unknown command", after: mark)
            // Whatever agent.act answers without a provider (-32601 before it exists, -32050 after),
            // the error is shown and the prompt comes back.
            mark = chat.stdout.count
            try chat.type("hello\n")
            let shown = try chat.waitForOutput(timeout: .seconds(30), "an error and a new prompt") {
                let tail = String($0.dropFirst(mark))
                return tail.contains("agentctl: error -32") && tail.hasSuffix("> ")
            }
            #expect(!shown.contains("Internal error"))
            try chat.type("\u{03}")  // Ctrl-C at the prompt
            #expect(try chat.waitForExit() == .exited(0))
        }
    }

    @Test(
        "chat streams agent.delta text as it arrives, Ctrl-C cancels the answer ($/cancelRequest and agent.cancel) and returns to the prompt, Ctrl-D leaves (fake agent server)"
    )
    func chatStreamsAndCancels() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = try FakeAgentServer(path: directory.path + "/fake.sock")
        let ctl = Agentctl(socketPath: server.path, configHome: directory.path + "/config")
        let chat = try ctl.startOnTerminal(["chat", "--no-color", "--module", "mod_1", "--model", "m0"], in: directory.path)
        try chat.waitForOutput(containing: "> ")

        var mark = chat.stdout.count
        try chat.type("first question\n")
        try chat.waitForOutput(containing: "Hello\r\n> ", after: mark)

        mark = chat.stdout.count
        try chat.type("slow\n")
        try chat.waitForOutput(containing: "thinking", after: mark)
        try chat.type("\u{03}")  // Ctrl-C during the answer
        try chat.waitForOutput(containing: "(cancelled)\r\n> ", after: mark)

        mark = chat.stdout.count
        try chat.type("/search on\n")
        try chat.waitForOutput(containing: "web search: on", after: mark)
        try chat.type("again\n")
        try chat.waitForOutput(containing: "Hello\r\n> ", after: mark)
        try chat.type("\u{04}")  // Ctrl-D
        #expect(try chat.waitForExit() == .exited(0))

        let requests = server.received
        let acts = requests.filter { $0["method"] == .string("agent.act") }
        #expect(acts.count == 3, "\(requests)")
        #expect(try acts[0]["params"] == (JSON(parsing: #"{"message":"first question","moduleId":"mod_1","model":"m0"}"#)), "\(acts[0])")
        // The chat the first answer created is continued.
        #expect(acts[1]["params"]?["chatId"] == .string("cht_fake") && acts[1]["params"]?["moduleId"] == nil, "\(acts[1])")
        #expect(acts[2]["params"]?["webSearch"] == .bool(true), "\(acts[2])")
        let cancel = try #require(requests.first { $0["method"] == .string("$/cancelRequest") }, "\(requests)")
        #expect(cancel["params"]?["id"] == acts[1]["id"])
        let agentCancel = try #require(requests.first { $0["method"] == .string("agent.cancel") }, "\(requests)")
        #expect(try agentCancel["params"] == (JSON(parsing: #"{"runId":"run_2"}"#)))
        let hello = try #require(requests.first, "\(requests)")
        #expect(try hello["method"] == .string("session.hello") && hello["params"]?["apiVersions"] == (JSON(parsing: #"["2","1"]"#)))
    }

    @Test("chat against the real daemon without a provider: -32050 LLM provider not configured with data.missing; call exits 7")
    func chatProviderNotConfigured() throws {
        try Self.withAgentctl { _, ctl, folder in
            let call = try ctl.run(["call", "agent.act", "message=hello"])
            #expect(call.status == 7 && call.stderr.contains("error -32050") && call.stderr.contains("missing"), "\(call)")
            let chat = try ctl.startOnTerminal(["chat", "--no-color"], in: folder)
            try chat.waitForOutput(containing: "> ")
            let mark = chat.stdout.count
            try chat.type("hello\n")
            try chat.waitForOutput(containing: "error -32050: LLM provider not configured", after: mark)
            try chat.waitForOutput(timeout: .seconds(30), "the prompt again") { String($0.dropFirst(mark)).hasSuffix("> ") }
            try chat.type("/quit\n")
            #expect(try chat.waitForExit() == .exited(0))
        }
    }

    // MARK: help, completions

    @Test("--help shows examples and the exit status table; completion scripts are generated")
    func helpAndCompletions() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let ctl = Agentctl(socketPath: directory.path + "/none.sock", configHome: directory.path)
        let help = try ctl.run(["--help"])
        #expect(help.status == 0 && help.stdout.contains("Examples:") && help.stdout.contains("4  not found"), "\(help)")
        let callHelp = try ctl.run(["call", "--help"])
        #expect(callHelp.stdout.contains("agentctl call modules.list limit=5"), "\(callHelp)")
        for shell in ["bash", "zsh", "fish"] {
            let script = try ctl.run(["--generate-completion-script", shell])
            #expect(script.status == 0 && script.stdout.contains("agentctl") && script.stdout.contains("watch"), "\(shell): \(script)")
        }
    }
}
