#if canImport(Glibc)
import Glibc
#endif

/// Writing to stdout/stderr unbuffered (a streamed answer must appear as it arrives), and the
/// terminal questions: is this a TTY, read a password without echo.
enum Terminal {
    static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) != 0 }
    static var stdinIsTerminal: Bool { isatty(STDIN_FILENO) != 0 }
    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) != 0 }

    static func out(_ text: String) { write(STDOUT_FILENO, text) }
    static func err(_ text: String) { write(STDERR_FILENO, text) }

    private static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
        bytes.removeAll()
    }

    /// Colours only for a person: a terminal, `--no-color` not given, `NO_COLOR` unset.
    static func wantsColor(noColorFlag: Bool) -> Bool {
        guard !noColorFlag, stdoutIsTerminal else { return false }
        if let value = getenv("NO_COLOR"), value.pointee != 0 { return false }
        return true
    }

    /// Reads one line from the terminal on stdin with echo off (the prompt goes to stderr).
    static func readSecret(prompt: String) -> String? {
        err(prompt)
        var saved = termios()
        let haveTerminal = tcgetattr(STDIN_FILENO, &saved) == 0
        if haveTerminal {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet)
        }
        defer {
            if haveTerminal {
                tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
                err("\n")
            }
        }
        var reader = LineReader(fd: STDIN_FILENO)
        if case .line(let line) = reader.next() { return line }
        return nil
    }

    /// Reads all of stdin.
    static func readAll() -> String {
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            if count <= 0 { break }
            data += chunk[..<count]
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Lines from a descriptor, read with `read(2)` (no stdio buffering, so it can be `poll`ed with
/// other descriptors).
struct LineReader {
    enum Input: Equatable {
        case line(String)
        case endOfInput
        /// One of the other descriptors became readable first.
        case interrupted
    }

    let fd: Int32
    private var buffer: [UInt8] = []
    private var ended = false

    init(fd: Int32) { self.fd = fd }

    mutating func next(alsoWatching others: [Int32] = []) -> Input {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                var line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                if line.last == 0x0D { line.removeLast() }
                return .line(String(decoding: line, as: UTF8.self))
            }
            if ended {
                guard !buffer.isEmpty else { return .endOfInput }
                defer { buffer.removeAll() }
                return .line(String(decoding: buffer, as: UTF8.self))
            }
            var descriptors = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
            descriptors += others.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&descriptors, nfds_t(descriptors.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return .endOfInput
            }
            if descriptors.dropFirst().contains(where: { $0.revents != 0 }) { return .interrupted }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR || errno == EAGAIN { continue }
            if count <= 0 { ended = true } else { buffer += chunk[..<count] }
        }
    }
}

/// SIGINT as a readable descriptor: the handler writes a byte to a pipe (`write` is async-signal
/// safe), the program `poll`s the pipe with its socket and stdin and decides what Ctrl-C means
/// where it is (cancel the answer, or leave the prompt).
enum InterruptPipe {
    /// Written only in `install()`, before the handler exists; read by the handler afterwards.
    nonisolated(unsafe) private static var writeEnd: Int32 = -1
    nonisolated(unsafe) private static var readEnd: Int32 = -1

    /// Installs the handler once; returns the descriptor that becomes readable on each SIGINT.
    static func install() -> Int32 {
        if readEnd >= 0 { return readEnd }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return -1 }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        readEnd = fds[0]
        writeEnd = fds[1]
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            var byte: UInt8 = 1
            _ = Glibc.write(InterruptPipe.writeEnd, &byte, 1)
        }
        action.sa_flags = SA_RESTART
        sigemptyset(&action.sa_mask)
        sigaction(SIGINT, &action, nil)
        // A parent may have started us with SIGINT blocked (the mask survives exec): unblock it,
        // or Ctrl-C would never reach the handler.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        return readEnd
    }

    /// Empties the pipe; true when at least one SIGINT was pending.
    @discardableResult
    static func drain() -> Bool {
        var any = false
        var byte: UInt8 = 0
        while readEnd >= 0, read(readEnd, &byte, 1) == 1 { any = true }
        return any
    }
}
