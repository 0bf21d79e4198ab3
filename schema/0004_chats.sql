-- 0004: chats and their messages. Messages form a tree (each has a parent, or none for the first
-- one), so regenerating or editing an answer makes a sibling branch; `chats.active_message_id` is
-- the leaf of the branch the chat shows. `depth` (1 for a root message) makes a branch's length, and
-- so a chat's message count, one lookup; `seq` orders rows and backs the keyset cursors.
-- `messages.user_id` repeats the chat's owner so per-user reads (search, isolation checks) need no
-- join. Deleting a user deletes their chats, a chat its messages; deleting a module keeps its chats.
-- `parent_id` does not cascade: messages go only with their chat, all in one statement, and a
-- cascade along the parent chain would recurse once per level (SQLite stops at 1000).

CREATE TABLE chats (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    user_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    module_id         TEXT REFERENCES modules(id) ON DELETE SET NULL,
    title             TEXT NOT NULL,
    active_message_id TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

CREATE INDEX chats_user_seq ON chats(user_id, seq);
CREATE INDEX chats_user_module_seq ON chats(user_id, module_id, seq);

CREATE TABLE messages (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    chat_id    TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    parent_id  TEXT REFERENCES messages(id),
    role       TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content    TEXT NOT NULL,
    depth      INTEGER NOT NULL CHECK (depth >= 1),
    created_at TEXT NOT NULL
);

CREATE INDEX messages_chat_seq ON messages(chat_id, seq);
CREATE INDEX messages_parent ON messages(parent_id, seq);
