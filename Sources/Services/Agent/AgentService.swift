import Foundation
import Logging

/// The agent: answers a message in a chat with the configured model, streaming as it goes, and
/// keeps a record of every run. Every call is scoped to one user; another user's chat, message or
/// run answers exactly like a missing one.
///
/// A run, in order: the question is stored (with the chat, when new) and the run row with
/// `agent.run.started`, in one transaction; the context is built (system prompt, module, as much
/// of the branch as fits); the model streams (deltas go to `onDelta`), with up to
/// `maxToolRounds` rounds of web searches when asked; the answer, the run's end and its event are
/// stored in one transaction. Whatever fails after the question is stored ends the run as failed
/// (the question stays); cancellation ends it as cancelled, with the partial answer stored. A
/// completed run that gave the chat its first answer then enqueues the chat's title job
/// (`ChatTitles`, when `agent.auto_title` is on).
///
/// Cancellation: the consuming task is cancelled (the call's own cancellation, a closed connection,
/// or `agent.cancel` through the run's handle), which stops iterating the provider's stream at once
/// (the provider aborts its HTTP transfer). The call then throws `AgentError.cancelled` (`-32800`).
///
/// One job a file: the calls here; their checks and the question's placement in
/// AgentService+Validation, the context in +Context, the run loop in +Run, web search in
/// +WebSearch, storing a run's end in +End, `agent.cancel` and `agent.runs.*` in +Runs.
public struct AgentService: Sendable {
    /// Model requests per run: the last one is offered no tools, so it answers.
    public static let maxToolRounds = 3
    /// Web searches run per round; more calls in one round are answered "skipped".
    public static let maxSearchesPerRound = 5
    /// Web searches running at once.
    public static let maxParallelSearches = 3
    public static let searchResultsPerQuery = 5
    /// Characters of each result's content the model is given.
    public static let maxResultContentCharacters = 2000
    public static let maxVariables = 64
    public static let maxModelLength = 200
    public static let maxTokensLimit = 1_000_000
    public static let defaultRunLimit = 50
    public static let maxRunLimit = 200
    /// The tool offered with `webSearch: true`.
    public static let webSearchTool = LLMTool(
        name: "web_search",
        description:
            "Searches the web and returns the most relevant pages (title, url, content). Use it for current events and facts you are unsure of.",
        parametersSchema:
            #"{"type":"object","properties":{"query":{"type":"string","description":"What to search for"}},"required":["query"],"additionalProperties":false}"#
    )
    /// What `webSearch: true` needs when no search client is configured.
    public static let missingSearchSettings = WebSearchConfiguration().missingSettings

    // Not private: the extensions in AgentService+*.swift read them.
    let store: any AgentStore
    let chats: any ChatStore
    let prompts: any AgentPromptSource
    let modules: any AgentModuleSource
    let provider: any LLMProvider
    let webSearch: (any WebSearchClient)?
    let clock: any WallClock
    let ids: any IDGenerator
    let metrics: LLMMetrics
    let logger: Logger
    let replyBudget: ReplyBudget
    let titles: ChatTitles?
    /// Where background runs' `agent.run` jobs go (the queue, and a wake of this process's
    /// workers); nil: `background: true` is refused.
    let scheduler: JobScheduler?
    /// The queue behind `scheduler`: a background run's job, read and cancelled.
    var jobs: (any JobQueue)? { scheduler?.queue }
    let registry = AgentRunRegistry()
    /// Each run's deltas for its watchers (`agent.runs.watch`), and the stores of its partial answer.
    let streams: AgentRunStreams
    let watchesPerConnection: Int
    /// The setting `watchesPerConnection` comes from (named in `-32042`).
    static let watchLimitSetting = "events.max_subscriptions_per_connection"

    /// How often a streaming run stores its answer so far (when it changed).
    public static let partialStoreInterval: Duration = .milliseconds(250)

    /// - Parameters:
    ///   - replyBudget: the most bytes a reply may hold (`agent.runs.list` stops early).
    ///   - watchCapacity: deltas a watch may have waiting for its client before it ends with
    ///     `agent.watch.overflow`.
    ///   - watchesPerConnection: `agent.runs.watch` going at once on one connection.
    ///   - titles: enqueues a chat's title job after its first answer; nil when `agent.auto_title` is off.
    ///   - partialTimer: waits `partialStoreInterval` between two stores of a run's partial answer.
    ///   - jobs: how to enqueue, for `background: true` (`AgentRunJob` runs the jobs).
    public init(
        store: any AgentStore, chats: any ChatStore, prompts: any AgentPromptSource, modules: any AgentModuleSource, provider: any LLMProvider,
        webSearch: (any WebSearchClient)?, clock: any WallClock, ids: any IDGenerator, metrics: LLMMetrics, logger: Logger,
        replyBudget: ReplyBudget = ReplyBudget(), watchCapacity: Int = 4096, watchesPerConnection: Int = 64,
        partialTimer: @escaping AgentPartialTimer = { try await Task.sleep(for: $0) }, jobs: JobScheduler? = nil, titles: ChatTitles? = nil
    ) {
        self.scheduler = jobs
        self.watchesPerConnection = watchesPerConnection
        self.streams = AgentRunStreams(
            store: store, timer: partialTimer, interval: Self.partialStoreInterval, capacity: watchCapacity, logger: logger)
        self.replyBudget = replyBudget
        self.titles = titles
        self.store = store
        self.chats = chats
        self.prompts = prompts
        self.modules = modules
        self.provider = provider
        self.webSearch = webSearch
        self.clock = clock
        self.ids = ids
        self.metrics = metrics
        self.logger = logger
    }

    /// Runs going on in this process (for tests and metrics).
    public var activeRuns: Int { registry.count }

    // MARK: agent.act, agent.regenerate

    /// - Throws: `AgentError.invalid`, `.notFound`, `.cancelled`; `ChatsError.notFound`,
    ///   `PromptsError`, `ModulesError.notFound` before anything is stored; after the question is
    ///   stored, the provider's `LLMError` (the run failed).
    /// `timedOut`: asked when the run is cancelled; the call's time limit when that is why (the run
    /// then ends as failed with kind `timeout`, not as cancelled by someone).
    public func act(
        _ params: Agent.Act.Params, user: User, onDelta: @escaping @Sendable (AgentDelta) -> Void,
        timedOut: @escaping @Sendable () -> Duration? = { nil }
    ) async throws -> AgentAnswer {
        let prepared = try await prepare(params, user: user)
        return try await perform(
            prepared.run, start: prepared.start, question: nil, system: prepared.system, options: prepared.options, userID: user.id,
            onDelta: onDelta, timedOut: timedOut)
    }

    /// A run about to start, as `act` and `regenerate` built it: what `perform` (tied to the call)
    /// or `startInBackground` (a job) takes.
    struct PreparedRun {
        var run: AgentRun
        var start: AgentRunStart
        /// The question when it is already stored (`agent.regenerate`).
        var question: Message?
        var system: String?
        var options: Agent.Options
    }

    private func prepare(_ params: Agent.Act.Params, user: User) async throws -> PreparedRun {
        try Self.validate(message: params.message)
        let options = try Self.validate(params.options)
        let attachments = try Attachments.validate(params.attachments)
        let now = clock.now()
        // The chat (given, found through the placement message, or nil: new) and where the question goes.
        let (chat, placement) = try await target(of: params, user: user)
        let moduleID = chat.map(\.moduleId) ?? params.moduleId
        let module = try await module(moduleID, userID: user.id)
        let system = try await systemPrompt(options, module: module, user: user, now: now)

        var newChat: NewChat?
        var chatCreated: ChatsEvents.ChatCreated?
        let chatID: String
        if let chat {
            chatID = chat.id
        } else {
            let created = NewChat(id: ids.makeID(prefix: "cht_"), moduleID: params.moduleId, title: Self.title(from: params.message), createdAt: now)
            newChat = created
            chatCreated = ChatsEvents.ChatCreated(userID: user.id, chatId: created.id, moduleId: created.moduleID, title: created.title)
            chatID = created.id
        }
        let question = NewMessage(
            id: ids.makeID(prefix: "msg_"), chatID: chatID, placement: placement, role: .user, content: params.message, createdAt: now,
            attachments: attachments)
        let run = AgentRun(
            id: ids.makeID(prefix: "run_"), chatId: chatID, userMessageId: question.id, status: .running, provider: provider.name,
            model: options.model, startedAt: now)
        return PreparedRun(
            run: run,
            start: AgentRunStart(
                newChat: newChat, chatCreated: chatCreated, userMessage: question, run: run, runStarted: started(run, userID: user.id)),
            question: nil, system: system, options: options)
    }

    /// - Throws: as `act`; `AgentError.invalid` (`messageId`) for a message that is neither an
    ///   answer to a user message nor a user message.
    public func regenerate(
        _ params: Agent.Regenerate.Params, user: User, onDelta: @escaping @Sendable (AgentDelta) -> Void,
        timedOut: @escaping @Sendable () -> Duration? = { nil }
    ) async throws -> AgentAnswer {
        let prepared = try await prepare(params, user: user)
        return try await perform(
            prepared.run, start: prepared.start, question: prepared.question, system: prepared.system, options: prepared.options, userID: user.id,
            onDelta: onDelta, timedOut: timedOut)
    }

    private func prepare(_ params: Agent.Regenerate.Params, user: User) async throws -> PreparedRun {
        let options = try Self.validate(params.options)
        let attachments = try Attachments.validate(params.attachments)
        guard let target = try await chats.message(id: params.messageId, userID: user.id) else {
            throw ChatsError.notFound(kind: "message", id: params.messageId)
        }
        let question: Message
        switch target.role {
        case .user:
            question = target
        case .assistant:
            guard let parentID = target.parentId, let parent = try await chats.message(id: parentID, userID: user.id), parent.role == .user else {
                throw AgentError.invalid(field: "messageId", reason: "this answer follows no user message")
            }
            question = parent
        case .system:
            throw AgentError.invalid(field: "messageId", reason: "give an assistant message (to answer again) or a user message (to answer it)")
        }
        guard let chat = try await chats.chat(id: question.chatId, userID: user.id) else {
            throw ChatsError.notFound(kind: "message", id: params.messageId)
        }
        let module = try await module(chat.moduleId, userID: user.id)
        let now = clock.now()
        let system = try await systemPrompt(options, module: module, user: user, now: now)
        // Messages never change, so new files make a new question: the original's sibling with the
        // same content and exactly these files (what an edit through agent.act would store).
        let asked =
            attachments.isEmpty
            ? nil
            : NewMessage(
                id: ids.makeID(prefix: "msg_"), chatID: chat.id, placement: .siblingOf(messageID: question.id), role: .user,
                content: question.content, createdAt: now, attachments: attachments)
        let run = AgentRun(
            id: ids.makeID(prefix: "run_"), chatId: chat.id, userMessageId: asked?.id ?? question.id, status: .running, provider: provider.name,
            model: options.model, startedAt: now)
        return PreparedRun(
            run: run, start: AgentRunStart(newChat: nil, chatCreated: nil, userMessage: asked, run: run, runStarted: started(run, userID: user.id)),
            question: asked == nil ? question : nil, system: system, options: options)
    }

    // MARK: background: true

    /// `agent.act` with `background: true`: stores the question and the run, enqueues its
    /// `agent.run` job and answers at once; `AgentRunJob` runs it.
    ///
    /// - Throws: as `act` before anything is stored; `AgentError.invalid` (`background`) when this
    ///   daemon runs no job queue.
    public func actInBackground(_ params: Agent.Act.Params, user: User) async throws -> AgentBackgroundRun {
        try await startInBackground(try await prepare(params, user: user), userID: user.id)
    }

    /// `agent.regenerate` with `background: true` (`messageId` in the answer is the question).
    public func regenerateInBackground(_ params: Agent.Regenerate.Params, user: User) async throws -> AgentBackgroundRun {
        try await startInBackground(try await prepare(params, user: user), userID: user.id)
    }

    private func module(_ id: String?, userID: String) async throws -> Module? {
        guard let id else { return nil }
        return try await modules.module(id: id, userID: userID)
    }

    private func started(_ run: AgentRun, userID: String) -> AgentEvents.RunStarted {
        AgentEvents.RunStarted(
            userID: userID, runId: run.id, chatId: run.chatId, userMessageId: run.userMessageId, provider: run.provider, model: run.model)
    }
}
