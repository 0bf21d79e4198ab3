import Foundation
import RPC

/// The `agent.*` methods (in every API version): answer a message with the configured model, streaming
/// `agent.delta` notifications to the calling connection; regenerate an answer; cancel a run; list
/// and read runs.
public enum Agent {
    /// How a run generates: shared by `agent.act` and `agent.regenerate`.
    public struct Options: Codable, Sendable, Equatable {
        /// The system prompt (rendered with `variables`); default: the prompt named
        /// `default.system` when the chat has a module, none otherwise.
        public var promptId: String?
        /// Values for the prompt's placeholders. The agent supplies `user`, `date` (YYYY-MM-DD,
        /// UTC), `module.title` and `module.content`; a value given here wins.
        public var variables: [String: String]?
        /// Default: the provider's configured model.
        public var model: String?
        /// 0-2.
        public var temperature: Double?
        /// 1-1,000,000; also what the context budget keeps free for the answer.
        public var maxTokens: Int?
        /// Offer the model a `web_search` tool (needs a Tavily key).
        public var webSearch: Bool?

        public init(
            promptId: String? = nil, variables: [String: String]? = nil, model: String? = nil, temperature: Double? = nil, maxTokens: Int? = nil,
            webSearch: Bool? = nil
        ) {
            self.promptId = promptId
            self.variables = variables
            self.model = model
            self.temperature = temperature
            self.maxTokens = maxTokens
            self.webSearch = webSearch
        }
    }

    public enum Act: RPCMethod {
        public static let name = "agent.act"
        public static let summary =
            "Answers message in a chat (created, titled from the message, when chatId is absent) with the configured model. The message is stored first, with its attachments (up to 16 of the caller's file ids) (after the active branch's last message; parentId puts it after that message, siblingOf next to that user message: an edit, a new branch). Context: the system prompt (promptId, else default.system for a chat with a module), the module's content and as much of the branch as fits the model's context window, newest kept. Streams agent.delta {runId, chatId, seq, text} notifications to this connection, stores the answer with its model, usage and timings, and returns it. webSearch offers the model a web_search tool (sources returned). Cancel with $/cancelRequest or agent.cancel: the partial answer is stored, and the call answers -32800. background: true answers at once {runId, jobId, chatId, messageId} (messageId: the question, stored) and the run goes on as an agent.run job, whatever happens to the connection or the daemon (after a crash it starts again from the beginning; agent.runs.get shows it, agent.cancel or jobs.cancel stops it); without it nothing changes."
        public static let rateClass: RPCRateClassName = .agent
        public struct Params: Codable, Sendable {
            public var chatId: String?
            /// For a new chat: the module it acts in.
            public var moduleId: String?
            /// At most 1 MiB of UTF-8, not blank.
            public var message: String
            public var parentId: String?
            public var siblingOf: String?
            public var promptId: String?
            public var variables: [String: String]?
            public var model: String?
            public var temperature: Double?
            public var maxTokens: Int?
            public var webSearch: Bool?
            /// Run as a job and answer at once with its ids (`AgentBackgroundRun`).
            public var background: Bool?
            /// Ids of the caller's files (at most 16, no duplicates), stored with the message; the agent reads them.
            public var attachments: [String]?

            public init(
                chatId: String? = nil, moduleId: String? = nil, message: String, parentId: String? = nil, siblingOf: String? = nil,
                promptId: String? = nil,
                variables: [String: String]? = nil, model: String? = nil, temperature: Double? = nil, maxTokens: Int? = nil, webSearch: Bool? = nil,
                background: Bool? = nil, attachments: [String]? = nil
            ) {
                self.background = background
                self.attachments = attachments
                self.chatId = chatId
                self.moduleId = moduleId
                self.message = message
                self.parentId = parentId
                self.siblingOf = siblingOf
                self.promptId = promptId
                self.variables = variables
                self.model = model
                self.temperature = temperature
                self.maxTokens = maxTokens
                self.webSearch = webSearch
            }

            public var options: Options {
                Options(promptId: promptId, variables: variables, model: model, temperature: temperature, maxTokens: maxTokens, webSearch: webSearch)
            }
        }
        public typealias Result = AgentActResult
        public static var timeout: Duration? { .seconds(900) }
        public static var errors: [RPCErrorDescription] {
            [AgentError.notFoundDescription, AgentError.cancelledDescription, AgentError.tooManyBackgroundRunsDescription] + LLMError.descriptions
        }
    }

    public enum Regenerate: RPCMethod {
        public static let name = "agent.regenerate"
        public static let summary =
            "Answers again: messageId is an assistant message (the new answer is its sibling, same question) or a user message (a new answer to it, e.g. after a failed run). The new answer's branch becomes active. With attachments, the question is stored again beside the original (same content, exactly these files: an edit) and that one is answered. Otherwise as agent.act (streaming, cancellation, result, background: true: messageId in the reply is the question)."
        public static let rateClass: RPCRateClassName = .agent
        public struct Params: Codable, Sendable {
            public var messageId: String
            public var promptId: String?
            public var variables: [String: String]?
            public var model: String?
            public var temperature: Double?
            public var maxTokens: Int?
            public var webSearch: Bool?
            /// Run as a job and answer at once with its ids (`AgentBackgroundRun`).
            public var background: Bool?
            /// When given (not empty): the question is asked again as a new user message beside the
            /// original (same content) carrying exactly these files, and that is what is answered.
            public var attachments: [String]?

            public init(
                messageId: String, promptId: String? = nil, variables: [String: String]? = nil, model: String? = nil, temperature: Double? = nil,
                maxTokens: Int? = nil, webSearch: Bool? = nil, background: Bool? = nil, attachments: [String]? = nil
            ) {
                self.background = background
                self.attachments = attachments
                self.messageId = messageId
                self.promptId = promptId
                self.variables = variables
                self.model = model
                self.temperature = temperature
                self.maxTokens = maxTokens
                self.webSearch = webSearch
            }

            public var options: Options {
                Options(promptId: promptId, variables: variables, model: model, temperature: temperature, maxTokens: maxTokens, webSearch: webSearch)
            }
        }
        public typealias Result = AgentActResult
        public static var timeout: Duration? { .seconds(900) }
        public static var errors: [RPCErrorDescription] {
            [AgentError.notFoundDescription, AgentError.cancelledDescription, AgentError.tooManyBackgroundRunsDescription] + LLMError.descriptions
        }
    }

    public enum Cancel: RPCMethod {
        public static let name = "agent.cancel"
        public static let summary =
            "Cancels one of the caller's runs, from any connection: the model stops at once, the partial answer is stored (finish reason cancelled) and the run's call answers -32800. Returns the run once its end is stored; a run that already ended is returned as it is."
        public static let rateClass: RPCRateClassName = .exempt
        public struct Params: Codable, Sendable {
            public var runId: String
            public init(runId: String) { self.runId = runId }
        }
        public typealias Result = AgentRun
        public static var errors: [RPCErrorDescription] { [AgentError.notFoundDescription] }
    }

    /// `agent.runs.*`.
    public enum Runs {
        public enum List: RPCMethod {
            public static let name = "agent.runs.list"
            public static let summary =
                "The caller's agent runs, newest first, optionally of one chat, a page at a time (limit 1-200, default 50): status, model, usage, timings, error."
            public static let rateClass: RPCRateClassName = .read
            public struct Params: Codable, Sendable {
                public var chatId: String?
                public var cursor: String?
                public var limit: Int?
                public init(chatId: String? = nil, cursor: String? = nil, limit: Int? = nil) {
                    self.chatId = chatId
                    self.cursor = cursor
                    self.limit = limit
                }
            }
            public typealias Result = KeysetPage<AgentRun>
        }

        public enum Get: RPCMethod {
            public static let name = "agent.runs.get"
            public static let summary =
                "One of the caller's agent runs: status, provider, model, finish reason, usage, context, timings, error; for a background run also jobId, attempt and partial (the text an attempt stopped by a restart had streamed, never an answer)."
            public static let rateClass: RPCRateClassName = .read
            public struct Params: Codable, Sendable {
                public var runId: String
                public init(runId: String) { self.runId = runId }
            }
            public typealias Result = AgentRun
            public static var errors: [RPCErrorDescription] { [AgentError.notFoundDescription] }
        }

        public enum Watch: RPCMethod {
            public static let name = "agent.runs.watch"
            public static let summary =
                "Follows one of the caller's runs from any connection (foreground or background, going on or ended): answers the text so far (after since, a delta seq of attempt already seen, when that attempt is still the run's; otherwise all of it), then sends the run's agent.delta notifications, then agent.run.ended {runId, status, messageId?, error?} (at once for a run that ended). When the reply's or a delta's attempt differs from the one the client holds, the run started again: drop the text held. A client that reads too slowly gets agent.watch.overflow {runId, attempt, seq}: watch again with since: seq, attempt: attempt. The watch ends with the run or the connection."
            public static let rateClass: RPCRateClassName = .read
            public struct Params: Codable, Sendable {
                public var runId: String
                /// The last delta seq the client has (0: none); absent: send all of the text.
                public var since: Int?
                /// The attempt `since` is of (default 1, a foreground run's only one).
                public var attempt: Int?
                public init(runId: String, since: Int? = nil, attempt: Int? = nil) {
                    self.runId = runId
                    self.since = since
                    self.attempt = attempt
                }
            }
            public typealias Result = AgentRunWatch
            public static var errors: [RPCErrorDescription] { [AgentError.notFoundDescription, AgentError.tooManyWatchesDescription] }
        }
    }

    /// A piece of a run's answer, sent to the connection that called `agent.act`/`agent.regenerate`
    /// before its reply; `seq` counts from 1 per run.
    public enum Delta: RPCNotification {
        public static let name = "agent.delta"
        public static let summary =
            "A piece of a run's answer text, in order (seq from 1 per attempt; attempt 1 unless a background run started again), sent to the calling connection before the reply, and to the run's watchers (agent.runs.watch)."
        public typealias Params = AgentDelta
    }

    /// The last message of an `agent.runs.watch`.
    public enum RunEnded: RPCNotification {
        public static let name = "agent.run.ended"
        public static let summary =
            "A watched run ended (agent.runs.watch): status, the answer's messageId when one was stored, error when it failed. The watch is over."
        public typealias Params = AgentRunEnded
    }

    /// An `agent.runs.watch` whose client read too slowly.
    public enum WatchOverflow: RPCNotification {
        public static let name = "agent.watch.overflow"
        public static let summary =
            "A watch ended because its client did not read its deltas: the last one written was seq of attempt (the reply's when none was). Watch again with since: seq, attempt: attempt to continue."
        public typealias Params = AgentWatchOverflow
    }
}
