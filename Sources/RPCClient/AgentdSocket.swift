#if canImport(Glibc)
import Glibc
#endif

/// Where agentd listens: one rule for the daemon (which binds there) and its clients (which
/// connect there), so that both find the same socket without being told.
public enum AgentdSocket {
    /// The environment variable that names the socket for both the daemon and its clients.
    public static let environmentVariable = "AGENTD_SOCKET"

    /// `$XDG_RUNTIME_DIR/agentd/agentd.sock`, else `/tmp/agentd-$UID/agentd.sock`.
    public static func defaultPath() -> String {
        if let runtime = environment("XDG_RUNTIME_DIR") {
            return runtime + "/agentd/agentd.sock"
        }
        return "/tmp/agentd-\(getuid())/agentd.sock"
    }

    /// A client's socket: the `--socket` flag, then `$AGENTD_SOCKET`, then the default path.
    public static func resolve(flag: String?) -> String {
        if let flag, !flag.isEmpty { return flag }
        return environment(environmentVariable) ?? defaultPath()
    }

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name), value.pointee != 0 else { return nil }
        return String(cString: value)
    }
}
