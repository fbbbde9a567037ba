-- Per-field ownership (issue 14): who may change each field of a user once
-- it exists — the IdP (sign-ins and SCIM), SCIM only, the application
-- only, or nobody after the first login.

-- The organisation's field_owners: field -> owner, {} for none (every
-- field then follows update_policy, as before).
ALTER TABLE organizations ADD COLUMN field_owners jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(field_owners) = 'object');

-- A change of a user's field that its owner overruled, for admins to read:
-- one row per (user, field), the latest, with how often it happened, so
-- that a storm of sign-ins does not grow the table.
CREATE TABLE field_conflicts (
    org_id   text NOT NULL REFERENCES organizations (id),
    user_id  uuid NOT NULL REFERENCES users (id),
    field    text NOT NULL CHECK (field <> ''),
    source   text NOT NULL CHECK (source IN ('login', 'scim')),
    rejected jsonb NOT NULL CHECK (jsonb_typeof(rejected) = 'array'),
    kept     jsonb NOT NULL CHECK (jsonb_typeof(kept) = 'array'),
    owner    text NOT NULL CHECK (owner IN ('idp', 'scim', 'app', 'first-login-only')),
    login_id text NOT NULL DEFAULT '',
    actor    text NOT NULL DEFAULT '',
    count    bigint NOT NULL DEFAULT 1 CHECK (count > 0),
    first_at timestamptz NOT NULL DEFAULT now(),
    at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id, field)
);
CREATE INDEX field_conflicts_org_at ON field_conflicts (org_id, at DESC);
