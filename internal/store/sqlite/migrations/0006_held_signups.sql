-- jitprov:foreign-keys-off
--
-- Held sign-ups (Postgres migration 0008): organisations' new_people and
-- when_full, and the user status held. users is rebuilt (the way SQLite
-- documents; see 0002) to widen its status check; identities and
-- role_reviews keep referring to "users", the new table once renamed.

ALTER TABLE organizations ADD COLUMN new_people TEXT NOT NULL DEFAULT 'active' CHECK (new_people IN ('active', 'hold'));
ALTER TABLE organizations ADD COLUMN when_full TEXT NOT NULL DEFAULT 'refuse' CHECK (when_full IN ('refuse', 'hold'));

CREATE TABLE users_new (
    id             TEXT NOT NULL PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES organizations (id),
    email          TEXT,
    -- email in lower case, folded by the store with Unicode rules: see 0002.
    email_lower    TEXT,
    email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    given_name     TEXT NOT NULL DEFAULT '',
    family_name    TEXT NOT NULL DEFAULT '',
    display_name   TEXT NOT NULL DEFAULT '',
    groups         TEXT NOT NULL DEFAULT '[]' CHECK (json_type(groups) = 'array'),
    role           TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'deprovisioned', 'held')),
    attributes     TEXT NOT NULL DEFAULT '{}' CHECK (json_type(attributes) = 'object'),
    created_by     TEXT NOT NULL CHECK (created_by IN ('jit', 'admin', 'app')),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    last_login_at  TEXT,
    CHECK ((email IS NULL) = (email_lower IS NULL))
) STRICT;
INSERT INTO users_new (id, org_id, email, email_lower, email_verified, given_name, family_name, display_name,
    groups, role, status, attributes, created_by, created_at, updated_at, last_login_at)
SELECT id, org_id, email, email_lower, email_verified, given_name, family_name, display_name,
    groups, role, status, attributes, created_by, created_at, updated_at, last_login_at
FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
-- The indexes of users, as 0002 and 0003 made them.
CREATE UNIQUE INDEX users_email_key ON users (org_id, email_lower);
CREATE INDEX users_org_role ON users (org_id, role) WHERE status = 'active';
CREATE INDEX users_org_created ON users (org_id, created_at DESC, id DESC);
-- Admins list the held people of an organisation, oldest first.
CREATE INDEX users_org_held ON users (org_id, created_at) WHERE status = 'held';
