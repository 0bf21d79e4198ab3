import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An error that stops the daemon with a message for a person (no stack trace, exit status 1).
struct DaemonError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func errnoDescription(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

enum FileSystem {
    /// Creates the missing folders above the socket at `path` (mode 0700) and checks the ones that
    /// were already there: each must be a folder owned by us or root that nobody else can write
    /// (a sticky folder such as /tmp is fine above the socket's own folder, where others cannot
    /// rename what we put). The socket's own folder may be a sticky root-owned one only when the
    /// path was given explicitly (`explicit`): the default `/tmp/agentd-$UID` is a name another
    /// user can create first, then swap the socket or read what clients send (issue 17).
    static func prepareSocketFolders(of path: String, explicit: Bool) throws {
        var components = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        guard !components.isEmpty else { return }
        var current = path.hasPrefix("/") ? "" : "."
        if path.hasPrefix("/") { components = components.dropFirst() }
        let folders = components.filter { !$0.isEmpty }
        for (index, component) in folders.enumerated() {
            current += "/" + component
            if mkdir(current, 0o700) == 0 { continue }  // ours, from its creation
            guard errno == EEXIST else { throw DaemonError("cannot create folder \(current): \(errnoDescription())") }
            try checkSocketFolder(current, isSocketFolder: index == folders.count - 1, explicit: explicit)
        }
    }

    private static func checkSocketFolder(_ folder: String, isSocketFolder: Bool, explicit: Bool) throws {
        let me = geteuid()
        var status = stat()
        guard lstat(folder, &status) == 0 else { throw DaemonError("cannot inspect folder \(folder): \(errnoDescription())") }
        // A link is only as safe as the folder it sits in (checked on the way down) and its owner.
        if status.st_mode & S_IFMT == S_IFLNK {
            guard status.st_uid == me || status.st_uid == 0 else {
                throw DaemonError(
                    "refusing the socket folder \(folder): it is a link owned by uid \(status.st_uid), not by agentd's uid \(me) or root")
            }
            guard stat(folder, &status) == 0 else { throw DaemonError("cannot inspect folder \(folder): \(errnoDescription())") }
        }
        guard status.st_mode & S_IFMT == S_IFDIR else { throw DaemonError("\(folder) is not a folder; cannot put the socket under it") }
        let mode = "mode " + octal(status.st_mode & 0o7777)
        let sticky = status.st_mode & S_ISVTX != 0
        let othersWrite = status.st_mode & (S_IWGRP | S_IWOTH) != 0
        if isSocketFolder, explicit, sticky, status.st_uid == 0 { return }
        guard status.st_uid == me || status.st_uid == 0 else {
            throw DaemonError(
                "refusing the socket folder \(folder): owned by uid \(status.st_uid) (\(mode)), not by agentd's uid \(me); "
                    + "another user may have created it to take the socket's place. Remove it, or choose a folder of your own with --socket")
        }
        guard !othersWrite || (sticky && !isSocketFolder) else {
            throw DaemonError(
                "refusing the socket folder \(folder): writable by others (\(mode), owner uid \(status.st_uid)); "
                    + "another user could replace the socket. chmod go-w it, or choose another folder with --socket"
                    + (sticky ? " (a sticky system folder is accepted when --socket names it explicitly)" : ""))
        }
    }

    /// `0755`, `1777`: a mode as chmod writes it.
    static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// Whether something accepts connections on the Unix socket at `path` (a live server).
    static func socketAcceptsConnections(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0
    }

    static func homeDirectory() -> String {
        if let home = getenv("HOME"), home.pointee != 0 { return String(cString: home) }
        if let entry = getpwuid(getuid()), let dir = entry.pointee.pw_dir { return String(cString: dir) }
        return "/"
    }

    /// This machine's name (`gethostname`), for the job workers' id; `localhost` when it has none.
    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0, buffer[0] != 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name), value.pointee != 0 else { return nil }
        return String(cString: value)
    }
}

enum Processors {
    /// CPUs this process may run on (its affinity mask, as set by `taskset` or systemd's
    /// `CPUAffinity=`), so that event-loop threads never outnumber the cores they share.
    static func available() -> Int {
        // /proc/self/status says "Cpus_allowed_list:\t0-1,4"; sched_getaffinity is hidden behind
        // _GNU_SOURCE in Glibc's Swift module.
        guard let file = fopen("/proc/self/status", "r") else { return 1 }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard text.hasPrefix("Cpus_allowed_list:") else { continue }
            let list = text.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespacesAndNewlines)
            var count = 0
            for part in list.split(separator: ",") {
                let bounds = part.split(separator: "-").compactMap { Int($0) }
                if bounds.count == 2 { count += bounds[1] - bounds[0] + 1 } else if bounds.count == 1 { count += 1 }
            }
            return max(1, count)
        }
        return 1
    }
}
