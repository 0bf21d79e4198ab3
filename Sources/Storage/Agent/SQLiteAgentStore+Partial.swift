import Foundation
import GRDB
import Services

// A run's answer so far (0016's `partial_*` columns): stored every 250 ms while it streams and
// once after its end, read by `agent.runs.watch` for a run not going on in this process.
extension SQLiteAgentStore {
    /// One UPDATE by primary key, not urgent (no search indexing is due from it, so a batch that
    /// holds only such stores does little more than commit).
    public func storePartial(_ partial: AgentRunPartial, userID: String, final: Bool) async throws {
        let lengths = Data(partial.encodedLengths)
        let text = partial.text
        _ = try await writes.write { db in
            if final {
                // The answer message, when stored, holds the same text: not kept twice.
                try db.cachedStatement(
                    sql: """
                        UPDATE agent_runs SET partial_attempt = ?, partial_seq = ?, partial_lengths = ?,
                            partial_text = CASE WHEN assistant_message_id IS NULL THEN ? END
                        WHERE id = ? AND user_id = ?
                        """
                ).execute(arguments: [partial.attempt, partial.seq, lengths, text, partial.runID, userID])
            } else {
                try db.cachedStatement(
                    sql: """
                        UPDATE agent_runs SET partial_attempt = ?, partial_seq = ?, partial_lengths = ?, partial_text = ?
                        WHERE id = ? AND user_id = ? AND status = 'running'
                        """
                ).execute(arguments: [partial.attempt, partial.seq, lengths, text, partial.runID, userID])
            }
            return db.changesCount
        }
    }

    public func partial(runID: String, userID: String) async throws -> AgentRunPartial? {
        try await reader.unsafeRead { db in
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(
                        sql: """
                            SELECT r.partial_attempt, r.partial_seq, r.partial_lengths, coalesce(r.partial_text, m.content, '') AS text
                            FROM agent_runs r LEFT JOIN messages m ON m.id = r.assistant_message_id
                            WHERE r.id = ? AND r.user_id = ?
                            """), arguments: [runID, userID])
            else { return nil }
            let lengths: Data? = row["partial_lengths"]
            let ends = lengths.flatMap { AgentRunPartial.ends(decoding: $0) } ?? []
            // A run stored before 0016 (or with lengths that do not decode) cannot be cut at a seq:
            // seq 0 with its whole text.
            let seq: Int = ends.count == row["partial_seq"] ? row["partial_seq"] : 0
            return AgentRunPartial(runID: runID, attempt: row["partial_attempt"], seq: seq, text: row["text"], ends: seq == 0 ? [] : ends)
        }
    }
}
