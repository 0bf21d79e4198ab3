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
    /// Creates the missing parent folders of `path` with mode 0700 (existing ones are left alone).
    static func createParentDirectories(of path: String) throws {
        var components = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        guard !components.isEmpty else { return }
        var current = path.hasPrefix("/") ? "" : "."
        if path.hasPrefix("/") { components = components.dropFirst() }
        for component in components where !component.isEmpty {
            current += "/" + component
            if mkdir(current, 0o700) != 0, errno != EEXIST {
                throw DaemonError("cannot create folder \(current): \(errnoDescription())")
            }
        }
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
