/// Events of the modules domain.
public enum ModulesEvents {
    public struct ModuleCreated: DomainEvent, Equatable {
        public static let name = "module.created"
        public var userID: String
        public var module: Module

        public init(userID: String, module: Module) {
            self.userID = userID
            self.module = module
        }
    }

    public struct ModuleUpdated: DomainEvent, Equatable {
        public static let name = "module.updated"
        public var userID: String
        public var module: Module

        public init(userID: String, module: Module) {
            self.userID = userID
            self.module = module
        }
    }

    public struct ModuleDeleted: DomainEvent, Equatable {
        public static let name = "module.deleted"
        public var userID: String
        public var id: String

        public init(userID: String, id: String) {
            self.userID = userID
            self.id = id
        }
    }
}
