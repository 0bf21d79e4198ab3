import Foundation
import Services
import Synchronization

/// A gate a scripted stream waits at until the test opens it (or the waiting task is cancelled).
public final class Gate: Sendable {
    public init() {}

    private struct State {
        var open = false
        var waiting = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var next: UInt64 = 0
    }

    // Invariant: only touched under the mutex; `waiters` is emptied when `open` is set.
    private let state = Mutex(State())

    public func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// How many have reached the gate (while closed).
    public var arrivals: Int { state.withLock { $0.waiting } }

    public func wait() async {
        let id = state.withLock { state -> UInt64 in
            state.next += 1
            state.waiting += 1
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.open || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}

/// An `LLMProvider` that plays one script per request, in order (the last one again when they run
/// out), records every request, and counts the streams whose consumer went away (cancelled).
public final class ScriptedLLMProvider: LLMProvider {
    public enum Step: Sendable {
        case event(LLMStreamEvent)
        case wait(Gate)
        case fail(LLMError)
    }

    public let name: String
    public let defaultModel: String?
    public let window: Int
    private let scripts: Mutex<[[Step]]>
    private let recorded = Mutex([LLMRequest]())
    private let cancellations = Counter()
    /// Opened when a stream's consumer cancels.
    public let cancelledGate = Gate()

    public init(name: String = "fake", defaultModel: String? = "fake-model", window: Int = 100_000, scripts: [[Step]]) {
        self.name = name
        self.defaultModel = defaultModel
        self.window = window
        self.scripts = Mutex(scripts)
    }

    /// A script answering `pieces` as text deltas, then usage and `.finished(.stop)`.
    public static func answer(
        _ pieces: [String], usage: LLMUsage? = LLMUsage(promptTokens: 10, completionTokens: 5, estimated: false), model: String = "fake-model-2026"
    ) -> [Step] {
        pieces.map { .event(.text($0)) } + (usage.map { [.event(.usage($0))] } ?? []) + [.event(.finished(reason: .stop, model: model))]
    }

    public var requests: [LLMRequest] { recorded.withLock { $0 } }
    public var cancelledStreams: Int { cancellations.value }

    public func contextWindow(model: String) -> Int { window }

    public func stream(_ request: LLMRequest) -> AsyncThrowingStream<LLMStreamEvent, any Error> {
        recorded.withLock { $0.append(request) }
        let script = scripts.withLock { scripts -> [Step] in
            scripts.count > 1 ? scripts.removeFirst() : (scripts.first ?? [])
        }
        return AsyncThrowingStream { continuation in
            let producer = Task {
                for step in script {
                    if Task.isCancelled { return }
                    switch step {
                    case .event(let event): continuation.yield(event)
                    case .wait(let gate): await gate.wait()
                    case .fail(let error):
                        continuation.finish(throwing: error)
                        return
                    }
                }
                continuation.finish()
            }
            let cancellations = self.cancellations
            let cancelledGate = self.cancelledGate
            continuation.onTermination = { termination in
                if case .cancelled = termination {
                    cancellations.increment()
                    cancelledGate.open()
                }
                producer.cancel()
            }
        }
    }
}

/// A shared count.
public final class Counter: Sendable {
    public init() {}

    // Only touched under the mutex.
    private let count = Mutex(0)
    public var value: Int { count.withLock { $0 } }
    public func increment() { count.withLock { $0 += 1 } }
}

/// A `WebSearchClient` that answers each query with two pages about it (or fails), and records the
/// queries.
public final class FakeWebSearch: WebSearchClient {
    private let queries = Mutex([String]())
    public let failure: LLMError?

    public init(failure: LLMError? = nil) {
        self.failure = failure
    }

    public var received: [String] { queries.withLock { $0 } }

    public func search(_ query: WebSearchQuery) async throws -> WebSearchResponse {
        queries.withLock { $0.append(query.query) }
        if let failure { throw failure }
        let slug = query.query.replacingOccurrences(of: " ", with: "-")
        return WebSearchResponse(
            query: query.query,
            results: [
                WebSearchResult(
                    title: "About \(query.query)", url: "https://example.test/\(slug)", content: "Facts about \(query.query).", score: 0.9),
                WebSearchResult(title: "Shared page", url: "https://example.test/shared", content: "Common.", score: 0.5),
            ],
            requestId: "req-\(slug)", credits: 1, responseTimeSeconds: 0.1)
    }
}

/// Collects `agent.delta` notifications.
public final class DeltaRecorder: Sendable {
    public init() {}

    private let deltas = Mutex([AgentDelta]())
    public let firstDelta = Gate()

    public var all: [AgentDelta] { deltas.withLock { $0 } }
    public var text: String { all.map(\.text).joined() }

    public func record(_ delta: AgentDelta) {
        deltas.withLock { $0.append(delta) }
        firstDelta.open()
    }
}
