-- 0021: attachments (issue 20). A message's files (`chats.messages.append`, `agent.act` with
-- `attachments`) and a module's files (`modules.files.add`). Both point at `files` rows of the same
-- user (the stores check it in the write); deleting a file takes it out of every message and module
-- (ON DELETE CASCADE) and leaves the message or module itself.
--
-- `messages.attachment_count` is how many files the message was given when it was appended: the
-- reads look for attachments only in messages where it is not 0, so a branch without any costs no
-- statement more. It is not lowered when a file goes (messages never change): a message whose
-- files are all deleted is read with one lookup that finds none.

ALTER TABLE messages ADD COLUMN attachment_count INTEGER NOT NULL DEFAULT 0;

CREATE TABLE message_attachments (
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL CHECK (position >= 0),
    file_id    TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    PRIMARY KEY (message_id, position)
) WITHOUT ROWID;

-- The cascade from files(id) looks a file's attachments up by it.
CREATE INDEX message_attachments_file ON message_attachments (file_id);

-- A module's files, in the order they were added (`seq`).
CREATE TABLE module_files (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    module_id TEXT NOT NULL REFERENCES modules(id) ON DELETE CASCADE,
    file_id   TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    added_at  TEXT NOT NULL,
    UNIQUE (module_id, file_id)
);

CREATE INDEX module_files_file ON module_files (file_id);
