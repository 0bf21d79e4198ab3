-- 0001: accounts and their sessions.
-- Timestamps are ISO 8601 UTC text (2026-01-31T12:00:00.000Z); ids are opaque text.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    -- NULL for an account that only signs in through its linked Unix uid.
    password_hash TEXT,
    -- The Unix uid recognised from the socket's peer credentials, when linked.
    linked_uid    INTEGER UNIQUE,
    created_at    TEXT NOT NULL
);

-- A session token is never stored, only its hash.
CREATE TABLE sessions (
    token_hash   BLOB PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    last_used_at TEXT
);

CREATE INDEX sessions_user_id ON sessions(user_id);
