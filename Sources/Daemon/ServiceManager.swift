import CSystemd
import Logging
import NIOCore
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// The service manager (systemd) as agentd sees it: readiness and status notifications, the
/// watchdog, and a listening socket passed by socket activation. Without systemd (no
/// `NOTIFY_SOCKET`, no `LISTEN_FDS`) every call is a no-op.
enum ServiceManager {
    /// Sends `state` (e.g. "READY=1\nSTATUS=…") to the service manager, if there is one.
    static func notify(_ state: String) {
        _ = sd_notify(0, state)
    }

    static var isPresent: Bool { FileSystem.environment("NOTIFY_SOCKET") != nil }

    /// The listening Unix stream socket passed by socket activation, if any.
    ///
    /// - Throws: when the manager passed something agentd cannot serve on.
    static func activatedSocket() throws -> Int32? {
        // unset_environment = 1: children must not think the socket is theirs.
        let count = sd_listen_fds(1)
        guard count > 0 else { return nil }
        guard count == 1 else { throw DaemonError("socket activation passed \(count) sockets; agentd serves exactly one") }
        let fd = SD_LISTEN_FDS_START
        guard sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else {
            throw DaemonError("socket activation passed fd \(fd), which is not a listening Unix stream socket")
        }
        return fd
    }

    /// The watchdog interval systemd expects pings within, if the watchdog is on for this process.
    static func watchdogInterval() -> Duration? {
        var microseconds: UInt64 = 0
        // unset_environment = 0: keep WATCHDOG_PID/USEC so the check stays per-process (a child
        // with inherited variables is told apart by WATCHDOG_PID).
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(microseconds))
    }
}

/// Pings the systemd watchdog at half its interval and keeps `STATUS=` current, but only after
/// every event loop has run a task: a hung loop stops the pings, and systemd restarts the daemon.
struct ServiceManagerReporter: Service {
    let eventLoops: any EventLoopGroup
    let watchdog: Duration?
    let status: @Sendable () -> String
    let logger: Logger

    func run() async throws {
        guard ServiceManager.isPresent else {
            try? await gracefulShutdown()
            return
        }
        let period = watchdog.map { $0 / 2 } ?? .seconds(5)
        if let watchdog { logger.info("systemd watchdog on", metadata: ["interval": "\(watchdog)"]) }
        while !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: period) }
            } catch {
                return
            }
            // Proof of life comes from the loops themselves, not from this task.
            let loops = eventLoops.makeIterator().map { $0 }
            let ticks = loops.map { $0.submit {} }
            guard (try? await EventLoopFuture.andAllSucceed(ticks, on: loops[0]).get()) != nil else { continue }
            ServiceManager.notify((watchdog == nil ? "" : "WATCHDOG=1\n") + "STATUS=" + status())
        }
    }
}
