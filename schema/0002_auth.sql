-- 0002: failed logins, for throttling repeated attempts on one username.
-- One row per failure; rows older than the throttling window are deleted as new ones arrive, and
-- a successful login deletes the username's rows.

CREATE TABLE login_failures (
    username  TEXT NOT NULL COLLATE NOCASE,
    failed_at TEXT NOT NULL
);

CREATE INDEX login_failures_username ON login_failures(username, failed_at);
