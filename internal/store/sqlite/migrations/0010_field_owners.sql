-- Per-field ownership (Postgres migration 0012): the organisation's
-- field_owners, and the changes of users' fields their owners overruled.

ALTER TABLE organizations ADD COLUMN field_owners TEXT NOT NULL DEFAULT '{}'
    CHECK (json_type(field_owners) = 'object');

-- One row per (user, field): the latest overruled change, and how often.
CREATE TABLE field_conflicts (
    org_id   TEXT NOT NULL REFERENCES organizations (id),
    user_id  TEXT NOT NULL REFERENCES users (id),
    field    TEXT NOT NULL CHECK (field <> ''),
    source   TEXT NOT NULL CHECK (source IN ('login', 'scim')),
    rejected TEXT NOT NULL CHECK (json_type(rejected) = 'array'),
    kept     TEXT NOT NULL CHECK (json_type(kept) = 'array'),
    owner    TEXT NOT NULL CHECK (owner IN ('idp', 'scim', 'app', 'first-login-only')),
    login_id TEXT NOT NULL DEFAULT '',
    actor    TEXT NOT NULL DEFAULT '',
    count    INTEGER NOT NULL DEFAULT 1 CHECK (count > 0),
    first_at TEXT NOT NULL,
    at       TEXT NOT NULL,
    PRIMARY KEY (org_id, user_id, field)
) STRICT;
CREATE INDEX field_conflicts_org_at ON field_conflicts (org_id, at DESC);
