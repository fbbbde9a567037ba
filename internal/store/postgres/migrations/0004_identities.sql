-- One person, many identities. A user had exactly one IdP identity (its
-- connection_id and external_id); now it has any number of them, one row
-- each, so that the same person signs in through SAML and OIDC side by side,
-- or through a new IdP that replaces the old one, as one user with one seat.
CREATE TABLE identities (
    org_id        text NOT NULL,
    connection_id text NOT NULL,
    external_id   text NOT NULL CHECK (external_id <> ''),
    user_id       uuid NOT NULL REFERENCES users (id),
    -- How the identity came to the user: created (the user was created by
    -- its first login), email (linked by a verified email under the
    -- organisation's link policy), replaces (linked by email through a
    -- connection that replaces another), admin (linked by an admin).
    linked_by     text NOT NULL CHECK (linked_by IN ('created', 'email', 'replaces', 'admin')),
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, connection_id, external_id),
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id)
);
CREATE INDEX identities_user ON identities (user_id);

-- Every existing user keeps its identity. A user created by JIT came with
-- it; another (created by an admin or the app) was linked to it by email.
INSERT INTO identities (org_id, connection_id, external_id, user_id, linked_by, first_seen_at, last_seen_at)
SELECT org_id, connection_id, external_id, id,
       CASE WHEN created_by = 'jit' THEN 'created' ELSE 'email' END,
       created_at, greatest(created_at, coalesce(last_login_at, created_at))
FROM users WHERE connection_id IS NOT NULL;

-- The index, foreign key and check on these columns go with them.
ALTER TABLE users DROP COLUMN connection_id, DROP COLUMN external_id;

-- What people see in the sign-in chooser, and the connection whose people
-- this one takes over (an IdP migration: its logins link by email to the
-- replaced connection's users).
ALTER TABLE connections ADD COLUMN display_name text NOT NULL DEFAULT '',
                        ADD COLUMN replaces text NOT NULL DEFAULT '';

-- Where a person lands after signing in without a return_to.
ALTER TABLE organizations ADD COLUMN landing_url text NOT NULL DEFAULT '';
