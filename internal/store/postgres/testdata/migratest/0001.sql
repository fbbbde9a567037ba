-- Test data written right after migration 0001, in that version's schema.
-- TestMigrations/StepByStep applies every later migration on top of it and
-- reads it back through the store (checkMigratestData). When a migration
-- changes these tables, add NNNN.sql for it; never edit this file.
INSERT INTO organizations (id, name, max_seats, seats_used, roles, default_role, jit_role_ceiling,
    update_policy, link_by_email, verified_domains)
VALUES ('migratest', 'Migratest', 5, 1, '{viewer,editor,admin}', 'viewer', 'editor',
    'prefer-idp', 'verified-domains', '{migratest.example}');

INSERT INTO connections (org_id, id, protocol, settings)
VALUES ('migratest', 'okta', 'saml', '{"metadata_url": "https://idp.migratest.example/metadata"}');

INSERT INTO users (id, org_id, connection_id, external_id, email, given_name, family_name, display_name,
    groups, role, status, attributes, created_by, last_login_at)
VALUES ('6f0d1a52-8f4e-4c55-9a57-3c1f0e2b7d10', 'migratest', 'okta', 'ada@idp', 'Ada@Migratest.Example',
    'Ada', 'Lovelace', 'Ada Lovelace', '{engineering}', 'viewer', 'active',
    '{"department": ["R&D"]}', 'jit', now());

INSERT INTO role_reviews (id, org_id, user_id, held_role, requested_role, status, login_id)
VALUES ('0b8c7e55-2a43-4f0e-8d7e-4b1c9a6f3e21', 'migratest', '6f0d1a52-8f4e-4c55-9a57-3c1f0e2b7d10',
    'viewer', 'editor', 'pending', 'migratest-login-1');

INSERT INTO outbox (event_id, subject, header, data)
VALUES ('migratest-evt-1', 'jit.users.user.created.migratest', '{"Nats-Msg-Id": ["migratest-evt-1"]}',
    convert_to('{"hello":"world"}', 'UTF8'));

INSERT INTO provisioning_decisions (login_id, org_id, connection_id, external_id, outcome, reason, user_id, result)
VALUES ('migratest-login-1', 'migratest', 'okta', 'ada@idp', 'created', '',
    '6f0d1a52-8f4e-4c55-9a57-3c1f0e2b7d10', '{"login_id": "migratest-login-1", "outcome": "created"}');
