import Foundation
import RPC

/// The `modules.*` methods: the caller's modules.
public enum Modules {
    /// The result-cache tag of one module (`module:<id>`, `RPCCacheRule.tag`): `modules.get` is
    /// filed under it, and `ModuleUpdated` and `ModuleDeleted` make it stale.
    public static let cacheTag = "module"

    public enum Create: RPCMethod {
        public static let name = "modules.create"
        public static let summary = "Creates a module (title: 1-200 characters; content: at most 1 MiB; tags: at most 32 of 1-64 characters)."
        public static let rateClass: RPCRateClassName = .write
        public struct Params: Codable, Sendable {
            public var title: String
            public var description: String?
            public var content: String?
            public var tags: [String]?
            public init(title: String, description: String? = nil, content: String? = nil, tags: [String]? = nil) {
                self.title = title
                self.description = description
                self.content = content
                self.tags = tags
            }
        }
        public typealias Result = Module
    }

    public enum Get: RPCMethod {
        public static let name = "modules.get"
        public static let summary = "One of the caller's modules, with its files (metadata) when it has some."
        public static let rateClass: RPCRateClassName = .read
        public static let cacheRule: RPCCacheRule? = .byID(tag: Modules.cacheTag)
        public struct Params: Codable, Sendable {
            public var id: String
            public init(id: String) { self.id = id }
        }
        public typealias Result = Module
        public static var errors: [RPCErrorDescription] { [ModulesError.notFoundDescription] }
    }

    public enum Update: RPCMethod {
        public static let name = "modules.update"
        public static let summary =
            "Changes the given fields of one of the caller's modules; absent fields stay as they are (tags, when given, replace all tags)."
        public static let rateClass: RPCRateClassName = .write
        public struct Params: Codable, Sendable {
            public var id: String
            public var title: String?
            public var description: String?
            public var content: String?
            public var tags: [String]?
            public init(id: String, title: String? = nil, description: String? = nil, content: String? = nil, tags: [String]? = nil) {
                self.id = id
                self.title = title
                self.description = description
                self.content = content
                self.tags = tags
            }
        }
        public typealias Result = Module
        public static var errors: [RPCErrorDescription] { [ModulesError.notFoundDescription] }
    }

    public enum Delete: RPCMethod {
        public static let name = "modules.delete"
        public static let summary = "Deletes one of the caller's modules."
        public static let rateClass: RPCRateClassName = .write
        public struct Params: Codable, Sendable {
            public var id: String
            public init(id: String) { self.id = id }
        }
        public struct Result: Codable, Sendable, Equatable {
            public var deleted: Bool
            public init(deleted: Bool) { self.deleted = deleted }
        }
        public static var errors: [RPCErrorDescription] { [ModulesError.notFoundDescription] }
    }

    /// `modules.files.*`: the files a module holds (the agent reads them with its content).
    public enum Files {
        public enum Add: RPCMethod {
            public static let name = "modules.files.add"
            public static let summary =
                "Adds one of the caller's files to a module (at most 32 per module; adding one already there changes nothing). Returns the module, with its files."
            public static let rateClass: RPCRateClassName = .write
            public typealias Params = FileParams
            public typealias Result = Module
            public static var errors: [RPCErrorDescription] { [ModulesError.moduleOrFileNotFoundDescription] }
        }

        public enum Remove: RPCMethod {
            public static let name = "modules.files.remove"
            public static let summary = "Takes a file out of a module (the file itself stays). Returns the module, with its files."
            public static let rateClass: RPCRateClassName = .write
            public typealias Params = FileParams
            public typealias Result = Module
            public static var errors: [RPCErrorDescription] { [ModulesError.moduleOrFileNotFoundDescription] }
        }

        public struct FileParams: Codable, Sendable {
            public var moduleId: String
            public var fileId: String
            public init(moduleId: String, fileId: String) {
                self.moduleId = moduleId
                self.fileId = fileId
            }
        }
    }

    public enum List: RPCMethod {
        public static let name = "modules.list"
        public static let summary =
            "The caller's modules, newest first, a page at a time (limit 1-200, default 50): pass nextCursor back as cursor for the next page. tag filters exactly; query matches title or description, without case."
        public static let rateClass: RPCRateClassName = .read
        public struct Params: Codable, Sendable {
            public var cursor: String?
            public var limit: Int?
            public var tag: String?
            public var query: String?
            public init(cursor: String? = nil, limit: Int? = nil, tag: String? = nil, query: String? = nil) {
                self.cursor = cursor
                self.limit = limit
                self.tag = tag
                self.query = query
            }
        }
        public typealias Result = ModulesService.Page
    }
}
