-- 0006: full-text search (SQLite FTS5) for search.query: modules (title, description, content) and
-- messages (content). 0005 is the prompts migration, written alongside; the migrator applies
-- whatever versions are pending in order, so a gap or a late 0005 is fine.
--
-- External-content tables: each holds the index only, the text stays in its base table (rowid =
-- `seq`), so a 1 MiB module is not stored twice and snippet() reads the text from the base row.
-- The triggers below keep each index in sync with every INSERT, UPDATE and DELETE of its base table,
-- including rows removed by ON DELETE CASCADE (deleting a chat or a user), which fire DELETE
-- triggers too. An external-content index must be told the exact old values of a row it forgets,
-- hence the 'delete' commands with `old.*`.
--
-- Tokenizer: unicode61 folding case and diacritics (`cafe` finds `Café`), in any script. No porter
-- stemming: it is English-only, and it breaks prefix matching of a partly typed word (`runni*` is
-- no prefix of the stored stem `run`). Owner (user_id) is not in the index: queries join back to
-- the base table on rowid and filter by user there.

CREATE VIRTUAL TABLE modules_fts USING fts5(
    title, description, content,
    content = 'modules', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER modules_fts_insert AFTER INSERT ON modules BEGIN
    INSERT INTO modules_fts (rowid, title, description, content)
    VALUES (new.seq, new.title, new.description, new.content);
END;

CREATE TRIGGER modules_fts_delete AFTER DELETE ON modules BEGIN
    INSERT INTO modules_fts (modules_fts, rowid, title, description, content)
    VALUES ('delete', old.seq, old.title, old.description, old.content);
END;

-- Only when indexed text changes: a tags-only update does not re-index a 1 MiB content.
CREATE TRIGGER modules_fts_update AFTER UPDATE OF title, description, content ON modules
WHEN old.title IS NOT new.title OR old.description IS NOT new.description OR old.content IS NOT new.content
BEGIN
    INSERT INTO modules_fts (modules_fts, rowid, title, description, content)
    VALUES ('delete', old.seq, old.title, old.description, old.content);
    INSERT INTO modules_fts (rowid, title, description, content)
    VALUES (new.seq, new.title, new.description, new.content);
END;

CREATE VIRTUAL TABLE messages_fts USING fts5(
    content,
    content = 'messages', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.seq, new.content);
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages
WHEN old.content IS NOT new.content
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
    INSERT INTO messages_fts (rowid, content) VALUES (new.seq, new.content);
END;

-- Index the rows that exist already.
INSERT INTO modules_fts (modules_fts) VALUES ('rebuild');
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
