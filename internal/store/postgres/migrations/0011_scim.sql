-- SCIM 2.0 (issue 14): a provisioning client (Okta, Entra ID) creates,
-- changes and removes an organisation's people and groups beside JIT.

-- How SCIM knows a user. scim_user_name and scim_external_id are the
-- client's userName and externalId; scim_managed (0010) is set once SCIM
-- wrote the user (created it, or adopted a JIT-created one); scim_deleted
-- once a SCIM DELETE deprovisioned them (SCIM no longer sees them).
ALTER TABLE users
    ADD COLUMN scim_user_name text,
    ADD COLUMN scim_external_id text,
    ADD COLUMN scim_deleted boolean NOT NULL DEFAULT false,
    -- Deprovisioned because SCIM said so (active false, DELETE): SCIM may
    -- bring back only those, never a person an admin deprovisioned.
    ADD COLUMN scim_deactivated boolean NOT NULL DEFAULT false;
ALTER TABLE users DROP CONSTRAINT users_created_by_check;
ALTER TABLE users ADD CONSTRAINT users_created_by_check CHECK (created_by IN ('jit', 'admin', 'app', 'scim'));
-- One live SCIM userName per organisation, compared without case (RFC
-- 7643: userName is not case-exact).
CREATE UNIQUE INDEX users_scim_user_name_key ON users (org_id, lower(scim_user_name))
    WHERE scim_user_name IS NOT NULL AND NOT scim_deleted;
CREATE INDEX users_scim_external_id ON users (org_id, scim_external_id) WHERE scim_external_id IS NOT NULL;
-- SCIM's userName lookup (its userName, else the email), which IdPs make
-- before every create.
CREATE INDEX users_scim_user_name_lookup ON users (org_id, lower(coalesce(scim_user_name, email)));

-- SCIM groups and their members. Membership feeds the users' groups, and
-- so the group -> role rules.
CREATE TABLE scim_groups (
    id           uuid PRIMARY KEY,
    org_id       text NOT NULL REFERENCES organizations (id),
    display_name text NOT NULL CHECK (display_name <> ''),
    external_id  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX scim_groups_name_key ON scim_groups (org_id, lower(display_name));
CREATE TABLE scim_group_members (
    group_id uuid NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    user_id  uuid NOT NULL REFERENCES users (id),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX scim_group_members_user ON scim_group_members (user_id);

-- SCIM tokens: an organisation's provisioning client authenticates with an
-- API token of scope scim, which reaches /scim/v2/ only.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_scope_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_scope_check CHECK (scope IN ('read', 'write', 'scim'));

-- An identity SCIM linked ahead of the person's first sign-in (the
-- connection's scim_identity names which SCIM attribute is the login's
-- external id).
ALTER TABLE identities DROP CONSTRAINT identities_linked_by_check;
ALTER TABLE identities ADD CONSTRAINT identities_linked_by_check
    CHECK (linked_by IN ('created', 'email', 'replaces', 'admin', 'scim'));
