import RPC

extension Search {
    /// `search.query` as API version 1 published it: modules and messages only. Files (kind
    /// `files`, hits of kind `file` with a `mediaType`) came with version 2 (`Search.Query`): a
    /// version-1 client never sees a kind it does not know.
    public enum QueryV1: RPCMethod {
        public static let name = "search.query"
        public static let summary =
            "Full-text search over the caller's modules (title, description, content) and chat messages, best first. query: plain words (1-1000 characters), never syntax; all must match, without case or accents on Latin letters; the last word, from 2 characters, also matches words it begins. kinds: modules and/or messages (default both); files from API version 2. limit: 1-100 (default 20). Snippets wrap each matched word in ⟦ and ⟧."
        public static let rateClass: RPCRateClassName = .expensive
        public struct Params: Codable, Sendable {
            public var query: String
            public var kinds: [Kind]?
            public var limit: Int?
            public init(query: String, kinds: [Kind]? = nil, limit: Int? = nil) {
                self.query = query
                self.kinds = kinds
                self.limit = limit
            }
        }

        public enum Kind: String, Sendable, CaseIterable, RPCStringEnum {
            case modules
            case messages

            /// An unknown kind is `-32602` naming the element (`kinds[1]`), as in version 2.
            public init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                let text = try container.decode(String.self)
                guard let kind = Kind(rawValue: text) else {
                    throw DecodingError.dataCorruptedError(
                        in: container, debugDescription: "expected one of \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                self = kind
            }

            var current: SearchKind {
                switch self {
                case .modules: .modules
                case .messages: .messages
                }
            }
        }

        public struct Result: Codable, Sendable, Equatable {
            public var items: [Hit]
            public init(items: [Hit]) { self.items = items }
        }

        /// `SearchHit` without files.
        public struct Hit: Codable, Sendable, Equatable {
            public enum Kind: String, Codable, Sendable, CaseIterable, RPCStringEnum {
                case module
                case message
            }

            public var kind: Kind
            public var id: String
            public var chatId: String?
            public var moduleId: String?
            public var role: String?
            public var title: String
            public var snippet: String

            public init(kind: Kind, id: String, chatId: String? = nil, moduleId: String? = nil, role: String? = nil, title: String, snippet: String) {
                self.kind = kind
                self.id = id
                self.chatId = chatId
                self.moduleId = moduleId
                self.role = role
                self.title = title
                self.snippet = snippet
            }
        }
    }
}

extension SearchService {
    /// `search.query` in API version 1: `query(_:userID:)` over modules and messages only (the
    /// default, as version 1 had it), its hits without what version 2 added.
    public func queryV1(_ params: Search.QueryV1.Params, userID: String) async throws -> Search.QueryV1.Result {
        let kinds = (params.kinds ?? Search.QueryV1.Kind.allCases).map(\.current)
        let results = try await query(Search.Query.Params(query: params.query, kinds: kinds, limit: params.limit), userID: userID)
        return Search.QueryV1.Result(
            items: results.items.compactMap { hit in
                let kind: Search.QueryV1.Hit.Kind
                switch hit.kind {
                case .module: kind = .module
                case .message: kind = .message
                case .file: return nil
                }
                return Search.QueryV1.Hit(
                    kind: kind, id: hit.id, chatId: hit.chatId, moduleId: hit.moduleId, role: hit.role, title: hit.title, snippet: hit.snippet)
            })
    }
}
