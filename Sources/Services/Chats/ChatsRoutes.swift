import RPC

/// Registers the `chats.*` methods: one line each into `ChatsService`, all for a signed-in user.
public struct ChatsRoutes: Sendable {
    let service: ChatsService
    let auth: AuthService

    public init(service: ChatsService, auth: AuthService) {
        self.service = service
        self.auth = auth
    }

    public func register(on router: inout RPCRouter) {
        let chats = self.service
        router.onAuthenticated(Chats.Create.self, using: auth) { params, context in try await chats.create(params, userID: context.user.id) }
        router.onAuthenticated(Chats.Get.self, using: auth) { params, context in try await chats.get(id: params.id, userID: context.user.id) }
        router.onAuthenticated(Chats.List.self, in: .until("1"), using: auth) { params, context in
            try await chats.list(params, userID: context.user.id)
        }
        router.onAuthenticated(Chats.ListV2.self, in: .from("2"), using: auth) { params, context in
            try await chats.listWithModules(params, userID: context.user.id)
        }
        router.onAuthenticated(Chats.Rename.self, using: auth) { params, context in try await chats.rename(params, userID: context.user.id) }
        router.onAuthenticated(Chats.Delete.self, using: auth) { params, context in
            .init(deleted: try await chats.delete(id: params.id, userID: context.user.id))
        }
        router.onAuthenticated(Chats.Fork.self, using: auth) { params, context in try await chats.fork(params, userID: context.user.id) }
        router.onAuthenticated(Chats.Export.self, using: auth) { params, context in try await chats.export(params, userID: context.user.id) }
        router.onAuthenticated(Chats.Messages.List.self, using: auth) { params, context in try await chats.messages(params, userID: context.user.id) }
        router.onAuthenticated(Chats.Messages.Get.self, in: .until("1"), using: auth) { params, context in
            try await chats.message(id: params.id, userID: context.user.id)
        }
        router.onAuthenticated(Chats.Messages.GetV2.self, in: .from("2"), using: auth) { params, context in
            try await chats.messageDetail(id: params.id, userID: context.user.id)
        }
        router.onAuthenticated(Chats.Messages.Append.self, using: auth) { params, context in try await chats.append(params, userID: context.user.id) }
        router.onAuthenticated(Chats.Branches.Select.self, using: auth) { params, context in
            try await chats.selectBranch(messageID: params.messageId, userID: context.user.id)
        }
    }
}
