-- 0011: repeated failures share one audit entry (issue 17): a failed call names the minute it
-- fell in, and the calls of that minute that failed alike (same action, outcome, uid, user and
-- data) add to its `count` instead of making rows of their own. Entries are pruned by age, so
-- `occurred_at` is indexed.

ALTER TABLE audit_entries ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_entries ADD COLUMN coalesce_key TEXT;
CREATE UNIQUE INDEX audit_entries_coalesce_key ON audit_entries (coalesce_key) WHERE coalesce_key IS NOT NULL;
CREATE INDEX audit_entries_occurred_at ON audit_entries (occurred_at);
