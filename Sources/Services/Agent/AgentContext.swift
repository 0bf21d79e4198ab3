import Foundation

/// How the agent turns a chat's branch into a request that fits the model's context window: the
/// token estimate, the budget, provider-neutral tool-call ids and the repair of interrupted tool
/// calls. Pure functions, no I/O.
enum AgentContext {
    /// Tokens a message costs beyond its text (role, separators), as chat formats roughly spend.
    static let perMessageOverhead = 4
    static let perToolCallOverhead = 8
    /// What a tool call without a result (an interrupted run) is answered with in later requests.
    static let interruptedToolResult = #"{"error":"interrupted: the run stopped before this tool call was answered"}"#

    /// A part of the history kept or dropped whole: a message, or an answer with the tool-call turns
    /// before it (a call never goes without its results).
    struct Unit: Equatable {
        var messages: [LLMMessage]
        /// How many messages of the chat's branch it stands for.
        var chatMessages: Int
    }

    struct Built: Equatable {
        var messages: [LLMMessage]
        var report: AgentContextReport
    }

    // MARK: Estimate

    /// About 4 bytes of UTF-8 per token, rounded up.
    static func estimate(_ text: String) -> Int { (text.utf8.count + 3) / 4 }

    static func estimate(_ message: LLMMessage) -> Int {
        var tokens = perMessageOverhead + estimate(message.content ?? "")
        for call in message.toolCalls { tokens += perToolCallOverhead + estimate(call.name) + estimate(call.arguments) }
        return tokens
    }

    static func estimate(_ messages: [LLMMessage]) -> Int { messages.reduce(0) { $0 + estimate($1) } }

    static func estimate(tools: [LLMTool]) -> Int {
        tools.reduce(0) { $0 + perToolCallOverhead + estimate($1.name) + estimate($1.description) + estimate($1.parametersSchema) }
    }

    /// Room kept for the answer: `maxTokens` when given, else an eighth of the window (at most 1024).
    static func reserve(window: Int, maxTokens: Int?) -> Int { maxTokens ?? min(1024, window / 8) }

    /// The most bytes of message text, question included, that can be kept: a message costs at
    /// least a token per 4 bytes (`estimate`), so text past `4 × (window − reserve)` bytes never
    /// fits and need not be read.
    static func maxHistoryBytes(window: Int, reserve: Int) -> Int { 4 * max(0, window - reserve) }

    // MARK: Budget

    /// The request's messages: `system` first, then the newest history units that fit, then
    /// `current` (the question). History is dropped oldest first, whole units at a time.
    /// `unread`: messages of the branch older than `history` that were not read (they could not
    /// fit), counted as dropped.
    ///
    /// - Throws: `LLMError.contextOverflow` (with the estimate and the window) when the system
    ///   prompt, the question and the answer's reserve do not fit even without history.
    static func build(
        system: String?, history: [Unit], current: Unit, window: Int, reserve: Int, tools: [LLMTool], provider: String, unread: Int = 0
    ) throws -> Built {
        let systemMessage = system.map { LLMMessage(role: .system, content: $0) }
        let fixed = (systemMessage.map(estimate) ?? 0) + estimate(current.messages) + estimate(tools: tools)
        let available = window - reserve
        guard fixed <= available else {
            throw LLMError(
                .contextOverflow,
                "the message, system prompt and module need about \(fixed) tokens and \(reserve) are kept for the answer; the model's context window is \(window)",
                provider: provider, estimatedTokens: fixed + reserve, contextWindow: window)
        }
        var used = fixed
        var kept: [Unit] = []
        for unit in history.reversed() {
            let cost = estimate(unit.messages)
            guard used + cost <= available else { break }
            used += cost
            kept.append(unit)
        }
        let total = history.reduce(current.chatMessages + unread) { $0 + $1.chatMessages }
        let keptCount = kept.reduce(current.chatMessages) { $0 + $1.chatMessages }
        var messages: [LLMMessage] = systemMessage.map { [$0] } ?? []
        for unit in kept.reversed() { messages += unit.messages }
        messages += current.messages
        return Built(
            messages: messages, report: AgentContextReport(keptMessages: keptCount, droppedMessages: total - keptCount, estimatedTokens: used))
    }

    // MARK: History

    /// The branch as units: each answer preceded by its stored tool-call turns (repaired, ids made
    /// unique in this request: `call_<answer>_<n>`).
    static func units(branch: [Message], steps: [String: [LLMMessage]]) -> [Unit] {
        var units: [Unit] = []
        var answerIndex = 0
        for message in branch {
            switch message.role {
            case .user: units.append(Unit(messages: [LLMMessage(role: .user, content: message.content)], chatMessages: 1))
            case .system: units.append(Unit(messages: [LLMMessage(role: .system, content: message.content)], chatMessages: 1))
            case .assistant:
                answerIndex += 1
                var messages = requestIDs(repair(steps[message.id] ?? []), prefix: "call_\(answerIndex)_")
                if !message.content.isEmpty || messages.isEmpty {
                    messages.append(LLMMessage(role: .assistant, content: message.content))
                }
                units.append(Unit(messages: messages, chatMessages: 1))
            }
        }
        return units
    }

    /// Every assistant tool call followed by one result each, in the calls' order: a missing result
    /// (a run interrupted between the call and its result) becomes `interruptedToolResult`; a result
    /// that answers no call is dropped. Any provider accepts the result.
    static func repair(_ steps: [LLMMessage]) -> [LLMMessage] {
        var repaired: [LLMMessage] = []
        var index = 0
        while index < steps.count {
            let message = steps[index]
            index += 1
            switch message.role {
            case .tool:
                continue  // not after its call: dropped
            case .assistant where !message.toolCalls.isEmpty:
                repaired.append(message)
                var results: [String: LLMMessage] = [:]
                while index < steps.count, steps[index].role == .tool {
                    if let id = steps[index].toolCallID, results[id] == nil { results[id] = steps[index] }
                    index += 1
                }
                for call in message.toolCalls {
                    repaired.append(results[call.id] ?? LLMMessage(role: .tool, content: interruptedToolResult, toolCallID: call.id))
                }
            default:
                repaired.append(message)
            }
        }
        return repaired
    }

    /// Tool-call ids as stored: `call_1`, `call_2`, … in order over the answer's turns, whatever the
    /// provider called them, so another provider (or model) can be given the history later.
    static func normalised(_ steps: [LLMMessage]) -> [LLMMessage] {
        renamed(steps) { n, _ in "call_\(n)" }
    }

    /// Stored ids mapped to ids unique in one request.
    static func requestIDs(_ steps: [LLMMessage], prefix: String) -> [LLMMessage] {
        renamed(steps) { n, _ in prefix + String(n) }
    }

    private static func renamed(_ steps: [LLMMessage], _ name: (Int, String) -> String) -> [LLMMessage] {
        var names: [String: String] = [:]
        var count = 0
        return steps.map { message in
            var message = message
            message.toolCalls = message.toolCalls.map { call in
                count += 1
                var call = call
                let new = name(count, call.id)
                names[call.id] = new
                call.id = new
                return call
            }
            if let id = message.toolCallID { message.toolCallID = names[id] ?? id }
            return message
        }
    }
}
