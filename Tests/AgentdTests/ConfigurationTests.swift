import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The configuration file, environment variables, systemd credentials and flags, through the real
/// binary (`--print-config` and a running daemon).
@Suite("Configuration", .blockingIO, .timeLimit(.minutes(1)))
struct ConfigurationTests {
    /// `agentd <arguments> --print-config` with only `environment` added to a clean environment
    /// (so the test machine's own AGENTD_* or XDG files never leak in).
    static func printConfig(_ arguments: [String], environment: [String: String] = [:], in directory: TemporaryDirectory) throws
        -> (termination: Termination, stdout: String, stderr: String)
    {
        var environment = environment
        environment["XDG_CONFIG_HOME"] = environment["XDG_CONFIG_HOME"] ?? "\(directory.path)/xdg-config"
        return try runCommand(TestPaths.agentdBinary, arguments + ["--print-config"], environment: environment)
    }

    static func line(_ key: String, in output: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix(key + " ") }.map(String.init)
    }

    @Test("precedence: flags > environment > file > defaults, and --print-config says where each value came from")
    func precedence() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = "\(directory.path)/agentd.toml"
        try """
        # agentd configuration
        [limits]
        max_batch_length = 10   # overridden by the environment
        max_json_depth = 11     # overridden by the flag
        max_in_flight = 12      # from the file
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let run = try Self.printConfig(
            ["--config", file, "--max-json-depth", "13"],
            environment: ["AGENTD_MAX_BATCH_LENGTH": "20", "AGENTD_MAX_JSON_DEPTH": "30"], in: directory)
        #expect(run.termination == .exited(0), "\(run.stderr)")
        #expect(Self.line("limits.max_json_depth", in: run.stdout)?.contains("= 13    # flag --max-json-depth") == true)
        #expect(Self.line("limits.max_batch_length", in: run.stdout)?.contains("= 20    # environment AGENTD_MAX_BATCH_LENGTH") == true)
        #expect(Self.line("limits.max_in_flight", in: run.stdout)?.contains("= 12    # \(file):5") == true)
        #expect(Self.line("limits.max_connections", in: run.stdout)?.contains("= 4096    # default") == true)
    }

    @Test("an unknown key, a wrong type, a malformed line or a missing file stops startup with the file, line, key and reason")
    func refusals() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let cases: [(String, String)] = [
            ("[limits]\nmax_batch_lenght = 3\n", "agentd.toml:2: unknown key limits.max_batch_lenght"),
            ("[server]\nthreads = \"two\"\n", "agentd.toml:2: server.threads must be an integer, got a string"),
            ("[limits]\nmax_connections = 0\n", "limits.max_connections must be at least 1, got 0"),
            ("[server]\nlog_level = \"loud\"\n", "server.log_level must be one of trace, debug, info, notice, warning, error"),
            ("[server]\nsocket = /tmp/x\n", "line 2: cannot read value /tmp/x (strings need quotes)"),
        ]
        for (text, message) in cases {
            let file = "\(directory.path)/agentd.toml"
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            let run = try Self.printConfig(["--config", file], in: directory)
            #expect(run.termination == .exited(1), "accepted: \(text)")
            #expect(run.stderr.contains(message), "for \(text): \(run.stderr)")
        }
        let missing = try Self.printConfig(["--config", "\(directory.path)/nope.toml"], in: directory)
        #expect(missing.termination == .exited(1))
        #expect(missing.stderr.contains("cannot read configuration file \(directory.path)/nope.toml"))
    }

    @Test("the user's file under $XDG_CONFIG_HOME is read without --config")
    func defaultUserFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: "\(directory.path)/xdg-config/agentd", withIntermediateDirectories: true)
        try "[limits]\nmax_connections = 7\n".write(toFile: "\(directory.path)/xdg-config/agentd/agentd.toml", atomically: true, encoding: .utf8)
        let run = try Self.printConfig([], in: directory)
        #expect(
            Self.line("limits.max_connections", in: run.stdout)?.contains("= 7    # \(directory.path)/xdg-config/agentd/agentd.toml:2") == true,
            "\(run.stdout)\(run.stderr)")
    }

    @Test("secrets from the file, the environment or a systemd credential are masked and never logged")
    func secrets() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let fileSecret = "sk-file-0123456789"
        let envSecret = "sk-env-abcdefghij"
        let credentialSecret = "tvly-credential-xyz"
        let file = "\(directory.path)/agentd.toml"
        try "[llm]\napi_key = \"\(fileSecret)\"\n".write(toFile: file, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: "\(directory.path)/credentials", withIntermediateDirectories: true)
        try (credentialSecret + "\n").write(toFile: "\(directory.path)/credentials/tavily-api-key", atomically: true, encoding: .utf8)

        let fromFile = try Self.printConfig(["--config", file], in: directory)
        #expect(Self.line("llm.api_key", in: fromFile.stdout)?.contains("**** (set, \(fileSecret.utf8.count) characters)    # \(file):2") == true)
        let fromEnvironment = try Self.printConfig(
            ["--config", file], environment: ["OPENAI_API_KEY": envSecret, "CREDENTIALS_DIRECTORY": "\(directory.path)/credentials"],
            in: directory)
        #expect(Self.line("llm.api_key", in: fromEnvironment.stdout)?.contains("# environment OPENAI_API_KEY") == true)
        #expect(Self.line("search.tavily_api_key", in: fromEnvironment.stdout)?.contains("# systemd credential tavily-api-key") == true)
        for output in [fromFile.stdout, fromEnvironment.stdout] {
            #expect(!output.contains(fileSecret) && !output.contains(envSecret) && !output.contains(credentialSecret))
        }

        // A daemon at trace level with all three: nothing of them in its log.
        let daemon = try DaemonProcess(
            socketPath: "\(directory.path)/agentd.sock", arguments: ["--config", file, "--log-level", "trace"],
            environment: ["OPENAI_API_KEY": envSecret, "CREDENTIALS_DIRECTORY": "\(directory.path)/credentials"])
        defer { daemon.kill() }
        let client = try daemon.connect()
        #expect(try client.ping()["result"] == .string("pong"))
        daemon.terminate()
        #expect(try daemon.waitForExit() == .exited(0))
        for secret in [fileSecret, envSecret, credentialSecret] {
            #expect(!daemon.stderr.contains(secret), "a secret reached the log")
        }
    }

    @Test(
        "SIGHUP re-reads the file: log level and limits change (limits for new connections), the rest is reported as needing a restart, systemd hears RELOADING=1 then READY=1"
    )
    func reload() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = "\(directory.path)/agentd.toml"
        try "[server]\nlog_level = \"info\"\nthreads = 2\n[limits]\nmax_batch_length = 50\n".write(toFile: file, atomically: true, encoding: .utf8)
        let listener = try NotifyListener(path: "\(directory.path)/notify.sock")
        let daemon = try DaemonProcess(
            socketPath: "\(directory.path)/agentd.sock", arguments: ["--config", file], environment: ["NOTIFY_SOCKET": listener.path])
        defer { daemon.kill() }
        _ = try listener.next(containing: "READY=1")
        let before = try daemon.connect()
        #expect(try before.ping(id: 1)["result"] == .string("pong"))
        #expect(!daemon.stderr.contains("outcome=ok"), "debug lines before the reload")

        try "[server]\nlog_level = \"debug\"\nthreads = 1\n[limits]\nmax_batch_length = 5\n".write(toFile: file, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        _ = try listener.next(containing: "RELOADING=1")
        _ = try listener.next(containing: "READY=1")
        try daemon.waitForLog(containing: "configuration reloaded")
        #expect(daemon.stderr.contains("applied=server.log_level, limits.max_batch_length"), "\(daemon.stderr)")
        #expect(daemon.stderr.contains("needs_restart=server.threads"))

        #expect(try before.ping(id: 2)["result"] == .string("pong"))
        try daemon.waitForLog(containing: "outcome=ok")  // the call is now logged at debug

        let batch = "[" + (1...6).map { #"{"jsonrpc":"2.0","id":\#($0 + 10),"method":"system.ping"}"# }.joined(separator: ",") + "]"
        // The connection opened before the reload keeps the limit it opened with ...
        try before.send(line: batch)
        guard case .array(let replies) = try before.readJSON() else {
            Issue.record("not a batch reply")
            return
        }
        #expect(replies.count == 6)
        // ... a new one gets the new limit.
        let after = try daemon.connect()
        try after.send(line: batch)
        let refused = try after.readJSON()
        #expect(refused["error"]?["code"] == .integer(-32012), "\(refused)")
    }
}

extension ConfigurationTests {
    @Test("the example configuration installed by make install is valid")
    func exampleIsValid() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let example = TestPaths.repositoryRoot.appendingPathComponent("systemd/agentd.toml.example").path
        let run = try Self.printConfig(["--config", example], in: directory)
        #expect(run.termination == .exited(0), "\(run.stderr)")
        #expect(Self.line("server.log_level", in: run.stdout)?.contains("# \(example):") == true, "\(run.stdout)")
        // The system instance's accounts come from trusted uids (issue 17): no open registration.
        #expect(Self.line("auth.allow_registration", in: run.stdout)?.contains("= false") == true, "\(run.stdout)")
    }
}
