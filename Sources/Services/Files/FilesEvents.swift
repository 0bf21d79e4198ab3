import RPC

/// Events of the files domain. They carry what a client lists files by, never the content's hash
/// (another user could match it against their own files).
public enum FilesEvents {
    public struct FileCreated: DomainEvent, Equatable {
        public static let topic = "file.created"
        public var userID: String
        public var fileId: String
        public var name: String
        public var mediaType: String
        public var size: Int64

        public init(userID: String, file: FileMetadata) {
            self.userID = userID
            self.fileId = file.id
            self.name = file.name
            self.mediaType = file.mediaType
            self.size = file.size
        }

        enum CodingKeys: String, CodingKey { case fileId, name, mediaType, size }
    }

    public struct FileDeleted: DomainEvent, Equatable {
        public static let topic = "file.deleted"
        public var userID: String
        public var fileId: String

        public init(userID: String, fileId: String) {
            self.userID = userID
            self.fileId = fileId
        }

        enum CodingKeys: String, CodingKey { case fileId }

        public static func staleCacheTags(of event: Event) -> [String] {
            (try? event.data.decode(Payload.self)).map { [RPCCacheRule.tag(Files.cacheTag, id: $0.fileId)] } ?? []
        }

        private struct Payload: Decodable { var fileId: String }
    }

    public static let all: [any DomainEvent.Type] = [FileCreated.self, FileDeleted.self]
}
