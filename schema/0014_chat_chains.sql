-- 0014: the active branch as a few segments of chains instead of one row per depth (0013), so
-- that selecting a branch costs the single writer a bounded amount of work however long the
-- branch is. 0013 made a page O(page), but a select walked the newest-child chain one message at a
-- time and rewrote every chat_paths row that changed, inside the group-commit writer every
-- user's write waits for: ~370 ms for a 100,000-message branch.
--
-- Chains: a message that is its parent's first child continues its parent's chain (same
-- chain_seq); a root, or any later child (an edit, a regeneration, an answer to an older message),
-- starts one (chain_seq = its own seq). A chain is a line, at most one message per depth, and it
-- only grows at its end (its other messages have a child already, so a new child of theirs starts
-- a chain): messages(chain_seq, depth) finds a chain's message at a depth directly. chain_forks
-- records where a non-root chain leaves its parent's chain; a fork's child is always newer than
-- the first child, so the newest child at a fork point is the fork with the greatest
-- child_chain_seq. A walk down by the newest child, or up to the root, is then one indexed query
-- per fork passed, not per message.
--
-- chat_segments: from start_depth until the next segment's start (the last one: to its chain's
-- end, which is the chat's active leaf), the chat's active branch is chain chain_seq. An append
-- after the leaf continues the leaf's chain and writes nothing here (the last segment grows by
-- itself); a select or a fork rewrites the chat's segments, one row per fork on the branch.
-- chats.branch_version counts the chat's new chains: a select walks on a read snapshot, outside
-- the writer, and the writer applies it only when no chain was added to the chat since
-- (SQLiteChatStore.selectBranch says why that is enough).
--
-- Messages are never deleted alone (only with their chat), so chains never lose a middle part.

ALTER TABLE messages ADD COLUMN chain_seq INTEGER;
ALTER TABLE chats ADD COLUMN branch_version INTEGER NOT NULL DEFAULT 0;

-- The chains there are: from each chain's first message (a root, or a child that is not its
-- parent's oldest), down by oldest children.
CREATE TEMP TABLE chain_backfill (seq INTEGER PRIMARY KEY, chain_seq INTEGER NOT NULL);
WITH RECURSIVE chain(seq, id, chain_seq) AS (
    SELECT m.seq, m.id, m.seq FROM messages m
    WHERE m.parent_id IS NULL OR m.seq > (SELECT min(o.seq) FROM messages o WHERE o.parent_id = m.parent_id)
    UNION ALL
    SELECT c.seq, c.id, chain.chain_seq FROM chain JOIN messages c ON c.parent_id = chain.id
    WHERE c.seq = (SELECT min(o.seq) FROM messages o WHERE o.parent_id = chain.id)
)
INSERT INTO chain_backfill (seq, chain_seq) SELECT seq, chain_seq FROM chain;
UPDATE messages SET chain_seq = (SELECT b.chain_seq FROM temp.chain_backfill b WHERE b.seq = messages.seq);
DROP TABLE temp.chain_backfill;

CREATE UNIQUE INDEX messages_chain_depth ON messages(chain_seq, depth);

-- A chain's row goes with its first message (and so with the chat).
CREATE TABLE chain_forks (
    child_chain_seq  INTEGER PRIMARY KEY REFERENCES messages(seq) ON DELETE CASCADE,
    parent_chain_seq INTEGER NOT NULL,
    parent_depth     INTEGER NOT NULL
);
CREATE INDEX chain_forks_parent ON chain_forks(parent_chain_seq, parent_depth, child_chain_seq);
INSERT INTO chain_forks (child_chain_seq, parent_chain_seq, parent_depth)
SELECT m.seq, p.chain_seq, p.depth FROM messages m JOIN messages p ON p.id = m.parent_id WHERE m.chain_seq = m.seq;

-- The active leaf is a leaf (the store keeps it so); should an older database say otherwise, its
-- chat shows the branch on to the end of that message's chain.
UPDATE chats SET active_message_id = (
    SELECT e.id FROM messages l JOIN messages e ON e.chain_seq = l.chain_seq WHERE l.id = chats.active_message_id ORDER BY e.depth DESC LIMIT 1)
WHERE EXISTS (SELECT 1 FROM messages c WHERE c.parent_id = chats.active_message_id);

CREATE TABLE chat_segments (
    chat_seq    INTEGER NOT NULL REFERENCES chats(seq) ON DELETE CASCADE,
    start_depth INTEGER NOT NULL,
    chain_seq   INTEGER NOT NULL,
    PRIMARY KEY (chat_seq, start_depth)
) WITHOUT ROWID;

-- Each chat's branch: up from its active leaf's chain, fork by fork.
WITH RECURSIVE up(chat_seq, chain_seq) AS (
    SELECT c.seq, m.chain_seq FROM chats c JOIN messages m ON m.id = c.active_message_id
    UNION ALL
    SELECT up.chat_seq, f.parent_chain_seq FROM up JOIN chain_forks f ON f.child_chain_seq = up.chain_seq
)
INSERT INTO chat_segments (chat_seq, start_depth, chain_seq)
SELECT up.chat_seq, coalesce((SELECT f.parent_depth + 1 FROM chain_forks f WHERE f.child_chain_seq = up.chain_seq), 1), up.chain_seq FROM up;

DROP TABLE chat_paths;
