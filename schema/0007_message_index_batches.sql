-- 0007: messages are added to the search index once per write batch instead of by a trigger per
-- row. FTS5 flushes its pending terms into a new segment at every statement savepoint, so a
-- trigger on each single-row INSERT cost more than the rest of an append (BENCHMARKS.md). The
-- group-commit writer now runs one INSERT … SELECT of the new rows before each commit
-- (SQLiteSearchIndex.indexNewMessages), in the same transaction: a committed message is searchable.
-- `search_progress` holds the last `messages.seq` indexed; the delete and update triggers touch
-- the index only for rows at or below it (a row never indexed must not be "deleted" from an
-- external-content FTS5 table).

DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;

CREATE TABLE search_progress (
    name TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL
);

-- 0006 indexed every row there was.
INSERT INTO search_progress (name, seq) SELECT 'messages', coalesce(max(seq), 0) FROM messages;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.seq <= (SELECT seq FROM search_progress WHERE name = 'messages')
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages
WHEN old.content IS NOT new.content AND old.seq <= (SELECT seq FROM search_progress WHERE name = 'messages')
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
    INSERT INTO messages_fts (rowid, content) VALUES (new.seq, new.content);
END;
