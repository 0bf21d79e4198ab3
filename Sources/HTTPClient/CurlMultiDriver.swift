import CCurl
import Foundation
import Logging
import Services
import Synchronization

/// The one thread that drives libcurl's multi handle: adds and removes transfers, runs
/// `curl_multi_perform`, reads completions, enforces idle timeouts, and sleeps in `curl_multi_poll`
/// until a socket is ready, a timer is due or `curl_multi_wakeup` says a command arrived.
///
/// Callers never touch the multi handle: they post commands to `inbox` and wake the thread.
/// `@unchecked Sendable`: `multi` and `active` belong to the driver thread; `inbox` is the only
/// state shared with callers, behind its mutex (which also guards `multi`'s lifetime for wakeups).
final class CurlMultiDriver: @unchecked Sendable {
    enum Command {
        case add(CurlTransfer)
        case abort(CurlTransfer)
        case resume(CurlTransfer)
    }

    private struct Inbox {
        var commands: [Command] = []
        var stopping = false
        var stopped = false
        var exitWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let multi: UnsafeMutableRawPointer
    private let inbox = Mutex(Inbox())
    private let logger: Logger
    private var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]

    private static let globalInit: Void = { _ = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    init(maxConnectionsPerHost: Int, logger: Logger) {
        _ = Self.globalInit
        multi = curl_multi_init()
        self.logger = logger
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, maxConnectionsPerHost)
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "agentd-curl"
        thread.start()
    }

    /// Posts `command`; false when the driver has stopped (the command was not taken).
    @discardableResult
    func post(_ command: Command) -> Bool {
        inbox.withLock { inbox in
            guard !inbox.stopping else { return false }
            inbox.commands.append(command)
            curl_multi_wakeup(multi)
            return true
        }
    }

    /// Asks the thread to stop: live transfers end with `.cancelled`. Returns at once.
    func requestStop() {
        inbox.withLock { inbox in
            guard !inbox.stopping else { return }
            inbox.stopping = true
            curl_multi_wakeup(multi)
        }
    }

    /// Stops the thread and waits until it has released libcurl's handles.
    func stop() async {
        requestStop()
        await withCheckedContinuation { continuation in
            let done = inbox.withLock { inbox -> Bool in
                if inbox.stopped { return true }
                inbox.exitWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    // MARK: The driver thread

    private func run() {
        var running: Int32 = 0
        while true {
            let (commands, stopping) = inbox.withLock { inbox in
                defer { inbox.commands.removeAll(keepingCapacity: true) }
                return (inbox.commands, inbox.stopping)
            }
            for command in commands { handle(command) }
            if stopping { break }

            curl_multi_perform(multi, &running)
            readCompletions()
            let nextIdleDeadline = enforceIdleTimeouts()

            var timeout = 1000
            var curlTimeout = -1
            curl_multi_timeout(multi, &curlTimeout)
            if curlTimeout >= 0 { timeout = min(timeout, curlTimeout) }
            if let nextIdleDeadline {
                let remaining = ContinuousClock.now.duration(to: nextIdleDeadline)
                timeout = min(timeout, max(0, CurlTransfer.milliseconds(remaining)))
            }
            curl_multi_poll(multi, nil, 0, Int32(timeout), nil)
        }
        shutDown()
    }

    private func handle(_ command: Command) {
        switch command {
        case .add(let transfer):
            if let reason = transfer.abortRequested {
                transfer.driverFinish(reason)
                return
            }
            transfer.driverLastActivity = nil
            active[transfer.easy] = transfer
            let code = curl_multi_add_handle(multi, transfer.easy)
            if code != CURLM_OK {
                active[transfer.easy] = nil
                transfer.driverFinish(.transport(detail: String(cString: curl_multi_strerror(code))))
            } else {
                logger.trace("http transfer started", metadata: ["request": "\(transfer.summary)"])
            }
        case .abort(let transfer):
            guard active[transfer.easy] === transfer else { return }
            remove(transfer, error: transfer.abortRequested ?? .cancelled, aborted: true)
        case .resume(let transfer):
            guard active[transfer.easy] === transfer, transfer.driverPaused else { return }
            transfer.driverPaused = false
            transfer.driverLastActivity = .now
            // May call the write callback at once with what libcurl held back (and pause again).
            curl_easy_pause(transfer.easy, ccurl_pause_cont)
        }
    }

    private func readCompletions() {
        var left: Int32 = 0
        while let message = curl_multi_info_read(multi, &left) {
            var code = CURLE_OK
            guard let easy = ccurl_msg_done(message, &code), let transfer = active[easy] else { continue }
            remove(transfer, error: transfer.driverError(for: code), aborted: false)
        }
    }

    /// Aborts transfers silent for longer than their idle limit; returns the earliest next deadline.
    private func enforceIdleTimeouts() -> ContinuousClock.Instant? {
        let now = ContinuousClock.now
        var next: ContinuousClock.Instant?
        var expired: [CurlTransfer] = []
        for transfer in active.values {
            guard let idle = transfer.timeouts.idle, !transfer.driverPaused else { continue }
            guard let last = transfer.driverLastActivity else {
                // The idle clock starts once the connection is up (the connect limit covers before).
                if transfer.connected {
                    transfer.driverLastActivity = now
                    next = min(next ?? now + idle, now + idle)
                }
                continue
            }
            let deadline = last + idle
            if deadline <= now {
                expired.append(transfer)
            } else {
                next = min(next ?? deadline, deadline)
            }
        }
        for transfer in expired {
            _ = transfer.requestAbort(.timedOut(.idle))
            remove(transfer, error: .timedOut(.idle), aborted: true)
        }
        // Transfers still connecting need a look soon to start their idle clock.
        if active.values.contains(where: { $0.timeouts.idle != nil && $0.driverLastActivity == nil }) {
            next = min(next ?? now + .milliseconds(50), now + .milliseconds(50))
        }
        return next
    }

    /// Takes the transfer off the multi handle and ends it for its callers. An aborted transfer's
    /// connection is closed rather than kept for reuse, so the server sees the client go.
    private func remove(_ transfer: CurlTransfer, error: HTTPClientError?, aborted: Bool) {
        if aborted { _ = ccurl_setopt_long(transfer.easy, CURLOPT_FORBID_REUSE, 1) }
        curl_multi_remove_handle(multi, transfer.easy)
        active[transfer.easy] = nil
        if let error {
            logger.debug("http transfer failed", metadata: ["request": "\(transfer.summary)", "error": "\(error)"])
        } else {
            logger.trace("http transfer finished", metadata: ["request": "\(transfer.summary)"])
        }
        transfer.driverFinish(error)
    }

    private func shutDown() {
        for transfer in Array(active.values) {
            _ = transfer.requestAbort(.cancelled)
            remove(transfer, error: .cancelled, aborted: true)
        }
        let (late, waiters) = inbox.withLock { inbox in
            inbox.stopped = true
            defer {
                inbox.commands = []
                inbox.exitWaiters = []
            }
            return (inbox.commands, inbox.exitWaiters)
        }
        for case .add(let transfer) in late { transfer.driverFinish(.cancelled) }
        curl_multi_cleanup(multi)
        for waiter in waiters { waiter.resume() }
    }
}
