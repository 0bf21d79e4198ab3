-- 0015: the job queue (`SQLiteJobQueue`). One row per job: a unit of background work of one kind
-- for one owner (a user, or NULL for the daemon's own jobs: retention), its state, its attempts and
-- the lease of the worker running it. A worker claims a due queued job (or a running one whose
-- lease expired: its worker died) in one write transaction, so two workers never hold the same
-- attempt; every call that changes a running job names its lease (worker_id + attempt).
-- Times are ISO 8601 UTC text with milliseconds, which sorts as text in time order. `seq` orders
-- rows (the oldest first among equals when claiming; newest first in jobs.list) and backs the
-- keyset cursor.

CREATE TABLE jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    -- NULL: the daemon's own job (no events, no user sees it).
    owner_id         TEXT REFERENCES users(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    -- The kind's input and the last attempt's output, as JSON text.
    payload          TEXT NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    attempt          INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts     INTEGER NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    run_after        TEXT NOT NULL,
    idempotency_key  TEXT,
    result           TEXT,
    error_kind       TEXT,
    error_message    TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    worker_id        TEXT,
    lease_expires_at TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT
);

-- An idempotency key is unique per owner and kind. NULL owners would never conflict in a plain
-- UNIQUE index (NULLs are distinct), so the daemon's own jobs are indexed under '' (no user id is
-- empty); lookups use the same expression.
CREATE UNIQUE INDEX jobs_idempotency ON jobs (ifnull(owner_id, ''), kind, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- claim: the due queued jobs of a kind in claim order (highest priority, earliest run_after, then
-- oldest: the rowid ends every index entry), read until `limit` are due. Also nextDue (the
-- queued jobs of a kind left when none is due).
CREATE INDEX jobs_queued ON jobs (kind, priority DESC, run_after) WHERE state = 'queued';

-- claim's recovery and nextDue: running jobs of a kind by lease expiry.
CREATE INDEX jobs_running ON jobs (kind, lease_expires_at) WHERE state = 'running';

-- jobs.list: one owner's jobs, newest first.
CREATE INDEX jobs_owner_seq ON jobs (owner_id, seq);
