-- 0002: failed logins, for throttling repeated attempts on one username.
-- One row per failure. Rows older than the throttling window are deleted (for every username) as
-- new ones arrive, and a successful login deletes its username's rows, so the table stays small.

CREATE TABLE login_failures (
    username  TEXT NOT NULL COLLATE NOCASE,
    failed_at TEXT NOT NULL
);

CREATE INDEX login_failures_username ON login_failures(username, failed_at);
CREATE INDEX login_failures_failed_at ON login_failures(failed_at);
