-- Test data written right after migration 0004, in that version's schema:
-- a user with two identities (SAML and OIDC) and a connection that replaces
-- another. TestMigrations/StepByStep reads it back; never edit this file.
INSERT INTO connections (org_id, id, protocol, settings, display_name, replaces)
VALUES ('migratest', 'entra', 'oidc', '{"issuer": "https://login.migratest.example/v2.0"}', 'Entra ID', 'okta');

INSERT INTO identities (org_id, connection_id, external_id, user_id, linked_by)
VALUES ('migratest', 'entra', 'ada-oid', '6f0d1a52-8f4e-4c55-9a57-3c1f0e2b7d10', 'replaces');

UPDATE organizations SET landing_url = 'https://app.migratest.example/' WHERE id = 'migratest';
