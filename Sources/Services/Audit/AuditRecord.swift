import Foundation
import RPC

/// One entry of a user's audit log: an audited event (a deletion, a new account, …) or a
/// security-relevant call (a login, a logout, a password change, a refused token).
public struct AuditRecord: Codable, Sendable, Equatable {
    /// The entry's position in the log (the `audit.list` cursor).
    public var id: Int64
    /// The event's topic (`chat.deleted`) or the call's method (`auth.login`).
    public var action: String
    /// `ok`, or the error code the call was refused with (`error -32021`).
    public var outcome: String
    public var occurredAt: Date
    /// The peer uid of the connection that made the call, for calls.
    public var uid: UInt32?
    /// The event's seq, for events.
    public var eventSeq: Int64?
    /// The event's data; for calls, what identifies them (`{"username": …}` for a login).
    public var data: JSONFragment
    /// How many calls the entry stands for: failures alike within one minute share an entry
    /// (`occurredAt` is the first); 1 otherwise. Not in version 1's JSON (its published contract);
    /// version 2's `audit.list` answers it (`AuditEntry`).
    public var count: Int = 1

    enum CodingKeys: String, CodingKey { case id, action, outcome, occurredAt, uid, eventSeq, data }

    public init(id: Int64, action: String, outcome: String, occurredAt: Date, uid: UInt32?, eventSeq: Int64?, data: JSONFragment, count: Int = 1) {
        self.id = id
        self.action = action
        self.outcome = outcome
        self.occurredAt = occurredAt
        self.uid = uid
        self.eventSeq = eventSeq
        self.data = data
        self.count = count
    }
}

/// An entry of `audit.list` from version 2 on: an `AuditRecord` with its `count`.
public struct AuditEntry: Codable, Sendable, Equatable {
    public var id: Int64
    public var action: String
    public var outcome: String
    public var occurredAt: Date
    public var uid: UInt32?
    public var eventSeq: Int64?
    public var data: JSONFragment
    /// How many calls the entry stands for: failures alike within one minute share an entry
    /// (`occurredAt` is the first one's); 1 otherwise.
    public var count: Int

    public init(_ record: AuditRecord) {
        id = record.id
        action = record.action
        outcome = record.outcome
        occurredAt = record.occurredAt
        uid = record.uid
        eventSeq = record.eventSeq
        data = record.data
        count = record.count
    }
}

/// A security-relevant call to record (`AuditStore.record(call:)`).
public struct AuditedCall: Sendable, Equatable {
    /// Who it concerned; nil when no known user (an unknown token or username, an untrusted uid).
    public var userID: String?
    public var uid: UInt32?
    public var action: String
    public var outcome: String
    public var occurredAt: Date
    public var data: JSONFragment
    /// What a failure was about, beside its action: a login's username without case, a refused
    /// call's method. Failures alike (`coalesceKey`) share one entry.
    public var subject: String

    public init(userID: String?, uid: UInt32?, action: String, outcome: String, occurredAt: Date, data: JSONFragment, subject: String) {
        self.userID = userID
        self.uid = uid
        self.action = action
        self.outcome = outcome
        self.occurredAt = occurredAt
        self.data = data
        self.subject = subject
    }

    /// Calls with the same key share one entry and add to its count: failed calls alike (same
    /// action, outcome, uid, user and subject) in the same minute, so that a flood of refusals costs
    /// one row per minute. nil for a call that succeeded, which is always an entry of its own.
    public var coalesceKey: String? {
        guard outcome != "ok" else { return nil }
        let minute = Int64((occurredAt.timeIntervalSince1970 / 60).rounded(.down))
        return "\(minute)|\(action)|\(outcome)|\(uid.map(String.init) ?? "")|\(userID ?? "")|\(subject)"
    }
}
