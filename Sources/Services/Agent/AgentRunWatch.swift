import Foundation
import RPC

/// What `agent.runs.watch` answers: the run's answer so far, from where the client stands.
///
/// A client keeps `(attempt, seq, text)`. For this reply and for every `agent.delta` after it: when
/// its `attempt` differs from the one kept, the kept text is dropped (the run started again from
/// the beginning); then its `text` is appended and its `attempt` and `seq` kept. It reads until
/// `agent.run.ended` (also sent at once for a run that already ended), or `agent.watch.overflow`
/// (then it watches again with `since: seq, attempt: attempt`).
public struct AgentRunWatch: Codable, Sendable, Equatable {
    public var runId: String
    public var chatId: String
    /// When the reply was made: `running`, or how the run ended (`agent.run.ended` follows).
    public var status: AgentRunStatus
    /// The attempt the text belongs to: 1, more when a background run was started again.
    public var attempt: Int
    /// The last delta the text reaches (0: none); the next live delta is `seq + 1`.
    public var seq: Int
    /// The answer after `since` when `since` is of this attempt, otherwise all of it so far.
    public var text: String

    public init(runId: String, chatId: String, status: AgentRunStatus, attempt: Int, seq: Int, text: String) {
        self.runId = runId
        self.chatId = chatId
        self.status = status
        self.attempt = attempt
        self.seq = seq
        self.text = text
    }
}

/// `agent.run.ended`: the last message of a watch.
public struct AgentRunEnded: Codable, Sendable, Equatable {
    public var runId: String
    public var status: AgentRunStatus
    /// The answer (or the partial answer of a cancelled run), when one was stored.
    public var messageId: String?
    /// Why it failed.
    public var error: LLMErrorSummary?

    public init(runId: String, status: AgentRunStatus, messageId: String? = nil, error: LLMErrorSummary? = nil) {
        self.runId = runId
        self.status = status
        self.messageId = messageId
        self.error = error
    }
}

/// `agent.watch.overflow`: the watch's client read too slowly and the watch ended after delta `seq`
/// of `attempt` (the reply's when no delta was written); watching again with those continues.
public struct AgentWatchOverflow: Codable, Sendable, Equatable {
    public var runId: String
    public var attempt: Int
    public var seq: Int

    public init(runId: String, attempt: Int, seq: Int) {
        self.runId = runId
        self.attempt = attempt
        self.seq = seq
    }
}

/// A run's answer so far as stored (`agent_runs.partial_*`), or as a run's stream holds it.
public struct AgentRunPartial: Sendable, Equatable {
    public var runID: String
    public var attempt: Int
    /// The last delta `text` reaches.
    public var seq: Int
    public var text: String
    /// Where each delta ends in `text` (UTF-8 bytes): `ends[n - 1]` for seq n; `seq` of them.
    public var ends: [Int]

    public init(runID: String, attempt: Int, seq: Int, text: String, ends: [Int]) {
        self.runID = runID
        self.attempt = attempt
        self.seq = seq
        self.text = text
        self.ends = ends
    }

    /// The deltas' lengths as stored: one unsigned LEB128 varint each (a byte for a delta shorter
    /// than 128 bytes, which most are), so that the text can be cut at any seq.
    public var encodedLengths: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ends.count)
        var previous = 0
        for end in ends {
            var length = UInt(end - previous)
            previous = end
            while length >= 0x80 {
                bytes.append(UInt8(length & 0x7F) | 0x80)
                length >>= 7
            }
            bytes.append(UInt8(length))
        }
        return bytes
    }

    /// `ends` from `encodedLengths`; nil when the bytes are not a whole list of varints.
    public static func ends(decoding bytes: some Sequence<UInt8>) -> [Int]? {
        var ends: [Int] = []
        var end = 0
        var length = 0
        var shift = 0
        for byte in bytes {
            guard shift < 56 else { return nil }
            length |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                end += length
                ends.append(end)
                length = 0
                shift = 0
            } else {
                shift += 7
            }
        }
        return shift == 0 ? ends : nil
    }

    /// What a client that saw up to `since` of attempt `sinceAttempt` is missing: the text after
    /// `since` when it is of this attempt, otherwise (or without `since`) all of it.
    func catchUp(since: Int?, sinceAttempt: Int) -> (seq: Int, text: String) {
        guard let since, sinceAttempt == attempt else { return (seq, text) }
        // The client has all there is (or more than was stored: the rest comes from a new attempt).
        guard since < seq, since <= ends.count else { return (seq, "") }
        let offset = since == 0 ? 0 : ends[since - 1]
        return (seq, String(decoding: text.utf8.dropFirst(offset), as: UTF8.self))
    }
}

/// Where a run's partial answer is stored (`AgentStore` refines it; `SQLiteAgentStore` on
/// `agent_runs`).
public protocol AgentPartialStore: Sendable {
    /// Stores `partial` on its run. `final`: the run's end is stored already: written whatever the
    /// run's status, and the text only when the run stored no answer message (that message holds
    /// it); otherwise written only while the run is `running` (a late periodic store changes nothing).
    func storePartial(_ partial: AgentRunPartial, userID: String, final: Bool) async throws
    /// The run's stored partial (the text of its answer message when it stored one); nil when the
    /// user has no such run.
    func partial(runID: String, userID: String) async throws -> AgentRunPartial?
}
