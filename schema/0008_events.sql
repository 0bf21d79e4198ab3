-- 0008: the event bus's transactional outbox and the audit log.
--
-- A service's change and the event describing it are written in the same transaction
-- (GroupCommitWriter + EventOutbox), so a rolled-back change leaves no event and a committed one
-- always has its event, even when the process dies before dispatching it. `seq` is the event's
-- global, gap-free position: AUTOINCREMENT so that a seq is never reused after pruning, and a
-- rolled-back insert gives its number back (sqlite_sequence is rolled back with the transaction).

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    topic       TEXT NOT NULL,
    -- The owner: only this user's subscriptions and replays see the event. No foreign key: an
    -- event outlives the rows it names.
    user_id     TEXT NOT NULL,
    -- What subscription filters match (`filter: {chatId, moduleId}`); NULL when the event has none.
    chat_id     TEXT,
    module_id   TEXT,
    occurred_at TEXT NOT NULL,
    -- The event's `data` object, as JSON text.
    data        TEXT NOT NULL
);

-- events.replay and a subscription's catch-up read one user's events after a seq.
CREATE INDEX events_user_seq ON events (user_id, seq);

-- In-process consumers (audit, …) read their topics after their cursor; the cursor moves in the
-- consumer's own transaction, so a consumer resumes after a restart where it stopped.
CREATE TABLE event_consumers (
    name TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL
);
CREATE INDEX events_topic_seq ON events (topic, seq);

-- Retention: events up to `pruned_through` are gone; a replay from before it is refused with
-- the oldest seq still available, never answered with a silent gap.
CREATE TABLE event_retention (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through INTEGER NOT NULL
);
INSERT INTO event_retention (id, pruned_through) VALUES (1, 0);

-- audit.list: one row per audited event, written by the audit consumer (keyed by the event's seq,
-- so a redelivered event after a crash is recorded once).
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    user_id     TEXT NOT NULL,
    action      TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    data        TEXT NOT NULL
);
CREATE INDEX audit_log_user_seq ON audit_log (user_id, seq);
