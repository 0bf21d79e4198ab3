import ArgumentParser
import RPC
import RPCClient

#if canImport(Glibc)
import Glibc
#endif

/// The options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The daemon's socket.",
            discussion: "Default: $AGENTD_SOCKET, else $XDG_RUNTIME_DIR/agentd/agentd.sock, else /tmp/agentd-$UID/agentd.sock.",
            valueName: "path"))
    var socket: String?

    @Flag(name: .long, help: "Compact JSON output (the default when stdout is not a terminal).")
    var json = false

    @Flag(name: .customLong("no-color"), help: "No colours (also when NO_COLOR is set).")
    var noColor = false

    @Option(
        name: .customLong("trust-uid"),
        help: ArgumentHelp(
            "Also talk to a daemon run by this uid (repeatable).",
            discussion:
                "Before sending anything agentctl checks who runs the daemon: you, root, or a uid given here or in $AGENTCTL_TRUST_UID (comma-separated).",
            valueName: "uid"))
    var trustUIDs: [UInt32] = []

    var socketPath: String { AgentdSocket.resolve(flag: socket) }

    /// The uids whose daemon agentctl talks to besides its own and root's.
    var trustedServerUIDs: Set<UInt32> {
        let fromEnvironment = (getenv("AGENTCTL_TRUST_UID").map { String(cString: $0) } ?? "")
            .split(whereSeparator: { $0 == "," || $0 == " " }).compactMap { UInt32($0) }
        return Set(trustUIDs + fromEnvironment)
    }

    /// Pretty output for a person: a terminal and no `--json`.
    var pretty: Bool { !json && Terminal.stdoutIsTerminal }

    var palette: JSONTree.Palette? { pretty && Terminal.wantsColor(noColorFlag: noColor) ? JSONTree.Palette() : nil }

    /// Prints a result: indented and coloured on a terminal, one compact line otherwise.
    func printJSON(_ value: JSONTree) {
        Terminal.out((pretty ? value.pretty(colors: palette) : value.compact) + "\n")
    }
}

/// One connection, handshaken: API version 2 (1 when the daemon has no 2), authenticated with the
/// saved token when there is one (otherwise the daemon knows the caller by its Unix uid).
final class Session {
    static let clientVersion = "0.1.0"

    /// Replaced by `reconnect()`.
    private(set) var connection: RPCClientConnection
    private(set) var apiVersion = "1"
    /// Whether the connection is signed in with the saved token.
    private(set) var usesToken = false
    private let options: GlobalOptions
    private let authenticate: Bool

    /// - Parameter authenticate: false for `login` (which replaces the token) and `logout`.
    init(_ options: GlobalOptions, authenticate: Bool = true) throws {
        self.options = options
        self.authenticate = authenticate
        connection = try Self.connect(path: options.socketPath, trusting: options.trustedServerUIDs)
        try handshake()
        if authenticate, let token = TokenStore.load() {
            try authenticateWith(token)
        }
    }

    /// A new connection in place of a lost one, handshaken and signed in as the first was (for a
    /// command that resumes its work, such as an upload).
    func reconnect() throws {
        connection.close()
        connection = try Self.connect(path: options.socketPath, trusting: options.trustedServerUIDs)
        usesToken = false
        try handshake()
        if authenticate, let token = TokenStore.load() {
            try authenticateWith(token)
        }
    }

    /// Whether the daemon runs as this process's user (then it can read what we can: `files.import`).
    var servedBySameUser: Bool { connection.serverUID == getuid() }

    /// Connects, then checks who serves the socket before anything is sent (the hello names us, the
    /// next call carries the saved token or a typed password): our uid, root, or one we were told
    /// to trust. A socket under a folder another user could create first may be theirs.
    static func connect(path: String, trusting trusted: Set<UInt32>) throws -> RPCClientConnection {
        let connection: RPCClientConnection
        do {
            connection = try RPCClientConnection(path: path)
        } catch .cannotConnect(let path, let reason) {
            throw CLIFailure(
                "no daemon listening at \(path) (\(reason)); start one with `make run` or `systemctl --user start agentd.socket`",
                status: .cannotConnect)
        } catch {
            throw CLIFailure("\(error)", status: .cannotConnect)
        }
        let me = getuid()
        guard let server = connection.serverUID else {
            throw CLIFailure("cannot tell who serves \(path) (SO_PEERCRED failed); not sending anything", status: .cannotConnect)
        }
        guard server == me || server == 0 || trusted.contains(server) else {
            connection.close()
            throw CLIFailure(
                "refusing to talk to \(path): it is served by uid \(server), not by you (uid \(me)) or root, so it may not be agentd; "
                    + "nothing was sent. If you trust that uid, pass --trust-uid \(server) or set AGENTCTL_TRUST_UID=\(server)",
                status: .cannotConnect)
        }
        return connection
    }

    private func handshake() throws {
        let params: JSONTree = .object([
            ("client", .object([("name", .string("agentctl")), ("version", .string(Self.clientVersion))])),
            ("apiVersions", .array([.string("2"), .string("1")])),
        ])
        do {
            let result = try rawCall("session.hello", params)
            apiVersion = result["apiVersion"]?.string ?? "1"
        } catch let failure as CLIFailure where failure.status == .notFound {
            apiVersion = "1"  // a daemon from before versioning serves version 1 only
        }
    }

    func authenticateWith(_ token: String) throws {
        do {
            _ = try rawCall("auth.authenticate", .object([("token", .string(token))]))
            usesToken = true
        } catch let failure as CLIFailure where failure.status == .unauthorized {
            throw CLIFailure(
                "the saved session in \(TokenStore.path) was refused (\(failure.description)); run `agentctl login` again, or `agentctl logout` to act as your Unix account",
                status: .unauthorized)
        }
    }

    /// Calls a method; an error reply becomes a `CLIFailure` with its exit status.
    func call(_ method: String, _ params: JSONTree? = nil) throws -> JSONTree {
        try rawCall(method, params)
    }

    /// Calls a method with params already serialised, and returns the result unparsed: for big
    /// payloads (a file chunk's base64) that need not go through `JSONTree`.
    func callRaw(_ method: String, params: JSONFragment?) throws -> JSONFragment {
        do {
            return try connection.call(method, params: params)
        } catch let error as RPCError {
            throw CLIFailure.rpc(error)
        } catch let error as RPCClientError {
            throw Self.failure(error)
        }
    }

    /// `callRaw` in two halves, for a caller with work to do while the daemon answers.
    func sendRaw(_ method: String, params: JSONFragment?) throws -> RPCID {
        do {
            return try connection.send(method, params: params)
        } catch {
            throw Self.failure(error)
        }
    }

    func replyRaw(to id: RPCID) throws -> JSONFragment {
        let outcome: Result<JSONFragment, RPCError>
        do {
            outcome = try connection.reply(to: id)
        } catch {
            throw Self.failure(error)
        }
        switch outcome {
        case .success(let result): return result
        case .failure(let error): throw CLIFailure.rpc(error)
        }
    }

    private func rawCall(_ method: String, _ params: JSONTree?) throws -> JSONTree {
        let result = try callRaw(method, params: params.map { JSONFragment(unchecked: $0.compact) })
        do {
            return try JSONTree(parsing: result.text)
        } catch {
            throw CLIFailure("agentd sent a result that is not JSON: \(error)", status: .otherRPCError)
        }
    }

    static func failure(_ error: RPCClientError) -> CLIFailure {
        switch error {
        case .cannotConnect, .connectionClosed: CLIFailure("\(error)", status: .cannotConnect)
        case .timedOut, .malformed: CLIFailure("\(error)", status: .otherRPCError)
        }
    }

    /// Fails unless the connection serves API version 2 (the agent's methods).
    func requireVersion2(for command: String) throws {
        guard apiVersion == "2" else {
            throw CLIFailure("`agentctl \(command)` needs API version 2; this daemon serves version \(apiVersion)", status: .notFound)
        }
    }
}

/// The session token `agentctl login` saves: `$XDG_CONFIG_HOME/agentctl/token` (else
/// `~/.config/agentctl/token`), mode 0600 in a 0700 folder.
enum TokenStore {
    static var directory: String {
        if let config = getenv("XDG_CONFIG_HOME"), config.pointee != 0 { return String(cString: config) + "/agentctl" }
        var home = "/"
        if let value = getenv("HOME"), value.pointee != 0 {
            home = String(cString: value)
        } else if let entry = getpwuid(getuid()), let dir = entry.pointee.pw_dir {
            home = String(cString: dir)
        }
        return home + "/.config/agentctl"
    }

    static var path: String { directory + "/token" }

    static func load() -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 1024)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        let token = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .trimmedWhitespace()
        return token.isEmpty ? nil : token
    }

    /// Writes the token: the folder is created 0700, the file replaced atomically with mode 0600
    /// from its creation (it is never readable by others, not even for a moment).
    static func save(_ token: String) throws {
        var current = ""
        for component in directory.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o700) != 0, errno != EEXIST {
                throw CLIFailure("cannot create \(current): \(String(cString: strerror(errno)))", status: .usage)
            }
        }
        chmod(directory, 0o700)
        let temporary = path + ".tmp.\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_EXCL, 0o600)
        guard fd >= 0 else { throw CLIFailure("cannot write \(temporary): \(String(cString: strerror(errno)))", status: .usage) }
        let bytes = Array((token + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fchmod(fd, 0o600)
        close(fd)
        guard written == bytes.count, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CLIFailure("cannot write \(path): \(String(cString: strerror(errno)))", status: .usage)
        }
    }

    /// Removes the token; false when there was none.
    @discardableResult
    static func remove() -> Bool {
        unlink(path) == 0
    }
}

extension String {
    func trimmedWhitespace() -> String {
        let set: Set<Character> = [" ", "\n", "\r", "\t", "\r\n"]
        var text = Substring(self)
        while let first = text.first, set.contains(first) { text = text.dropFirst() }
        while let last = text.last, set.contains(last) { text = text.dropLast() }
        return String(text)
    }
}
