import RPC

/// The `audit.*` methods: the caller's audit log.
public enum Audit {
    public enum List: RPCMethod {
        public static let name = "audit.list"
        public static let summary =
            "The caller's audit log, newest first, a page at a time (limit 1-200, default 50): logins (also failed ones), logouts, password changes, refused sessions; accounts created, modules, chats and prompts deleted, prompts changed."
        public static let rateClass: RPCRateClassName = .read
        public struct Params: Codable, Sendable {
            public var cursor: String?
            public var limit: Int?
            public init(cursor: String? = nil, limit: Int? = nil) {
                self.cursor = cursor
                self.limit = limit
            }
        }
        public typealias Result = KeysetPage<AuditRecord>
    }

    /// Version 2: each entry has its `count` (failures alike within a minute share one entry).
    public enum ListV2: RPCMethod {
        public static let name = "audit.list"
        public static let summary =
            "The caller's audit log, newest first, a page at a time (limit 1-200, default 50): logins (also failed ones), logouts, password changes, refused sessions; accounts created, modules, chats and prompts deleted, prompts changed. Failures alike within one minute share an entry: count says how many calls it stands for."
        public static let rateClass: RPCRateClassName = .read
        public typealias Params = List.Params
        public typealias Result = KeysetPage<AuditEntry>
    }
}
