-- jitprov schema for SQLite, version 1.
--
-- The same tables, keys and checks as the Postgres schema
-- (internal/store/postgres/migrations), in SQLite's terms:
--   * tables are STRICT, so a column holds only its declared type;
--   * lists and maps (roles, groups, attributes, headers, settings) are JSON
--     text, checked with json_type/json_valid;
--   * timestamps are RFC 3339 text in UTC with microseconds,
--     "2006-01-02T15:04:05.000000Z": fixed width, so text order is time order.
--     The store writes every one of them; none comes from a SQLite default,
--     whose format differs;
--   * UUIDs are text in canonical lower-case form, as Postgres prints them;
--   * an identifier pattern is two GLOBs (SQLite has no regular expressions).

CREATE TABLE organizations (
    id                   TEXT NOT NULL PRIMARY KEY
                         CHECK (length(id) BETWEEN 1 AND 63 AND id GLOB '[a-z0-9]*' AND id NOT GLOB '*[^a-z0-9_-]*'),
    name                 TEXT NOT NULL,
    max_seats            INTEGER NOT NULL CHECK (max_seats >= 0),
    -- seats_used only moves through the conditional UPDATE in TakeSeat, so it
    -- never passes max_seats by provisioning; an admin may lower max_seats
    -- below it, which stops new seats without touching existing users.
    seats_used           INTEGER NOT NULL DEFAULT 0 CHECK (seats_used >= 0),
    roles                TEXT NOT NULL CHECK (json_type(roles) = 'array' AND json_array_length(roles) >= 2),
    default_role         TEXT NOT NULL,
    jit_role_ceiling     TEXT NOT NULL,
    update_policy        TEXT NOT NULL CHECK (update_policy IN ('prefer-idp', 'prefer-app')),
    link_by_email        TEXT NOT NULL CHECK (link_by_email IN ('never', 'verified-domains')),
    verified_domains     TEXT NOT NULL DEFAULT '[]' CHECK (json_type(verified_domains) = 'array'),
    -- The share of max_seats at which the provisioner warns the
    -- organisation's admins that seats run out; 0 turns it off.
    seat_warning_percent INTEGER NOT NULL DEFAULT 90 CHECK (seat_warning_percent BETWEEN 0 AND 100),
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    -- JIT never grants the organisation admin (the last role).
    CHECK (jit_role_ceiling <> json_extract(roles, '$[#-1]')),
    CHECK (default_role <> json_extract(roles, '$[#-1]'))
) STRICT;

-- default_role and jit_role_ceiling are among roles. CHECK constraints may
-- not hold subqueries in SQLite, so triggers check it.
CREATE TRIGGER organizations_roles_insert BEFORE INSERT ON organizations
WHEN NOT EXISTS (SELECT 1 FROM json_each(NEW.roles) WHERE value = NEW.default_role)
  OR NOT EXISTS (SELECT 1 FROM json_each(NEW.roles) WHERE value = NEW.jit_role_ceiling)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: default_role and jit_role_ceiling must be among roles');
END;
CREATE TRIGGER organizations_roles_update BEFORE UPDATE OF roles, default_role, jit_role_ceiling ON organizations
WHEN NOT EXISTS (SELECT 1 FROM json_each(NEW.roles) WHERE value = NEW.default_role)
  OR NOT EXISTS (SELECT 1 FROM json_each(NEW.roles) WHERE value = NEW.jit_role_ceiling)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: default_role and jit_role_ceiling must be among roles');
END;

CREATE TABLE connections (
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id         TEXT NOT NULL
               CHECK (length(id) BETWEEN 1 AND 128 AND id GLOB '[a-z0-9]*' AND id NOT GLOB '*[^a-z0-9_-]*'),
    protocol   TEXT NOT NULL CHECK (protocol IN ('saml', 'oidc')),
    settings   TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(settings)),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (org_id, id)
) STRICT;

CREATE TABLE users (
    id             TEXT NOT NULL PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES organizations (id),
    connection_id  TEXT,
    external_id    TEXT,
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
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id),
    CHECK ((connection_id IS NULL) = (external_id IS NULL)),
    CHECK ((email IS NULL) = (email_lower IS NULL))
) STRICT;
-- One user per IdP identity, and one user per email, in each organisation.
CREATE UNIQUE INDEX users_external_id_key ON users (org_id, connection_id, external_id);
CREATE UNIQUE INDEX users_email_key ON users (org_id, email_lower);
-- The notifier lists an organisation's admins.
CREATE INDEX users_org_role ON users (org_id, role) WHERE status = 'active';

CREATE TABLE role_reviews (
    id             TEXT NOT NULL PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES organizations (id),
    user_id        TEXT NOT NULL REFERENCES users (id),
    held_role      TEXT NOT NULL, -- the role when the review was opened
    requested_role TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
    login_id       TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    decided_at     TEXT,
    decided_by     TEXT
) STRICT;
CREATE UNIQUE INDEX role_reviews_one_pending ON role_reviews (user_id, requested_role) WHERE status = 'pending';

-- Events decided in a transaction, published by the outbox relay.
-- AUTOINCREMENT: a seq is never reused, even once every row is pruned.
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id   TEXT NOT NULL UNIQUE,
    subject    TEXT NOT NULL,
    header     TEXT NOT NULL CHECK (json_type(header) = 'object'),
    data       BLOB NOT NULL,
    created_at TEXT NOT NULL,
    sent_at    TEXT
) STRICT;
CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- The outbox relay's lease, one row: a relay holds the outbox while holder
-- is set and expires_at has not passed. It stands in for the advisory lock
-- of the Postgres store; the expiry frees the outbox of a relay that died.
CREATE TABLE outbox_relay (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    holder     TEXT,
    expires_at TEXT
) STRICT;
INSERT INTO outbox_relay (id) VALUES (1);

-- Audit log of every provisioning decision; its key makes decisions
-- idempotent under redelivery.
CREATE TABLE provisioning_decisions (
    login_id      TEXT NOT NULL PRIMARY KEY,
    org_id        TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    user_id       TEXT,
    result        TEXT NOT NULL CHECK (json_valid(result)),
    decided_at    TEXT NOT NULL
) STRICT;
CREATE INDEX provisioning_decisions_org ON provisioning_decisions (org_id, decided_at);
