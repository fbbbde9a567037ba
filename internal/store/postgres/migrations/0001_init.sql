-- jitprov schema, version 1.

CREATE TABLE organizations (
    id               text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name             text NOT NULL,
    max_seats        integer NOT NULL CHECK (max_seats >= 0),
    -- seats_used only moves through the conditional UPDATE in TakeSeat, so it
    -- never passes max_seats by provisioning; an admin may lower max_seats
    -- below it, which stops new seats without touching existing users.
    seats_used       integer NOT NULL DEFAULT 0 CHECK (seats_used >= 0),
    roles            text[] NOT NULL CHECK (cardinality(roles) >= 2),
    default_role     text NOT NULL,
    jit_role_ceiling text NOT NULL,
    update_policy    text NOT NULL CHECK (update_policy IN ('prefer-idp', 'prefer-app')),
    link_by_email    text NOT NULL CHECK (link_by_email IN ('never', 'verified-domains')),
    verified_domains text[] NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (default_role = ANY (roles)),
    CHECK (jit_role_ceiling = ANY (roles)),
    -- JIT never grants the organisation admin (the last role).
    CHECK (jit_role_ceiling <> roles[cardinality(roles)]),
    CHECK (default_role <> roles[cardinality(roles)])
);

CREATE TABLE connections (
    org_id     text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id         text NOT NULL CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,127}$'),
    protocol   text NOT NULL CHECK (protocol IN ('saml', 'oidc')),
    settings   jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id)
);

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    org_id        text NOT NULL REFERENCES organizations (id),
    connection_id text,
    external_id   text,
    email         text,
    given_name    text NOT NULL DEFAULT '',
    family_name   text NOT NULL DEFAULT '',
    display_name  text NOT NULL DEFAULT '',
    groups        text[] NOT NULL DEFAULT '{}',
    role          text NOT NULL,
    status        text NOT NULL CHECK (status IN ('active', 'suspended', 'deprovisioned')),
    attributes    jsonb NOT NULL DEFAULT '{}',
    created_by    text NOT NULL CHECK (created_by IN ('jit', 'admin', 'app')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id),
    CHECK ((connection_id IS NULL) = (external_id IS NULL))
);
-- One user per IdP identity, and one user per email, in each organisation.
CREATE UNIQUE INDEX users_external_id_key ON users (org_id, connection_id, external_id);
CREATE UNIQUE INDEX users_email_key ON users (org_id, lower(email));

CREATE TABLE role_reviews (
    id             uuid PRIMARY KEY,
    org_id         text NOT NULL REFERENCES organizations (id),
    user_id        uuid NOT NULL REFERENCES users (id),
    held_role      text NOT NULL, -- the role when the review was opened
    requested_role text NOT NULL,
    status         text NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
    login_id       text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    decided_at     timestamptz,
    decided_by     text
);
CREATE UNIQUE INDEX role_reviews_one_pending ON role_reviews (user_id, requested_role) WHERE status = 'pending';

-- Events decided in a transaction, published by the outbox relay.
CREATE TABLE outbox (
    seq        bigserial PRIMARY KEY,
    event_id   text NOT NULL UNIQUE,
    subject    text NOT NULL,
    header     jsonb NOT NULL,
    data       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;

-- Audit log of every provisioning decision; its key makes decisions
-- idempotent under redelivery.
CREATE TABLE provisioning_decisions (
    login_id      text PRIMARY KEY,
    org_id        text NOT NULL,
    connection_id text NOT NULL,
    external_id   text NOT NULL,
    outcome       text NOT NULL,
    reason        text NOT NULL DEFAULT '',
    user_id       uuid,
    result        jsonb NOT NULL,
    decided_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX provisioning_decisions_org ON provisioning_decisions (org_id, decided_at);
