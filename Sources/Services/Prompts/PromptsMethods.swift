import Foundation
import RPC

/// The `prompts.*` methods: the caller's prompts, and the built-in ones every user may read.
public enum Prompts {
    /// The result-cache tag of one prompt (`prompt:<id>`, `RPCCacheRule.tag`): `prompts.get` and
    /// `prompts.render` are filed under it, and `PromptUpdated` and `PromptDeleted` make it stale.
    public static let cacheTag = "prompt"

    public enum Create: RPCMethod {
        public static let name = "prompts.create"
        public static let summary =
            "Creates a prompt at version 1 (name: 1-100 characters, unique per user; body: a template with {{variable}} placeholders, at most 256 KiB; variables: at most 64 names, derived from the body when absent)."
        public static let rateClass: RPCRateClassName = .write
        public struct Params: Codable, Sendable {
            public var name: String
            public var description: String?
            public var body: String
            public var variables: [String]?
            public init(name: String, description: String? = nil, body: String, variables: [String]? = nil) {
                self.name = name
                self.description = description
                self.body = body
                self.variables = variables
            }
        }
        public typealias Result = Prompt
    }

    public enum Get: RPCMethod {
        public static let name = "prompts.get"
        public static let summary = "One of the caller's prompts or a built-in one, at its latest version or at the given one."
        public static let rateClass: RPCRateClassName = .read
        public static let cacheRule: RPCCacheRule? = .byID(tag: Prompts.cacheTag)
        public struct Params: Codable, Sendable {
            public var id: String
            public var version: Int?
            public init(id: String, version: Int? = nil) {
                self.id = id
                self.version = version
            }
        }
        public typealias Result = Prompt
        public static var errors: [RPCErrorDescription] { [PromptsError.notFoundDescription] }
    }

    public enum Update: RPCMethod {
        public static let name = "prompts.update"
        public static let summary =
            "Changes the given fields of one of the caller's prompts; a new body or variables make the next version (variables are derived from the body when absent), old versions stay readable. Built-in prompts are read-only."
        public static let rateClass: RPCRateClassName = .write
        public struct Params: Codable, Sendable {
            public var id: String
            public var name: String?
            public var description: String?
            public var body: String?
            public var variables: [String]?
            public init(id: String, name: String? = nil, description: String? = nil, body: String? = nil, variables: [String]? = nil) {
                self.id = id
                self.name = name
                self.description = description
                self.body = body
                self.variables = variables
            }
        }
        public typealias Result = Prompt
        public static var errors: [RPCErrorDescription] { [PromptsError.notFoundDescription] }
    }

    public enum Delete: RPCMethod {
        public static let name = "prompts.delete"
        public static let summary = "Deletes one of the caller's prompts with all its versions. Built-in prompts are read-only."
        public static let rateClass: RPCRateClassName = .write
        public struct Params: Codable, Sendable {
            public var id: String
            public init(id: String) { self.id = id }
        }
        public struct Result: Codable, Sendable, Equatable {
            public var deleted: Bool
            public init(deleted: Bool) { self.deleted = deleted }
        }
        public static var errors: [RPCErrorDescription] { [PromptsError.notFoundDescription] }
    }

    public enum List: RPCMethod {
        public static let name = "prompts.list"
        public static let summary =
            "The caller's prompts and the built-in ones (builtIn: true), newest first, at their latest version, a page at a time (limit 1-200, default 50): pass nextCursor back as cursor for the next page."
        public static let rateClass: RPCRateClassName = .read
        public struct Params: Codable, Sendable {
            public var cursor: String?
            public var limit: Int?
            public init(cursor: String? = nil, limit: Int? = nil) {
                self.cursor = cursor
                self.limit = limit
            }
        }
        public typealias Result = PromptsService.Page
    }

    public enum Versions: RPCMethod {
        public static let name = "prompts.versions"
        public static let summary =
            "Every version of one of the caller's prompts or a built-in one, oldest first, without bodies (prompts.get with version has them)."
        public static let rateClass: RPCRateClassName = .read
        public struct Params: Codable, Sendable {
            public var id: String
            public init(id: String) { self.id = id }
        }
        public typealias Result = PromptsService.VersionList
        public static var errors: [RPCErrorDescription] { [PromptsError.notFoundDescription] }
    }

    public enum Render: RPCMethod {
        public static let name = "prompts.render"
        public static let summary =
            "The prompt's body (latest version, or the given one) with each {{variable}} replaced by its value, inserted as is (never expanded again). A placeholder without a value is -32602 with field variables.NAME; values the body does not use are ignored and listed in unused."
        public static let rateClass: RPCRateClassName = .read
        public static let cacheRule: RPCCacheRule? = .byID(tag: Prompts.cacheTag)
        public struct Params: Codable, Sendable {
            public var id: String
            public var version: Int?
            /// Name → value.
            public var variables: [String: String]?
            public init(id: String, version: Int? = nil, variables: [String: String]? = nil) {
                self.id = id
                self.version = version
                self.variables = variables
            }
        }
        public typealias Result = PromptsService.Rendered
        public static var errors: [RPCErrorDescription] { [PromptsError.notFoundDescription] }
    }
}
