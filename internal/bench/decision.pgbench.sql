-- The provisioner's transaction for a first-seen login that creates a user
-- (internal/provisioner/decide.go over internal/store/postgres/tx.go),
-- statement for statement, for pgbench: the database's own limit for this
-- work on this machine. Variables: :norgs (pgbench -D norgs=N).
\set ext random(1, 9000000000000000000)
\set org random(0, :norgs - 1)
BEGIN;
SELECT login_id, org_id, connection_id, external_id, outcome, reason, coalesce(user_id::text, ''), result, decided_at
  FROM provisioning_decisions WHERE login_id = 'pgb-' || :ext;
SELECT id, name, max_seats, seats_used, roles, default_role, jit_role_ceiling, update_policy, link_by_email, verified_domains,
       seat_warning_percent, landing_url, initial_admins
  FROM organizations WHERE id = 'bench-' || :org;
SELECT org_id, id, protocol, settings::text, display_name, replaces FROM connections WHERE org_id = 'bench-' || :org ORDER BY id;
SELECT u.id::text, u.org_id, coalesce(u.email, ''), u.email_verified, u.given_name, u.family_name,
       u.display_name, u.groups, u.role, u.status, u.attributes, u.created_by, u.created_at, u.updated_at, u.last_login_at
  FROM identities i JOIN users u ON u.id = i.user_id
  WHERE i.org_id = 'bench-' || :org AND i.connection_id = 'idp' AND i.external_id = 'pgb-' || :ext FOR UPDATE OF u;
SELECT u.id::text, u.org_id, coalesce(u.email, ''), u.email_verified, u.given_name, u.family_name,
       u.display_name, u.groups, u.role, u.status, u.attributes, u.created_by, u.created_at, u.updated_at, u.last_login_at
  FROM users u WHERE org_id = 'bench-' || :org AND lower(email) = lower('pgb-' || :ext || '@bench.example') FOR UPDATE;
UPDATE organizations SET seats_used = seats_used + 1, updated_at = now()
  WHERE id = 'bench-' || :org AND seats_used < max_seats
  RETURNING id, name, max_seats, seats_used, roles, default_role, jit_role_ceiling, update_policy, link_by_email, verified_domains,
            seat_warning_percent, landing_url, initial_admins;
INSERT INTO users (id, org_id, email, given_name, family_name, display_name,
                   groups, role, status, attributes, created_by, email_verified, last_login_at)
  VALUES (gen_random_uuid(), 'bench-' || :org, 'pgb-' || :ext || '@bench.example', 'Bench', '', '',
          '{}', 'member', 'active', '{}', 'jit', true, now())
  RETURNING id::text, org_id, coalesce(email, ''), email_verified, given_name,
            family_name, display_name, groups, role, status, attributes, created_by, created_at, updated_at, last_login_at;
INSERT INTO identities (org_id, connection_id, external_id, user_id, linked_by)
  SELECT 'bench-' || :org, 'idp', 'pgb-' || :ext, u.id, 'created' FROM users u
  WHERE u.org_id = 'bench-' || :org AND lower(u.email) = lower('pgb-' || :ext || '@bench.example')
  RETURNING org_id, connection_id, external_id, user_id::text, linked_by, first_seen_at, last_seen_at;
INSERT INTO outbox (event_id, subject, header, data)
  VALUES (gen_random_uuid()::text, 'jit.user.created.bench-' || :org,
          '{"ce-id": ["019a0000-0000-7000-8000-000000000000"], "ce-time": ["2026-11-22T12:00:00.000000000Z"], "ce-type": ["io.jitprov.user.created.v1"], "ce-source": ["/jitprov/provisioner"], "ce-subject": ["00000000-0000-4000-8000-000000000000"], "content-type": ["application/json"], "ce-dataschema": ["https://jitprov.io/schemas/user.created/v1.json"], "ce-specversion": ["1.0"], "traceparent": ["00-00000000000000000000000000000000-0000000000000000-01"]}',
          convert_to('{"user":{"id":"00000000-0000-4000-8000-000000000000","organization_id":"bench-0","connection_id":"idp","external_id":"pgb-0000000000000000000","email":"pgb-0000000000000000000@bench.example","given_name":"Bench","role":"member","status":"active","created_by":"jit","created_at":"2026-11-22T12:00:00.000000Z","updated_at":"2026-11-22T12:00:00.000000Z"},"login_id":"019a0000-0000-7000-8000-000000000000"}', 'UTF8'));
INSERT INTO provisioning_decisions (login_id, org_id, connection_id, external_id, outcome, reason, user_id, result, decided_at)
  VALUES ('pgb-' || :ext, 'bench-' || :org, 'idp', 'pgb-' || :ext, 'created', '', gen_random_uuid(),
          '{"login_id":"019a0000-0000-7000-8000-000000000000","outcome":"created","user":{"id":"00000000-0000-4000-8000-000000000000","role":"member","status":"active","email":"pgb-0000000000000000000@bench.example"},"decided_at":"2026-11-22T12:00:00.000000Z"}',
          now());
COMMIT;
