-- 0017: background agent runs (agent.act / agent.regenerate with `background: true`). Such a run
-- is carried by an `agent.run` job (`job_id`, the job's id; the job's idempotency key is the run
-- id) instead of by the call that started it, so a crash does not fail it: `failInterruptedRuns`
-- at start fails only foreground runs (`background = 0`), and a background run is run again when
-- its job is claimed again. `attempt` counts the attempts started (1 for the first);
-- `interrupted_partial` is the text an earlier attempt had streamed when it stopped (a crash; from
-- 0016's `partial_text`, the running attempt's text so far), kept on the run for `agent.runs.get`
-- (`partial`) and never stored as an answer message.

ALTER TABLE agent_runs ADD COLUMN background INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agent_runs ADD COLUMN job_id TEXT;
ALTER TABLE agent_runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
ALTER TABLE agent_runs ADD COLUMN interrupted_partial TEXT;
