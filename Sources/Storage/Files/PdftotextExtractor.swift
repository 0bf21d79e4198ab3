import Foundation
import Services

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `PDFTextExtractor` by poppler's `pdftotext` (Debian's poppler-utils, installed by `make deps`):
/// `timeout -s KILL T nice -n 10 pdftotext -enc UTF-8 -q FILE -`, its standard output read
/// through a pipe. The parser of an untrusted PDF runs in a process of its own, at a lower CPU
/// priority than the daemon's event loops, killed (SIGKILL) when it runs past the time limit; its
/// output is read up to the cap, then it is killed and the text cut there. coreutils' `timeout`
/// (a few seconds after our own limit) is the backstop when the daemon itself dies meanwhile
/// (kill -9): nothing else would stop a PDF that makes pdftotext loop.
public struct PdftotextExtractor: PDFTextExtractor {
    /// The program and its leading arguments: the PDF's path and `-` (stdout) are appended.
    private let command: [String]

    /// - Parameter command: tests may run something else in pdftotext's place.
    public init(command: [String] = ["nice", "-n", "10", "pdftotext", "-enc", "UTF-8", "-q"]) {
        precondition(!command.isEmpty)
        self.command = command
    }

    public func extractText(path: String, maxBytes: Int, timeout: Duration) throws -> (text: String, truncated: Bool) {
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { throw PDFTextExtractionError.unavailable("pipe: \(Self.errnoText())") }
        let (readFD, writeFD) = (pipeFDs[0], pipeFDs[1])
        // Close-on-exec, so that no other child the daemon starts meanwhile holds the write end
        // (our reader would wait for it); pipe2 is not imported. The time limit bounds the rest.
        _ = fcntl(readFD, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeFD, F_SETFD, FD_CLOEXEC)
        defer { close(readFD) }
        let pid: pid_t
        do {
            defer { close(writeFD) }
            let backstop = "\(timeout.components.seconds + 5)s"
            pid = try spawn(arguments: ["timeout", "-s", "KILL", backstop] + command + [path, "-"], stdout: writeFD)
        }
        // From here the child is reaped whatever happens.
        let deadline = ContinuousClock.now + timeout
        var output = [UInt8]()
        var truncated = false
        var timedOut = false
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        reading: while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else {
                timedOut = true
                break
            }
            var descriptor = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(clamping: left.components.seconds * 1000 + Int64(left.components.attoseconds / 1_000_000_000_000_000) + 1)
            let ready = poll(&descriptor, 1, milliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if ready == 0 { continue }
            let count = buffer.withUnsafeMutableBytes { read(readFD, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                break
            }
            if count == 0 { break }
            let room = maxBytes - output.count
            if count > room {
                output.append(contentsOf: buffer[0..<room])
                truncated = true
                break reading
            }
            output.append(contentsOf: buffer[0..<count])
        }
        // The whole group: timeout, and nice's pdftotext under it.
        if truncated || timedOut { kill(-pid, SIGKILL) }
        let status = Self.wait(pid)
        if timedOut { throw PDFTextExtractionError.unreadable("pdftotext ran longer than \(timeout) and was stopped") }
        if !truncated {
            if let signal = status.signal {
                throw PDFTextExtractionError.unreadable("pdftotext died of signal \(signal)")
            }
            switch status.exitCode {
            case 0: break
            case 1: throw PDFTextExtractionError.unreadable("pdftotext could not read the PDF (damaged, not a PDF, or encrypted)")
            case 3: throw PDFTextExtractionError.unreadable("the PDF does not permit copying its text")
            // timeout's: its backstop fired (only when our own limit could not act).
            case 124, 137: throw PDFTextExtractionError.unreadable("pdftotext ran longer than \(timeout) and was stopped")
            // timeout's and nice's own: the program could not be found or run.
            case 126, 127: throw PDFTextExtractionError.unavailable("\(command.joined(separator: " ")) could not run (is poppler-utils installed?)")
            default: throw PDFTextExtractionError.unreadable("pdftotext failed (exit status \(status.exitCode))")
            }
        }
        return (Self.text(output, cut: truncated), truncated)
    }

    /// Starts `arguments` (found on PATH) with stdin from /dev/null, stdout `stdout`, stderr to
    /// /dev/null, in a process group of its own (so that one kill reaches everything it starts).
    private func spawn(arguments: [String], stdout: Int32) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, argv[0]!, &actions, &attributes, argv, environ)
        guard result == 0 else {
            throw PDFTextExtractionError.unavailable("\(arguments[0]) could not start: \(String(cString: strerror(result)))")
        }
        return pid
    }

    private struct ExitStatus {
        var exitCode: Int32
        var signal: Int32?
    }

    private static func wait(_ pid: pid_t) -> ExitStatus {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return ExitStatus(exitCode: -1, signal: nil) }
        }
        // WIFEXITED / WTERMSIG, which Swift does not import (macros).
        let termination = status & 0x7F
        if termination == 0 { return ExitStatus(exitCode: (status >> 8) & 0xFF, signal: nil) }
        return ExitStatus(exitCode: -1, signal: termination)
    }

    /// The output as text: NULs dropped (SQLite's text functions stop at one), a character the
    /// cap split dropped, anything not UTF-8 replaced (pdftotext writes UTF-8, but a PDF's fonts
    /// can map glyphs to anything), and the white space at the end dropped (pdftotext ends every
    /// page with a form feed: the last one would end every snippet of the text).
    static func text(_ bytes: [UInt8], cut: Bool) -> String {
        let bytes = cut ? FileTextJob.droppingSplitCharacter(bytes) : bytes[...]
        let text = String(decoding: bytes.filter { $0 != 0 }, as: UTF8.self)
        return String(text[..<(text.lastIndex { !$0.isWhitespace }.map(text.index(after:)) ?? text.startIndex)])
    }

    private static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
