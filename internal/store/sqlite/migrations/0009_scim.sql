-- jitprov:foreign-keys-off
--
-- SCIM 2.0 (Postgres migration 0011): users' SCIM fields and created_by
-- scim, SCIM groups and their members, and API tokens of scope scim.
-- users and api_tokens are rebuilt (the way SQLite documents; see 0002) to
-- widen their checks; tables referring to them keep referring to the new
-- ones once renamed.

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
    created_by     TEXT NOT NULL CHECK (created_by IN ('jit', 'admin', 'app', 'scim')),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    last_login_at  TEXT,
    -- 0007 and 0008.
    role_source      TEXT NOT NULL DEFAULT 'idp' CHECK (role_source IN ('idp', 'admin')),
    suspended_reason TEXT NOT NULL DEFAULT '' CHECK (suspended_reason IN ('', 'inactive')),
    scim_managed     INTEGER NOT NULL DEFAULT 0 CHECK (scim_managed IN (0, 1)),
    -- The SCIM client's userName (and folded by the store, as email_lower)
    -- and externalId; deleted once a SCIM DELETE deprovisioned them.
    scim_user_name       TEXT,
    scim_user_name_lower TEXT,
    scim_external_id     TEXT,
    scim_deleted         INTEGER NOT NULL DEFAULT 0 CHECK (scim_deleted IN (0, 1)),
    -- Deprovisioned because SCIM said so: SCIM may bring back only those.
    scim_deactivated     INTEGER NOT NULL DEFAULT 0 CHECK (scim_deactivated IN (0, 1)),
    CHECK ((email IS NULL) = (email_lower IS NULL)),
    CHECK ((scim_user_name IS NULL) = (scim_user_name_lower IS NULL))
) STRICT;
INSERT INTO users_new (id, org_id, email, email_lower, email_verified, given_name, family_name, display_name,
    groups, role, status, attributes, created_by, created_at, updated_at, last_login_at,
    role_source, suspended_reason, scim_managed)
SELECT id, org_id, email, email_lower, email_verified, given_name, family_name, display_name,
    groups, role, status, attributes, created_by, created_at, updated_at, last_login_at,
    role_source, suspended_reason, scim_managed
FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
-- The indexes of users, as 0006 and 0008 left them.
CREATE UNIQUE INDEX users_email_key ON users (org_id, email_lower);
CREATE INDEX users_org_role ON users (org_id, role) WHERE status = 'active';
CREATE INDEX users_org_created ON users (org_id, created_at DESC, id DESC);
CREATE INDEX users_org_held ON users (org_id, created_at) WHERE status = 'held';
CREATE INDEX users_org_jit_active ON users (org_id, created_at) WHERE status = 'active' AND created_by = 'jit';
-- One live SCIM userName per organisation.
CREATE UNIQUE INDEX users_scim_user_name_key ON users (org_id, scim_user_name_lower)
    WHERE scim_user_name_lower IS NOT NULL AND scim_deleted = 0;
CREATE INDEX users_scim_external_id ON users (org_id, scim_external_id) WHERE scim_external_id IS NOT NULL;
-- SCIM's userName lookup (its userName, else the email).
CREATE INDEX users_scim_user_name_lookup ON users (org_id, coalesce(scim_user_name_lower, email_lower));

CREATE TABLE scim_groups (
    id                 TEXT NOT NULL PRIMARY KEY,
    org_id             TEXT NOT NULL REFERENCES organizations (id),
    display_name       TEXT NOT NULL CHECK (display_name <> ''),
    display_name_lower TEXT NOT NULL,
    external_id        TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX scim_groups_name_key ON scim_groups (org_id, display_name_lower);
CREATE TABLE scim_group_members (
    group_id TEXT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id),
    PRIMARY KEY (group_id, user_id)
) STRICT;
CREATE INDEX scim_group_members_user ON scim_group_members (user_id);

CREATE TABLE api_tokens_new (
    id           TEXT NOT NULL PRIMARY KEY,
    name         TEXT NOT NULL CHECK (name <> ''),
    org_id       TEXT REFERENCES organizations (id),
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'write', 'scim')),
    secret_hash  BLOB NOT NULL UNIQUE,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    revoked_at   TEXT,
    last_used_at TEXT
) STRICT;
INSERT INTO api_tokens_new SELECT id, name, org_id, scope, secret_hash, created_by, created_at, expires_at, revoked_at, last_used_at
FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;

-- An identity SCIM linked ahead of the person's first sign-in: identities
-- is rebuilt to widen its linked_by check.
CREATE TABLE identities_new (
    org_id        TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    external_id   TEXT NOT NULL CHECK (external_id <> ''),
    user_id       TEXT NOT NULL REFERENCES users (id),
    -- created, email, replaces, admin or scim: see the Postgres migrations.
    linked_by     TEXT NOT NULL CHECK (linked_by IN ('created', 'email', 'replaces', 'admin', 'scim')),
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, connection_id, external_id),
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id)
) STRICT;
INSERT INTO identities_new SELECT org_id, connection_id, external_id, user_id, linked_by, first_seen_at, last_seen_at
FROM identities;
DROP TABLE identities;
ALTER TABLE identities_new RENAME TO identities;
CREATE INDEX identities_user ON identities (user_id);
