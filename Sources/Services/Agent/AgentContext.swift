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
        /// The files attached to the unit's user message, written after its text (`build` cuts
        /// their texts to fit).
        var parts: [AgentAttachments.Part] = []
    }

    struct Built: Equatable {
        var messages: [LLMMessage]
        var report: AgentContextReport
    }

    // MARK: Estimate

    /// About 4 bytes of UTF-8 per token, rounded up.
    static func estimate(_ text: String) -> Int { (text.utf8.count + 3) / 4 }

    static func estimate(_ message: LLMMessage) -> Int {
        var tokens = perMessageOverhead + estimate(message.content ?? "") + AgentAttachments.imageTokens * message.images.count
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

    /// The request's messages: `system` first (with the module's files after it), then the newest
    /// history units that fit, then `current` (the question, with its files). History is dropped
    /// oldest first, whole units at a time. `unread`: messages of the branch older than `history`
    /// that were not read (they could not fit), counted as dropped.
    ///
    /// Files: the question's and the module's texts share the room the system prompt, the question,
    /// the images and the answer's reserve leave, fairly (a short text is kept whole, the long ones
    /// cut to equal lengths); a history unit's texts are cut to an eighth of the window each. A cut
    /// text ends with a visible note, and the report lists it (`cutFiles`).
    ///
    /// - Throws: `LLMError.contextOverflow` (with the estimate and the window) when the system
    ///   prompt, the question, its files' headers and images and the answer's reserve do not fit
    ///   even without history and with no file text.
    static func build(
        system: String?, moduleFiles: [AgentAttachments.Part] = [], history: [Unit], current: Unit, window: Int, reserve: Int, tools: [LLMTool],
        provider: String, unread: Int = 0
    ) throws -> Built {
        let available = window - reserve
        // Only user messages take images: the module's go with the question.
        let isImage: (AgentAttachments.Part) -> Bool = { if case .image = $0.body { true } else { false } }
        var current = current
        current.parts += moduleFiles.filter(isImage)
        let moduleFiles = moduleFiles.filter { !isImage($0) }
        let firstParts = current.parts + moduleFiles
        // Everything but the first files' texts, each text cut to nothing (its note at its longest).
        func systemMessage(kept: [Int]) -> LLMMessage? {
            guard system != nil || !moduleFiles.isEmpty else { return nil }
            var message = LLMMessage(role: .system, content: system)
            if !moduleFiles.isEmpty {
                message = AgentAttachments.message(message, parts: moduleFiles, kept: kept, intro: AgentAttachments.moduleIntro)
            }
            return message
        }
        func question(kept: [Int]) -> [LLMMessage] { attach(current.parts, kept: kept, to: current.messages) }
        let none = firstParts.map { _ in 0 }
        let slack = firstParts.reduce(0) { $0 + (AgentAttachments.overhead($1) - AgentAttachments.render($1, kept: 0).utf8.count) }
        let fixedMessages =
            (systemMessage(kept: Array(none[current.parts.count...])).map { [$0] } ?? []) + question(kept: Array(none[..<current.parts.count]))
        let fixed = estimate(fixedMessages) + estimate(tools: tools) + (slack + 3) / 4
        guard fixed <= available else {
            throw LLMError(
                .contextOverflow,
                "the message, system prompt, module and attached files need about \(fixed) tokens and \(reserve) are kept for the answer; the model's context window is \(window)",
                provider: provider, estimatedTokens: fixed + reserve, contextWindow: window)
        }
        // Bytes of text that fit in the tokens left: 4 a token, less one token of rounding a message.
        let room = max(0, 4 * (available - fixed) - 4 * (fixedMessages.count + 1))
        let kept = share(room, among: firstParts.map(\.textBytes))
        let systemMessage = systemMessage(kept: Array(kept[current.parts.count...]))
        let currentMessages = question(kept: Array(kept[..<current.parts.count]))
        var used = (systemMessage.map(estimate) ?? 0) + estimate(currentMessages) + estimate(tools: tools)
        var cuts = Self.cuts(firstParts, kept: kept)

        let historyCap = max(1024, 4 * available / 8)
        var keptUnits: [(messages: [LLMMessage], unit: Unit, cuts: [AgentContextCut])] = []
        for unit in history.reversed() {
            let unitKept = unit.parts.map { min($0.textBytes, historyCap) }
            let messages = attach(unit.parts, kept: unitKept, to: unit.messages)
            let cost = estimate(messages)
            guard used + cost <= available else { break }
            used += cost
            keptUnits.append((messages, unit, Self.cuts(unit.parts, kept: unitKept)))
        }
        let total = history.reduce(current.chatMessages + unread) { $0 + $1.chatMessages }
        let keptCount = keptUnits.reduce(current.chatMessages) { $0 + $1.unit.chatMessages }
        var messages: [LLMMessage] = systemMessage.map { [$0] } ?? []
        for entry in keptUnits.reversed() {
            messages += entry.messages
            cuts += entry.cuts
        }
        messages += currentMessages
        return Built(
            messages: messages,
            report: AgentContextReport(
                keptMessages: keptCount, droppedMessages: total - keptCount, estimatedTokens: used, cutFiles: cuts.isEmpty ? nil : cuts))
    }

    /// `room` bytes shared among texts of `sizes` bytes, fairly: the smallest first, each kept whole
    /// when it fits its equal share of what is left, else cut to that share.
    static func share(_ room: Int, among sizes: [Int]) -> [Int] {
        var kept = sizes.map { _ in 0 }
        var left = max(0, room)
        let order = sizes.indices.filter { sizes[$0] > 0 }.sorted { sizes[$0] < sizes[$1] }
        for (position, index) in order.enumerated() {
            let fair = left / (order.count - position)
            kept[index] = min(sizes[index], fair)
            left -= kept[index]
        }
        return kept
    }

    /// The unit's user message (its last one) with `parts` written after its text.
    private static func attach(_ parts: [AgentAttachments.Part], kept: [Int], to messages: [LLMMessage]) -> [LLMMessage] {
        guard !parts.isEmpty, let last = messages.indices.last else { return messages }
        var messages = messages
        messages[last] = AgentAttachments.message(messages[last], parts: parts, kept: kept, intro: AgentAttachments.messageIntro(parts.count))
        return messages
    }

    private static func cuts(_ parts: [AgentAttachments.Part], kept: [Int]) -> [AgentContextCut] {
        zip(parts, kept).compactMap { part, kept in
            guard case .text = part.body else { return nil }
            let shown = Int64(AgentAttachments.utf8Prefix(partText(part), bytes: kept).utf8.count)
            guard shown < part.reportedSize else { return nil }
            return AgentContextCut(fileId: part.file.id, name: part.file.name, keptBytes: shown, size: part.reportedSize)
        }
    }

    private static func partText(_ part: AgentAttachments.Part) -> String {
        if case .text(let text) = part.body { return text }
        return ""
    }

    // MARK: History

    /// The branch as units: each answer preceded by its stored tool-call turns (repaired, ids made
    /// unique in this request: `call_<answer>_<n>`).
    /// `parts`: the files of the branch's user messages, by message id.
    static func units(branch: [Message], steps: [String: [LLMMessage]], parts: [String: [AgentAttachments.Part]] = [:]) -> [Unit] {
        var units: [Unit] = []
        var answerIndex = 0
        for message in branch {
            switch message.role {
            case .user:
                units.append(Unit(messages: [LLMMessage(role: .user, content: message.content)], chatMessages: 1, parts: parts[message.id] ?? []))
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
