import RPC

/// Events of the modules domain.
public enum ModulesEvents {
    public struct ModuleCreated: DomainEvent, Equatable {
        public static let topic = "module.created"
        public var userID: String
        public var moduleId: String
        public var title: String
        public var tags: [String]
        public var moduleID: String? { moduleId }

        public init(userID: String, module: Module) {
            self.userID = userID
            self.moduleId = module.id
            self.title = module.title
            self.tags = module.tags
        }

        enum CodingKeys: String, CodingKey { case moduleId, title, tags }
    }

    public struct ModuleUpdated: DomainEvent, Equatable {
        public static let topic = "module.updated"
        public var userID: String
        public var moduleId: String
        /// The fields the update was given (`title`, `description`, `content`, `tags`), sorted;
        /// `["files"]` for `modules.files.add|remove`.
        public var fields: [String]
        public var moduleID: String? { moduleId }

        public init(userID: String, moduleId: String, fields: [String]) {
            self.userID = userID
            self.moduleId = moduleId
            self.fields = fields.sorted()
        }

        enum CodingKeys: String, CodingKey { case moduleId, fields }

        public static func staleCacheTags(of event: Event) -> [String] {
            event.moduleID.map { [RPCCacheRule.tag(Modules.cacheTag, id: $0)] } ?? []
        }
    }

    public struct ModuleDeleted: DomainEvent, Equatable {
        public static let topic = "module.deleted"
        public var userID: String
        public var moduleId: String
        public var moduleID: String? { moduleId }

        public init(userID: String, moduleId: String) {
            self.userID = userID
            self.moduleId = moduleId
        }

        enum CodingKeys: String, CodingKey { case moduleId }

        public static func staleCacheTags(of event: Event) -> [String] {
            event.moduleID.map { [RPCCacheRule.tag(Modules.cacheTag, id: $0)] } ?? []
        }
    }

    public static let all: [any DomainEvent.Type] = [ModuleCreated.self, ModuleUpdated.self, ModuleDeleted.self]
}
