-- 0018: whether a chat's title is its user's. A chat's first answer makes a `chat.title` job that
-- asks the model for a short title; a title the user chose (chats.rename, chats.create and
-- chats.fork with a title, a fork of such a chat) is never replaced: the job's UPDATE is
-- conditional on this column in the same statement, so a rename that commits first always wins.
-- Existing chats count as not named by their user; they are not retitled anyway (a title job
-- follows only a chat's first answer).

ALTER TABLE chats ADD COLUMN title_set_by_user INTEGER NOT NULL DEFAULT 0;
