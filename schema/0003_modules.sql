-- 0003: modules, a user's documents (title, description, content) with tags.
-- `seq` orders them (newest first) and backs the keyset cursor of modules.list; `id` is the
-- opaque public id (mod_…). Deleting a user deletes their modules, and a module its tags.

CREATE TABLE modules (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    content     TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE INDEX modules_user_seq ON modules(user_id, seq);

CREATE TABLE module_tags (
    module_id TEXT NOT NULL REFERENCES modules(id) ON DELETE CASCADE,
    tag       TEXT NOT NULL,
    PRIMARY KEY (module_id, tag)
);
