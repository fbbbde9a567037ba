-- jitprov:foreign-keys-off
--
-- What admins do (Postgres migration 0005). role_reviews is rebuilt (the
-- way SQLite documents; see 0002) to widen its status check and add the
-- reason of a decision.

CREATE TABLE role_reviews_new (
    id             TEXT NOT NULL PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES organizations (id),
    user_id        TEXT NOT NULL REFERENCES users (id),
    held_role      TEXT NOT NULL, -- the role when the review was opened
    requested_role TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    login_id       TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    decided_at     TEXT,
    decided_by     TEXT,
    reason         TEXT NOT NULL DEFAULT ''
) STRICT;
INSERT INTO role_reviews_new (id, org_id, user_id, held_role, requested_role, status, login_id, created_at, decided_at, decided_by)
SELECT id, org_id, user_id, held_role, requested_role, status, login_id, created_at, decided_at, decided_by FROM role_reviews;
DROP TABLE role_reviews;
ALTER TABLE role_reviews_new RENAME TO role_reviews;
CREATE UNIQUE INDEX role_reviews_one_pending ON role_reviews (user_id, requested_role) WHERE status = 'pending';
CREATE INDEX role_reviews_org_status ON role_reviews (org_id, status, created_at);

CREATE TABLE admin_audit (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id     TEXT NOT NULL DEFAULT '',
    actor_type TEXT NOT NULL CHECK (actor_type IN ('user', 'token', 'system')),
    actor_id   TEXT NOT NULL,
    actor_name TEXT NOT NULL DEFAULT '',
    action     TEXT NOT NULL,
    target     TEXT NOT NULL DEFAULT '',
    details    TEXT NOT NULL DEFAULT '{}' CHECK (json_type(details) = 'object'),
    at         TEXT NOT NULL
) STRICT;
CREATE INDEX admin_audit_org ON admin_audit (org_id, seq DESC);

CREATE TABLE api_tokens (
    id           TEXT NOT NULL PRIMARY KEY,
    name         TEXT NOT NULL CHECK (name <> ''),
    org_id       TEXT REFERENCES organizations (id),
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'write')),
    secret_hash  BLOB NOT NULL UNIQUE,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    revoked_at   TEXT,
    last_used_at TEXT
) STRICT;

CREATE INDEX users_org_created ON users (org_id, created_at DESC, id DESC);
CREATE INDEX provisioning_decisions_org_outcome ON provisioning_decisions (org_id, outcome, decided_at);
