-- 0019: job retention (`jobs.prune`, `SQLiteJobQueue.prune`). Finished jobs are deleted once
-- their `finished_at` is older than `jobs.retention_days`, oldest first, a bounded batch per
-- transaction: this index reads them in that order and stops at the batch. Only finished jobs have
-- a `finished_at` (a retry clears it), so the index holds no live job; a prune's
-- `finished_at < ?` implies the index's condition, which lets SQLite use it.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
