import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

@main
struct Agentctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agentctl",
        abstract: "Talk to agentd from a shell: call its methods, manage modules, chats, prompts and files, chat, follow events.",
        discussion: """
            agentctl finds the daemon like the daemon finds its socket: --socket, then $AGENTD_SOCKET, \
            then $XDG_RUNTIME_DIR/agentd/agentd.sock (else /tmp/agentd-$UID/agentd.sock). It speaks API \
            version 2 (1 with an older daemon). After `agentctl login` it signs in with the saved token; \
            otherwise agentd knows you by your Unix account.

            Results are indented and coloured on a terminal, one compact JSON line with --json or when \
            piped.

            The common options (--socket, --json, --no-color, --trust-uid) go before the subcommand, \
            as with systemctl or gh, or after it: `agentctl --json chats list` is `agentctl chats list --json`.

            Examples:
              agentctl call system.ping
              agentctl --socket /run/agentd/agentd.sock call system.ping
              agentctl call modules.create title=Notes 'tags=["a","b"]'
              agentctl call prompts.render id=prm_default_system variables.user=me
              agentctl call system.echo '{"any":[1,2]}'
              echo '{"query":"backup"}' | agentctl call search.query -
              agentctl methods 'chats.*'
              agentctl describe modules.create
              agentctl modules list
              agentctl files upload notes.pdf
              agentctl chat --attach screenshot.png
              agentctl chat --module mod_…
              agentctl watch 'chat.*' --since 120
              agentctl --generate-completion-script bash > /etc/bash_completion.d/agentctl

            \(ExitStatus.table)
            """,
        version: Session.clientVersion,
        subcommands: [
            Call.self, Methods.self, Describe.self, Login.self, Logout.self, Whoami.self,
            Modules.self, Chats.self, Prompts.self, Files.self, Chat.self, Watch.self,
        ]
    )

    /// Parsed here when they come before the subcommand; each subcommand's own `GlobalOptions` group
    /// then receives these values (ArgumentParser shares a group type down the command stack), and
    /// also takes them after its name.
    @OptionGroup var global: GlobalOptions

    /// Runs the command and exits with its status (see `ExitStatus`): a `CLIFailure` prints its
    /// message, an argument error its usage, both to stderr.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
            Glibc.exit(ExitStatus.ok.rawValue)
        } catch let failure as CLIFailure {
            Terminal.err("agentctl: \(failure.description)\n")
            Glibc.exit(failure.status.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                exit(withError: error)  // --help, --version, completion scripts
            }
            if code == .validationFailure {
                Terminal.err(fullMessage(for: error) + "\n")
                Glibc.exit(ExitStatus.usage.rawValue)
            }
            exit(withError: error)
        }
    }
}
