import RPC

/// Registers the `files.*` methods: one line each into `FilesService`, all for a signed-in user.
public struct FilesRoutes: Sendable {
    let service: FilesService
    let auth: AuthService

    public init(service: FilesService, auth: AuthService) {
        self.service = service
        self.auth = auth
    }

    public func register(on router: inout RPCRouter) {
        let files = self.service
        router.onAuthenticated(Files.UploadBegin.self, using: auth) { params, context in try await files.beginUpload(params, userID: context.user.id)
        }
        router.onAuthenticated(Files.UploadChunk.self, using: auth) { params, context in try await files.appendChunk(params, userID: context.user.id)
        }
        router.onAuthenticated(Files.UploadStatus.self, using: auth) { params, context in
            try await files.uploadStatus(id: params.uploadId, userID: context.user.id)
        }
        router.onAuthenticated(Files.UploadCommit.self, using: auth) { params, context in
            try await files.commitUpload(id: params.uploadId, userID: context.user.id)
        }
        // The peer's uid, not the account's: a password login from another uid is not the daemon's user.
        router.onAuthenticated(Files.Import.self, using: auth) { params, context in
            try await files.importFile(params, userID: context.user.id, peerUID: context.request.connection.peer?.uid)
        }
        router.onAuthenticated(Files.Get.self, using: auth) { params, context in try await files.get(id: params.id, userID: context.user.id) }
        router.onAuthenticated(Files.Read.self, using: auth) { params, context in try await files.read(params, userID: context.user.id) }
        router.onAuthenticated(Files.List.self, using: auth) { params, context in try await files.list(params, userID: context.user.id) }
        router.onAuthenticated(Files.Delete.self, using: auth) { params, context in
            .init(deleted: try await files.delete(id: params.id, userID: context.user.id))
        }
    }
}
