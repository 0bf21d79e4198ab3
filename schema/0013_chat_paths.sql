-- 0013: each chat's active branch, stored: one row per depth, from 1 to the active leaf's depth,
-- naming the branch's message at that depth. Walking parent links up from the leaf cost the
-- whole branch for every page of chats.messages.list (O(n²) to page through a long chat) and one
-- query per level to select a branch, inside the single writer; with this table a page is a range
-- of rows, and a select rewrites only the rows that change. Integer keys (chats.seq, depth,
-- messages.seq) keep the row an append adds small. The store keeps it equal to the path up from
-- chats.active_message_id (SQLiteChatStore); a chat's rows go with it.

CREATE TABLE chat_paths (
    chat_seq    INTEGER NOT NULL REFERENCES chats(seq) ON DELETE CASCADE,
    depth       INTEGER NOT NULL,
    message_seq INTEGER NOT NULL,
    PRIMARY KEY (chat_seq, depth)
) WITHOUT ROWID;

-- The branches there are: up from each chat's active leaf.
WITH RECURSIVE path(chat_seq, seq, parent_id, depth) AS (
    SELECT c.seq, m.seq, m.parent_id, m.depth FROM chats c JOIN messages m ON m.id = c.active_message_id
    UNION ALL
    SELECT p.chat_seq, m.seq, m.parent_id, m.depth FROM path p JOIN messages m ON m.id = p.parent_id
)
INSERT INTO chat_paths (chat_seq, depth, message_seq) SELECT chat_seq, depth, seq FROM path;
