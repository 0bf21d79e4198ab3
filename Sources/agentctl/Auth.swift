import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

struct Login: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign in with a username and password and save the session token.",
        discussion: """
            The token goes to $XDG_CONFIG_HOME/agentctl/token (else ~/.config/agentctl/token), readable \
            only by you (0600); every later command signs in with it. The password is asked on the \
            terminal without echo, or read from the first line of stdin with --password-stdin.

            Examples:
              agentctl login alice
              printf '%s\\n' "$PASSWORD" | agentctl login alice --password-stdin
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The account's username (asked when omitted on a terminal).", valueName: "username"))
    var username: String?

    @Flag(help: "Read the password from the first line of stdin.")
    var passwordStdin = false

    func run() throws {
        var reader = LineReader(fd: STDIN_FILENO)
        let name: String
        if let username {
            name = username
        } else if Terminal.stdinIsTerminal {
            Terminal.err("Username: ")
            guard case .line(let line) = reader.next(), !line.isEmpty else { throw CLIFailure.usage("no username given") }
            name = line
        } else {
            throw CLIFailure.usage("give the username: agentctl login USERNAME")
        }
        let password: String
        if passwordStdin {
            guard case .line(let line) = reader.next() else { throw CLIFailure.usage("--password-stdin: stdin is empty") }
            password = line
        } else if Terminal.stdinIsTerminal {
            guard let line = Terminal.readSecret(prompt: "Password for \(name): ") else { throw CLIFailure.usage("no password given") }
            password = line
        } else {
            throw CLIFailure.usage("stdin is not a terminal to ask the password on; use --password-stdin")
        }
        let session = try Session(global, authenticate: false)
        let result = try session.call("auth.login", .object([("username", .string(name)), ("password", .string(password))]))
        guard let token = result["token"]?.string else {
            throw CLIFailure("auth.login answered no token: \(result.compact)", status: .otherRPCError)
        }
        try TokenStore.save(token)
        let expires = result["expiresAt"]?.string.map { ", valid until \($0)" } ?? ""
        Terminal.err("Logged in as \(result["user"]?["username"]?.string ?? name) (token saved in \(TokenStore.path)\(expires))\n")
    }
}

struct Logout: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "End the saved session (the token stops working everywhere) and remove it.",
        discussion: "Afterwards agentd knows you by your Unix account again (when the daemon trusts your uid)."
    )

    @OptionGroup var global: GlobalOptions

    func run() throws {
        guard let token = TokenStore.load() else {
            Terminal.err("Not logged in (no token in \(TokenStore.path))\n")
            return
        }
        let session = try Session(global, authenticate: false)
        do {
            try session.authenticateWith(token)
            _ = try session.call("auth.logout")
        } catch let failure as CLIFailure where failure.status == .unauthorized {
            // Already expired or revoked: nothing to end on the daemon, the file still goes.
        }
        TokenStore.remove()
        Terminal.err("Logged out (removed \(TokenStore.path))\n")
    }
}

struct Whoami: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the account this client acts as, and how it was recognised.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let session = try Session(global)
        let user = try session.call("auth.whoami")
        guard global.pretty else {
            global.printJSON(user)
            return
        }
        let how =
            session.usesToken
            ? "signed in with the token in \(TokenStore.path)"
            : "recognised by Unix uid \(user["linkedUID"]?.compact ?? "\(getuid())")"
        Terminal.out("\(user["username"]?.string ?? "?") (\(user["id"]?.string ?? "?")), \(how)\n")
        if let stored = user["usage"]?["storedBytes"]?.compact {
            Terminal.out("stores \(stored) bytes of \(user["usage"]?["quotaBytes"]?.compact ?? "unlimited")\n")
        }
    }
}
