-- 0016: a run's answer so far, stored while it streams (at most every 250 ms, and at its end), so
-- that `agent.runs.watch` can answer a client that comes back, from any connection, with the text
-- it missed: `since` (a delta seq of attempt `partial_attempt`) cuts the text at the end of that
-- delta. `partial_lengths` holds the UTF-8 length of each delta in seq order, each an unsigned
-- LEB128 varint (one byte for a delta under 128 bytes): the offset where seq n ends is the sum of
-- the first n. `partial_seq` is the last seq the stored text reaches.
-- `partial_text` is NULL once the run stored an answer message (its content is the same text);
-- a run that ended without one (failed) keeps it. Not counted in user_usage: it is bounded by the
-- run's answer (max_tokens) and replaced, not added to, on each store.

ALTER TABLE agent_runs ADD COLUMN partial_attempt INTEGER NOT NULL DEFAULT 1;
ALTER TABLE agent_runs ADD COLUMN partial_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agent_runs ADD COLUMN partial_text TEXT;
ALTER TABLE agent_runs ADD COLUMN partial_lengths BLOB;
