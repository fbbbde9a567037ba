-- Test data in schema version 1, as an earlier jitprov dev database holds
-- it. TestMigrationsKeepData applies every later migration on top of it and
-- reads it back through the store; never edit this file.
INSERT INTO organizations (id, name, max_seats, seats_used, roles, default_role, jit_role_ceiling,
    update_policy, link_by_email, verified_domains, created_at, updated_at)
VALUES ('migratest', 'Migratest', 5, 2, '["viewer","editor","admin"]', 'viewer', 'editor',
    'prefer-idp', 'verified-domains', '["migratest.example"]',
    '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');

INSERT INTO connections (org_id, id, protocol, settings, created_at, updated_at)
VALUES ('migratest', 'okta', 'saml', '{"idp_metadata_url": "https://idp.migratest.example/metadata"}',
    '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');

-- Ada came by JIT; Bob was created by an admin and linked at his first login.
INSERT INTO users (id, org_id, connection_id, external_id, email, email_lower, email_verified, given_name,
    family_name, display_name, groups, role, status, attributes, created_by, created_at, updated_at, last_login_at)
VALUES ('6f0d1a52-8f4e-4c55-9a57-3c1f0e2b7d10', 'migratest', 'okta', 'ada@idp', 'Ada@Migratest.Example',
    'ada@migratest.example', 1, 'Ada', 'Lovelace', 'Ada Lovelace', '["engineering"]', 'viewer', 'active',
    '{"department":["R&D"]}', 'jit', '2026-01-02T00:00:00.000000Z', '2026-01-03T00:00:00.000000Z',
    '2026-01-04T00:00:00.000000Z'),
    ('9a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d', 'migratest', 'okta', 'bob@idp', 'bob@migratest.example',
    'bob@migratest.example', 1, 'Bob', '', '', '[]', 'editor', 'suspended', '{}', 'admin',
    '2026-01-02T00:00:00.000000Z', '2026-01-02T00:00:00.000000Z', NULL),
    -- Carol has no identity yet.
    ('c0ffee00-0000-4000-8000-000000000001', 'migratest', NULL, NULL, 'carol@migratest.example',
    'carol@migratest.example', 0, '', '', '', '[]', 'viewer', 'active', '{}', 'app',
    '2026-01-02T00:00:00.000000Z', '2026-01-02T00:00:00.000000Z', NULL);

INSERT INTO role_reviews (id, org_id, user_id, held_role, requested_role, status, login_id, created_at)
VALUES ('0b8c7e55-2a43-4f0e-8d7e-4b1c9a6f3e21', 'migratest', '6f0d1a52-8f4e-4c55-9a57-3c1f0e2b7d10',
    'viewer', 'editor', 'pending', 'migratest-login-1', '2026-01-02T00:00:00.000000Z');

INSERT INTO provisioning_decisions (login_id, org_id, connection_id, external_id, outcome, reason, user_id, result, decided_at)
VALUES ('migratest-login-1', 'migratest', 'okta', 'ada@idp', 'created', '',
    '6f0d1a52-8f4e-4c55-9a57-3c1f0e2b7d10', '{"login_id":"migratest-login-1","outcome":"created"}',
    '2026-01-02T00:00:00.000000Z');
