import Foundation
import RPC

/// One entry of a user's audit log: an audited event, as it was recorded.
public struct AuditRecord: Codable, Sendable, Equatable {
    /// The event's seq (also the entry's position in the log).
    public var seq: Int64
    /// The event's topic (`chat.deleted`).
    public var action: String
    public var occurredAt: Date
    /// The event's data.
    public var data: JSONFragment

    public init(seq: Int64, action: String, occurredAt: Date, data: JSONFragment) {
        self.seq = seq
        self.action = action
        self.occurredAt = occurredAt
        self.data = data
    }
}
