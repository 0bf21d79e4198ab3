-- 0009: the audit log also records security-relevant calls (logins, logouts, password changes,
-- refused tokens and peer credentials), which are not events: entries get their own position, and
-- an entry made from an event keeps the event's seq (unique, so a redelivered event is recorded
-- once). `user_id` is NULL when the call named no known user (an unknown token, an untrusted uid).

CREATE TABLE audit_entries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_seq   INTEGER UNIQUE,
    user_id     TEXT,
    uid         INTEGER,
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    data        TEXT NOT NULL
);
CREATE INDEX audit_entries_user_id ON audit_entries (user_id, id);

INSERT INTO audit_entries (event_seq, user_id, action, outcome, occurred_at, data)
    SELECT seq, user_id, action, 'ok', occurred_at, data FROM audit_log ORDER BY seq;
DROP TABLE audit_log;
