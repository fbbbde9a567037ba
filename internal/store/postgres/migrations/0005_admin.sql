-- What admins do (issue 12): decide role reviews, change users, and the
-- audit of who did what; API tokens for operators and automation.

-- A review is approved, denied (with a reason) or expires unanswered.
ALTER TABLE role_reviews ADD COLUMN reason text NOT NULL DEFAULT '';
ALTER TABLE role_reviews DROP CONSTRAINT role_reviews_status_check;
ALTER TABLE role_reviews ADD CONSTRAINT role_reviews_status_check
    CHECK (status IN ('pending', 'approved', 'denied', 'expired'));
-- The review queue of an organisation, pending first and oldest first.
CREATE INDEX role_reviews_org_status ON role_reviews (org_id, status, created_at);

-- Every admin action, with who did it: a user (signed in through the
-- organisation's SSO), a token, or the system (e.g. a review expiring).
CREATE TABLE admin_audit (
    seq        bigserial PRIMARY KEY,
    org_id     text NOT NULL DEFAULT '', -- '' for an action on no organisation
    actor_type text NOT NULL CHECK (actor_type IN ('user', 'token', 'system')),
    actor_id   text NOT NULL,
    actor_name text NOT NULL DEFAULT '',
    action     text NOT NULL,
    target     text NOT NULL DEFAULT '',
    details    jsonb NOT NULL DEFAULT '{}',
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_audit_org ON admin_audit (org_id, seq DESC);

-- API tokens: only a hash of the secret is kept; shown once at creation.
CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    name         text NOT NULL CHECK (name <> ''),
    org_id       text REFERENCES organizations (id), -- NULL: every organisation
    scope        text NOT NULL CHECK (scope IN ('read', 'write')),
    secret_hash  bytea NOT NULL UNIQUE,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    last_used_at timestamptz
);

-- The users table of the console: newest first, paged by (created_at, id).
CREATE INDEX users_org_created ON users (org_id, created_at DESC, id DESC);
-- The audit log of decisions, by outcome (e.g. every refusal).
CREATE INDEX provisioning_decisions_org_outcome ON provisioning_decisions (org_id, outcome, decided_at);
