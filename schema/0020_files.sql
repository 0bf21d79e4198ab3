-- 0020: files (`SQLiteFileStore`). A file is a row here and a blob in the blob store
-- (`DiskBlobStore`: <data dir>/blobs/, named by the content's SHA-256). Identical content is one
-- blob however many files (of however many users) name it; each file row is its owner's, with its
-- own id, and is charged its full size. A blob no row names any more is deleted by a background
-- job (`files.blob_delete`), inside a write transaction that checks no row names it, so it never
-- races a new row for the same content (whose blob is placed inside the insert's transaction).
-- Times are ISO 8601 UTC text with milliseconds. `seq` backs the keyset cursor of files.list.

CREATE TABLE files (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size       INTEGER NOT NULL CHECK (size >= 0),
    sha256     TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE INDEX files_user ON files (user_id, seq);
CREATE INDEX files_sha256 ON files (sha256);

-- Uploads in progress: their bytes are staged in the blob store under the upload's id;
-- `received` counts those that are durable (the offset of the next chunk).
CREATE TABLE file_uploads (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    media_type TEXT,
    size       INTEGER NOT NULL CHECK (size >= 0),
    sha256     TEXT,
    received   INTEGER NOT NULL DEFAULT 0 CHECK (received >= 0 AND received <= size),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE INDEX file_uploads_user ON file_uploads (user_id);
CREATE INDEX file_uploads_expiry ON file_uploads (expires_at);

-- The storage quota (0012) counts a file's size, and an upload's announced size from its begin to
-- its commit or expiry: the disk an upload can fill is reserved before its first byte.
CREATE TRIGGER user_usage_file_insert AFTER INSERT ON files BEGIN
    UPDATE user_usage SET bytes = bytes + new.size WHERE user_id = new.user_id;
END;

CREATE TRIGGER user_usage_file_delete AFTER DELETE ON files BEGIN
    UPDATE user_usage SET bytes = bytes - old.size WHERE user_id = old.user_id;
END;

CREATE TRIGGER user_usage_upload_insert AFTER INSERT ON file_uploads BEGIN
    UPDATE user_usage SET bytes = bytes + new.size WHERE user_id = new.user_id;
END;

CREATE TRIGGER user_usage_upload_delete AFTER DELETE ON file_uploads BEGIN
    UPDATE user_usage SET bytes = bytes - old.size WHERE user_id = old.user_id;
END;
