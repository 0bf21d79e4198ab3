-- 0022: the text of files, for search.query (kind "file") and for the agent. Every file gets a
-- row here in the transaction that inserts it (the trigger below), so the row is also the durable
-- record of work to do: `pending` rows are extracted by the `files.extract_text` job (PDFs with
-- pdftotext, text files by reading their first bytes), which the daemon enqueues when the file is
-- created and again, for every row still pending, at start (a crash between the commit and the
-- enqueue loses nothing). Other media types are `skipped`: only their name is indexed.
--
-- The name is copied here so that one external-content FTS5 table (`files_fts`: name, text) can
-- match a query's words across both, as modules_fts does across its columns; files have no rename
-- yet, the update trigger keeps the copy right if they get one. The text is not charged to the
-- storage quota: it is derived, capped (8 MiB for a PDF, 1 MiB for a text file) and goes with its file.

CREATE TABLE file_texts (
    file_seq     INTEGER PRIMARY KEY REFERENCES files(seq) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'ready', 'failed', 'skipped')),
    text         TEXT,
    -- True when the text was cut at the cap.
    truncated    INTEGER NOT NULL DEFAULT 0,
    -- Why extraction failed (state 'failed').
    error        TEXT,
    extracted_at TEXT
);

CREATE INDEX file_texts_pending ON file_texts (state) WHERE state = 'pending';

CREATE TRIGGER file_texts_file_insert AFTER INSERT ON files BEGIN
    INSERT INTO file_texts (file_seq, name, state) VALUES (
        new.seq, new.name,
        CASE
            WHEN new.media_type = 'application/pdf' OR new.media_type LIKE 'text/%' OR new.media_type = 'application/json'
                OR new.media_type LIKE 'application/json;%' THEN 'pending'
            ELSE 'skipped'
        END);
END;

CREATE TRIGGER file_texts_file_rename AFTER UPDATE OF name ON files WHEN old.name IS NOT new.name BEGIN
    UPDATE file_texts SET name = new.name WHERE file_seq = new.seq;
END;

CREATE VIRTUAL TABLE files_fts USING fts5(
    name, text,
    content = 'file_texts', content_rowid = 'file_seq',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- A file's row goes with it (ON DELETE CASCADE fires this trigger too).
CREATE TRIGGER files_fts_insert AFTER INSERT ON file_texts BEGIN
    INSERT INTO files_fts (rowid, name, text) VALUES (new.file_seq, new.name, new.text);
END;

CREATE TRIGGER files_fts_delete AFTER DELETE ON file_texts BEGIN
    INSERT INTO files_fts (files_fts, rowid, name, text) VALUES ('delete', old.file_seq, old.name, old.text);
END;

CREATE TRIGGER files_fts_update AFTER UPDATE OF name, text ON file_texts
WHEN old.name IS NOT new.name OR old.text IS NOT new.text
BEGIN
    INSERT INTO files_fts (files_fts, rowid, name, text) VALUES ('delete', old.file_seq, old.name, old.text);
    INSERT INTO files_fts (rowid, name, text) VALUES (new.file_seq, new.name, new.text);
END;

-- Files stored before this migration.
INSERT INTO file_texts (file_seq, name, state)
SELECT seq, name,
    CASE
        WHEN media_type = 'application/pdf' OR media_type LIKE 'text/%' OR media_type = 'application/json'
            OR media_type LIKE 'application/json;%' THEN 'pending'
        ELSE 'skipped'
    END
FROM files;
