-- jitprov:foreign-keys-off
--
-- One person, many identities (Postgres migration 0004): a user had exactly
-- one IdP identity (its connection_id and external_id); now it has any
-- number of them, one row each.
--
-- SQLite cannot drop a column that a constraint names, so users is rebuilt
-- the way SQLite documents (https://sqlite.org/lang_altertable.html, "other
-- kinds of table schema changes"): with foreign keys off (the marker on the
-- first line; migrate turns them off before BEGIN and runs
-- PRAGMA foreign_key_check before COMMIT), a new table, a copy, a drop and
-- a rename. role_reviews and identities keep referring to "users", which is
-- the new table once renamed.

CREATE TABLE identities (
    org_id        TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    external_id   TEXT NOT NULL CHECK (external_id <> ''),
    user_id       TEXT NOT NULL REFERENCES users (id),
    -- created, email, replaces or admin: see the Postgres migration.
    linked_by     TEXT NOT NULL CHECK (linked_by IN ('created', 'email', 'replaces', 'admin')),
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, connection_id, external_id),
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id)
) STRICT;
CREATE INDEX identities_user ON identities (user_id);

INSERT INTO identities (org_id, connection_id, external_id, user_id, linked_by, first_seen_at, last_seen_at)
SELECT org_id, connection_id, external_id, id,
       CASE WHEN created_by = 'jit' THEN 'created' ELSE 'email' END,
       created_at, max(created_at, coalesce(last_login_at, created_at))
FROM users WHERE connection_id IS NOT NULL;

CREATE TABLE users_new (
    id             TEXT NOT NULL PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES organizations (id),
    email          TEXT,
    -- email in lower case, folded by the store with Unicode rules (SQLite's
    -- lower() folds ASCII only): the key that makes emails unique per
    -- organisation whatever their case.
    email_lower    TEXT,
    -- Whether the IdP vouched for the user's email; an unverified email is
    -- never used to link a login to an existing account.
    email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    given_name     TEXT NOT NULL DEFAULT '',
    family_name    TEXT NOT NULL DEFAULT '',
    display_name   TEXT NOT NULL DEFAULT '',
    groups         TEXT NOT NULL DEFAULT '[]' CHECK (json_type(groups) = 'array'),
    role           TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'deprovisioned')),
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
-- One user per email in each organisation.
CREATE UNIQUE INDEX users_email_key ON users (org_id, email_lower);
-- The notifier lists an organisation's admins.
CREATE INDEX users_org_role ON users (org_id, role) WHERE status = 'active';

-- What people see in the sign-in chooser, and the connection whose people
-- this one takes over (an IdP migration).
ALTER TABLE connections ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN replaces TEXT NOT NULL DEFAULT '';

-- Where a person lands after signing in without a return_to.
ALTER TABLE organizations ADD COLUMN landing_url TEXT NOT NULL DEFAULT '';
