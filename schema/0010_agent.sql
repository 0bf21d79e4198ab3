-- 0010: the agent's runs. One row per agent.act or agent.regenerate call: its user message (the
-- question), its assistant message once stored (the answer, unique: a message is the answer of at
-- most one run), its status, and what `chats.messages.get` (API v2) shows beside the answer as
-- `generation`: provider, model, finish reason, usage, timings, the web searches made and the tool
-- calls with their results. `steps` holds the tool-call turns that came before the answer's text, as
-- provider-neutral chat messages (JSON; tool-call ids normalised to call_1, call_2, … per answer),
-- which the agent replays in later requests; `searches` the queries with their results, credits and
-- request ids (JSON). A run left `running` by a crash is marked failed (`interrupted`) at start.
-- Runs go with their chat and their user; `seq` orders rows and backs the keyset cursor.

CREATE TABLE agent_runs (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    id                   TEXT NOT NULL UNIQUE,
    user_id              TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    chat_id              TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    user_message_id      TEXT NOT NULL,
    assistant_message_id TEXT UNIQUE,
    status               TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
    provider             TEXT NOT NULL,
    model                TEXT,
    finish_reason        TEXT,
    prompt_tokens        INTEGER,
    completion_tokens    INTEGER,
    usage_estimated      INTEGER NOT NULL DEFAULT 0,
    error_kind           TEXT,
    error_message        TEXT,
    started_at           TEXT NOT NULL,
    first_token_at       TEXT,
    finished_at          TEXT,
    kept_messages        INTEGER,
    dropped_messages     INTEGER,
    estimated_tokens     INTEGER,
    searches             TEXT NOT NULL DEFAULT '[]',
    steps                TEXT NOT NULL DEFAULT '[]'
);

CREATE INDEX agent_runs_user_seq ON agent_runs(user_id, seq);
CREATE INDEX agent_runs_chat_seq ON agent_runs(chat_id, seq);
CREATE INDEX agent_runs_running ON agent_runs(status) WHERE status = 'running';
