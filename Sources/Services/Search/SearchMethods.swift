import RPC

/// The `search.*` methods: full-text search over the caller's modules, messages and files.
public enum Search {
    /// `search.query` from API version 2 (files included); version 1's is `QueryV1`.
    public enum Query: RPCMethod {
        public static let name = "search.query"
        public static let summary =
            "Full-text search over the caller's modules (title, description, content), chat messages and files (name, and the text extracted from PDFs and text files), best first. query: plain words (1-1000 characters), never syntax; all must match, without case or accents on Latin letters; the last word, from 2 characters, also matches words it begins. kinds: any of modules, messages, files (default all). limit: 1-100 (default 20). Snippets wrap each matched word in ⟦ and ⟧."
        public static let rateClass: RPCRateClassName = .expensive
        public struct Params: Codable, Sendable {
            public var query: String
            public var kinds: [SearchKind]?
            public var limit: Int?
            public init(query: String, kinds: [SearchKind]? = nil, limit: Int? = nil) {
                self.query = query
                self.kinds = kinds
                self.limit = limit
            }
        }
        public typealias Result = SearchService.Results
    }
}

extension SearchKind: RPCStringEnum {
    /// An unknown kind is `-32602` naming the element (`kinds[1]`) and the allowed values.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let kind = SearchKind(rawValue: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "expected one of \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = kind
    }
}

extension SearchHit.Kind: RPCStringEnum {}
