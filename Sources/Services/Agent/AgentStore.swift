import Foundation

/// A run about to start, as the service built it: the chat to create (for `agent.act` without
/// `chatId`), the question to store (none for `agent.regenerate`) and the run row.
public struct AgentRunStart: Sendable {
    public var newChat: NewChat?
    public var chatCreated: ChatsEvents.ChatCreated?
    public var userMessage: NewMessage?
    public var run: AgentRun
    public var runStarted: AgentEvents.RunStarted

    public init(newChat: NewChat?, chatCreated: ChatsEvents.ChatCreated?, userMessage: NewMessage?, run: AgentRun, runStarted: AgentEvents.RunStarted)
    {
        self.newChat = newChat
        self.chatCreated = chatCreated
        self.userMessage = userMessage
        self.run = run
        self.runStarted = runStarted
    }
}

/// How a run ended, as the service built it.
public struct AgentRunFinish: Sendable {
    /// The run as it ends (status, usage, error, timings, context); `assistantMessageId` is set by
    /// the store from `answer`.
    public var run: AgentRun
    /// The answer to store (a child of the question, made active); nil for none.
    public var answer: NewMessage?
    /// The tool-call turns before the answer's text (normalised ids), and the searches.
    public var steps: [LLMMessage]
    public var searches: [WebSearchStep]
    /// The run's event (`agent.run.completed|failed|cancelled`), made from the stored answer.
    public var event: @Sendable (Message?) -> any DomainEvent

    public init(
        run: AgentRun, answer: NewMessage?, steps: [LLMMessage], searches: [WebSearchStep], event: @escaping @Sendable (Message?) -> any DomainEvent
    ) {
        self.run = run
        self.answer = answer
        self.steps = steps
        self.searches = searches
        self.event = event
    }
}

/// What `AgentStore.runs` selects.
public struct AgentRunQuery: Sendable, Equatable {
    public var userID: String
    public var chatID: String?
    /// Only rows with `seq` below this (the keyset cursor); nil from the newest.
    public var beforeSeq: Int64?
    public var limit: Int

    public init(userID: String, chatID: String? = nil, beforeSeq: Int64? = nil, limit: Int) {
        self.userID = userID
        self.chatID = chatID
        self.beforeSeq = beforeSeq
        self.limit = limit
    }
}

/// A run row with its position in the list.
public struct StoredAgentRun: Sendable, Equatable {
    public var seq: Int64
    public var run: AgentRun

    public init(seq: Int64, run: AgentRun) {
        self.seq = seq
        self.run = run
    }
}

/// Where agent runs live. `SQLiteAgentStore` in Storage implements it, on the same database as the
/// chats: a run's start stores its chat, question, run row and events in one transaction, and its
/// end its answer, run row and events in one transaction. Every call is scoped to one user; another
/// user's run is the same as a missing one.
public protocol AgentStore: MessageGenerationSource, AgentPartialStore {
    /// Inserts what `start` holds and returns the question as stored (nil without one).
    ///
    /// - Throws: `ChatsError.notFound` for a chat, module or placement message that is not the user's.
    func start(_ start: AgentRunStart, userID: String) async throws -> Message?
    /// Ends a running run: stores the answer (with its `chat.message.created` event), the run row
    /// and the run's event. Returns the run as stored, the answer, and whether that answer is the
    /// chat's first (checked in the same transaction: no completed run in the chat before it, and no
    /// assistant message but the answers of its runs that did not complete, such as a cancelled
    /// run's partial text).
    ///
    /// - Throws: `AgentError.notFound` when the user has no such running run.
    func finish(_ finish: AgentRunFinish, userID: String) async throws -> (run: AgentRun, answer: Message?, firstAnswer: Bool)
    func run(id: String, userID: String) async throws -> AgentRun?
    /// Newest first (by `seq`), at most `query.limit` rows.
    func runs(_ query: AgentRunQuery) async throws -> [StoredAgentRun]
    /// The stored tool-call turns of these answers (those that have any), by message id.
    func steps(answerIDs: [String], userID: String) async throws -> [String: [LLMMessage]]
    /// Marks every foreground run still `running` as failed (`interrupted`), with an event each: at
    /// start, after a crash. Background runs (with a job) are left to their job. Returns how many.
    func failInterruptedRuns(at date: Date) async throws -> Int
    /// Starts attempt `attempt` of a running background run: counts it, and when the previous
    /// attempt had streamed text (kept while it ran), keeps that text as the run's `partial`.
    /// Returns the run, or nil when it is not running (it ended: nothing to run again) or missing.
    func beginAttempt(runID: String, userID: String, attempt: Int) async throws -> AgentRun?
    /// How many background runs of `userID` are `running` (queued or going).
    func runningBackgroundRunCount(userID: String) async throws -> Int
    /// Every background run still `running`, with its user (at start, to check each has its job).
    func runningBackgroundRuns() async throws -> [OwnedAgentRun]
}

/// A run with the user it belongs to (for the daemon's own sweeps, which are not scoped to a user).
public struct OwnedAgentRun: Sendable, Equatable {
    public var userID: String
    public var run: AgentRun

    public init(userID: String, run: AgentRun) {
        self.userID = userID
        self.run = run
    }
}
