-- 0012: each user's stored bytes, against the storage quota (`limits.storage_quota_bytes`). One row
-- per user, changed in the transaction of every write that adds or removes stored text, so it is
-- right after any crash and a quota check is one primary-key read.
--
-- What counts: the UTF-8 bytes of the text a user stores (modules' title, description and content;
-- chats' titles; messages' content; prompts' name and description and every version's body and
-- variables; agent runs' steps, searches and error message). Not ids, timestamps, tags (at most 32
-- short ones per module), indexes or SQLite's own overhead: the quota bounds what a user can make
-- the daemon keep, and the rest grows with it.
--
-- The triggers below keep the count for every INSERT, UPDATE and DELETE, including rows removed by
-- ON DELETE CASCADE (a chat's messages and runs, a user's everything). One write is not done by a
-- trigger: inserting a message. A trigger on `messages` would give every append a statement journal
-- (the hot path, BENCHMARKS.md), so the store adds a message's bytes itself with one UPDATE that is
-- also the quota check (StorageLedger.add). Prompt versions have no user_id and go with their
-- prompt: the prompt's BEFORE DELETE trigger takes their bytes back while the prompt row still
-- exists (versions are never deleted on their own).

CREATE TABLE user_usage (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    bytes   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TRIGGER user_usage_user_insert AFTER INSERT ON users BEGIN
    INSERT INTO user_usage (user_id, bytes) VALUES (new.id, 0);
END;

CREATE TRIGGER user_usage_module_insert AFTER INSERT ON modules BEGIN
    UPDATE user_usage SET bytes = bytes
        + length(CAST(new.title AS BLOB)) + length(CAST(new.description AS BLOB)) + length(CAST(new.content AS BLOB))
    WHERE user_id = new.user_id;
END;

CREATE TRIGGER user_usage_module_update AFTER UPDATE OF title, description, content ON modules BEGIN
    UPDATE user_usage SET bytes = bytes
        + length(CAST(new.title AS BLOB)) + length(CAST(new.description AS BLOB)) + length(CAST(new.content AS BLOB))
        - length(CAST(old.title AS BLOB)) - length(CAST(old.description AS BLOB)) - length(CAST(old.content AS BLOB))
    WHERE user_id = new.user_id;
END;

CREATE TRIGGER user_usage_module_delete AFTER DELETE ON modules BEGIN
    UPDATE user_usage SET bytes = bytes
        - length(CAST(old.title AS BLOB)) - length(CAST(old.description AS BLOB)) - length(CAST(old.content AS BLOB))
    WHERE user_id = old.user_id;
END;

CREATE TRIGGER user_usage_chat_insert AFTER INSERT ON chats BEGIN
    UPDATE user_usage SET bytes = bytes + length(CAST(new.title AS BLOB)) WHERE user_id = new.user_id;
END;

CREATE TRIGGER user_usage_chat_update AFTER UPDATE OF title ON chats BEGIN
    UPDATE user_usage SET bytes = bytes + length(CAST(new.title AS BLOB)) - length(CAST(old.title AS BLOB)) WHERE user_id = new.user_id;
END;

CREATE TRIGGER user_usage_chat_delete AFTER DELETE ON chats BEGIN
    UPDATE user_usage SET bytes = bytes - length(CAST(old.title AS BLOB)) WHERE user_id = old.user_id;
END;

-- No INSERT trigger: see above.
CREATE TRIGGER user_usage_message_update AFTER UPDATE OF content ON messages BEGIN
    UPDATE user_usage SET bytes = bytes + length(CAST(new.content AS BLOB)) - length(CAST(old.content AS BLOB)) WHERE user_id = new.user_id;
END;

CREATE TRIGGER user_usage_message_delete AFTER DELETE ON messages BEGIN
    UPDATE user_usage SET bytes = bytes - length(CAST(old.content AS BLOB)) WHERE user_id = old.user_id;
END;

-- Built-in prompts (user_id NULL) match no row.
CREATE TRIGGER user_usage_prompt_insert AFTER INSERT ON prompts BEGIN
    UPDATE user_usage SET bytes = bytes + length(CAST(new.name AS BLOB)) + length(CAST(new.description AS BLOB)) WHERE user_id = new.user_id;
END;

CREATE TRIGGER user_usage_prompt_update AFTER UPDATE OF name, description ON prompts BEGIN
    UPDATE user_usage SET bytes = bytes
        + length(CAST(new.name AS BLOB)) + length(CAST(new.description AS BLOB))
        - length(CAST(old.name AS BLOB)) - length(CAST(old.description AS BLOB))
    WHERE user_id = new.user_id;
END;

CREATE TRIGGER user_usage_prompt_delete BEFORE DELETE ON prompts BEGIN
    UPDATE user_usage SET bytes = bytes
        - length(CAST(old.name AS BLOB)) - length(CAST(old.description AS BLOB))
        - coalesce((SELECT sum(length(CAST(body AS BLOB)) + length(CAST(variables AS BLOB))) FROM prompt_versions WHERE prompt_id = old.id), 0)
    WHERE user_id = old.user_id;
END;

CREATE TRIGGER user_usage_prompt_version_insert AFTER INSERT ON prompt_versions BEGIN
    UPDATE user_usage SET bytes = bytes + length(CAST(new.body AS BLOB)) + length(CAST(new.variables AS BLOB))
    WHERE user_id = (SELECT user_id FROM prompts WHERE id = new.prompt_id);
END;

-- A run is inserted with nothing counted (steps and searches '[]', no error), so no INSERT trigger
-- on the agent's start path.
CREATE TRIGGER user_usage_agent_run_update AFTER UPDATE OF steps, searches, error_message ON agent_runs BEGIN
    UPDATE user_usage SET bytes = bytes
        + coalesce(length(CAST(nullif(new.steps, '[]') AS BLOB)), 0) + coalesce(length(CAST(nullif(new.searches, '[]') AS BLOB)), 0)
        + coalesce(length(CAST(new.error_message AS BLOB)), 0)
        - coalesce(length(CAST(nullif(old.steps, '[]') AS BLOB)), 0) - coalesce(length(CAST(nullif(old.searches, '[]') AS BLOB)), 0)
        - coalesce(length(CAST(old.error_message AS BLOB)), 0)
    WHERE user_id = new.user_id;
END;

CREATE TRIGGER user_usage_agent_run_delete AFTER DELETE ON agent_runs BEGIN
    UPDATE user_usage SET bytes = bytes
        - coalesce(length(CAST(nullif(old.steps, '[]') AS BLOB)), 0) - coalesce(length(CAST(nullif(old.searches, '[]') AS BLOB)), 0)
        - coalesce(length(CAST(old.error_message AS BLOB)), 0)
    WHERE user_id = old.user_id;
END;

-- What every existing user stores already (the same sums as StorageLedger.recount).
INSERT INTO user_usage (user_id, bytes)
SELECT u.id,
    coalesce((SELECT sum(length(CAST(title AS BLOB)) + length(CAST(description AS BLOB)) + length(CAST(content AS BLOB))) FROM modules WHERE user_id = u.id), 0)
    + coalesce((SELECT sum(length(CAST(title AS BLOB))) FROM chats WHERE user_id = u.id), 0)
    + coalesce((SELECT sum(length(CAST(content AS BLOB))) FROM messages WHERE user_id = u.id), 0)
    + coalesce((SELECT sum(length(CAST(name AS BLOB)) + length(CAST(description AS BLOB))) FROM prompts WHERE user_id = u.id), 0)
    + coalesce((SELECT sum(length(CAST(v.body AS BLOB)) + length(CAST(v.variables AS BLOB))) FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id WHERE p.user_id = u.id), 0)
    + coalesce((SELECT sum(coalesce(length(CAST(nullif(steps, '[]') AS BLOB)), 0) + coalesce(length(CAST(nullif(searches, '[]') AS BLOB)), 0)
        + coalesce(length(CAST(error_message AS BLOB)), 0)) FROM agent_runs WHERE user_id = u.id), 0)
FROM users u;
