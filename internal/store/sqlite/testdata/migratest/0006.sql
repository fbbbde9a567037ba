-- Test data in schema version 6: users whose role an admin granted in each
-- way an admin can, and users whose role came from JIT, for migration 0007
-- to tell apart (role_source). TestRoleSourceMigration applies 0007 on top
-- of it and reads it back; never edit this file.
INSERT INTO organizations (id, name, max_seats, seats_used, roles, default_role, jit_role_ceiling,
    update_policy, link_by_email, created_at, updated_at)
VALUES ('migratest', 'Migratest', 20, 10, '["viewer","editor","admin"]', 'viewer', 'editor',
    'prefer-idp', 'never', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');

INSERT INTO users (id, org_id, email, email_lower, role, status, created_by, created_at, updated_at) VALUES
    -- JIT, a pending review: idp.
    ('00000006-0000-4000-8000-000000000000', 'migratest', 'ada@migratest.example', 'ada@migratest.example', 'viewer', 'active', 'jit', '2026-01-02T00:00:00.000000Z', '2026-01-02T00:00:00.000000Z'),
    -- Created by an admin, by the application: admin.
    ('00000006-0000-4000-8000-000000000001', 'migratest', 'bob@migratest.example', 'bob@migratest.example', 'viewer', 'active', 'admin', '2026-01-02T00:00:00.000000Z', '2026-01-02T00:00:00.000000Z'),
    ('00000006-0000-4000-8000-000000000002', 'migratest', 'carol@migratest.example', 'carol@migratest.example', 'viewer', 'active', 'app', '2026-01-02T00:00:00.000000Z', '2026-01-02T00:00:00.000000Z'),
    -- An admin set the role they hold: admin.
    ('00000006-0000-4000-8000-000000000003', 'migratest', 'cleo@migratest.example', 'cleo@migratest.example', 'editor', 'active', 'jit', '2026-01-02T00:00:00.000000Z', '2026-01-02T00:00:00.000000Z'),
    -- An admin set a role that a sign-in changed since: idp.
    ('00000006-0000-4000-8000-000000000004', 'migratest', 'fay@migratest.example', 'fay@migratest.example', 'editor', 'active', 'jit', '2026-01-02T00:00:00.000000Z', '2026-01-02T00:00:00.000000Z'),
    -- An approved role review gave the role they hold: admin.
    ('00000006-0000-4000-8000-000000000005', 'migratest', 'dan@migratest.example', 'dan@migratest.example', 'editor', 'active', 'jit', '2026-01-02T00:00:00.000000Z', '2026-01-02T00:00:00.000000Z'),
    -- A denied review: idp.
    ('00000006-0000-4000-8000-000000000006', 'migratest', 'gus@migratest.example', 'gus@migratest.example', 'viewer', 'active', 'jit', '2026-01-02T00:00:00.000000Z', '2026-01-02T00:00:00.000000Z'),
    -- Above the JIT ceiling, nothing in the audit log: admin.
    ('00000006-0000-4000-8000-000000000007', 'migratest', 'eve@migratest.example', 'eve@migratest.example', 'admin', 'active', 'jit', '2026-01-02T00:00:00.000000Z', '2026-01-02T00:00:00.000000Z'),
    -- An initial admin's first sign-in: admin.
    ('00000006-0000-4000-8000-000000000008', 'migratest', 'hal@migratest.example', 'hal@migratest.example', 'admin', 'active', 'jit', '2026-01-02T00:00:00.000000Z', '2026-01-02T00:00:00.000000Z'),
    -- The ceiling role, by JIT: idp.
    ('00000006-0000-4000-8000-000000000009', 'migratest', 'ivy@migratest.example', 'ivy@migratest.example', 'editor', 'active', 'jit', '2026-01-02T00:00:00.000000Z', '2026-01-02T00:00:00.000000Z');

INSERT INTO admin_audit (org_id, actor_type, actor_id, action, target, details, at) VALUES
    ('migratest', 'user', 'someone', 'user.change-role', '00000006-0000-4000-8000-000000000003', '{"from":"viewer","to":"editor"}', '2026-01-03T00:00:00.000000Z'),
    ('migratest', 'user', 'someone', 'user.change-role', '00000006-0000-4000-8000-000000000004', '{"from":"editor","to":"viewer"}', '2026-01-03T00:00:00.000000Z'),
    ('migratest', 'system', 'initial-admins', 'user.bootstrap-admin', '00000006-0000-4000-8000-000000000008', '{"role":"admin"}', '2026-01-03T00:00:00.000000Z'),
    -- Another organisation's entry names nobody here.
    ('', 'token', 'ops', 'user.change-role', '00000006-0000-4000-8000-000000000009', '{"to":"editor"}', '2026-01-03T00:00:00.000000Z');

INSERT INTO role_reviews (id, org_id, user_id, held_role, requested_role, status, login_id, created_at, decided_at, decided_by) VALUES
    ('00000006-0000-4000-8000-0000000000a0', 'migratest', '00000006-0000-4000-8000-000000000000', 'viewer', 'editor',
     'pending', 'migratest-login-0', '2026-01-03T00:00:00.000000Z', NULL, NULL),
    ('00000006-0000-4000-8000-0000000000a5', 'migratest', '00000006-0000-4000-8000-000000000005', 'viewer', 'editor',
     'approved', 'migratest-login-5', '2026-01-03T00:00:00.000000Z', '2026-01-03T00:00:00.000000Z', 'user:someone'),
    ('00000006-0000-4000-8000-0000000000a6', 'migratest', '00000006-0000-4000-8000-000000000006', 'viewer', 'editor',
     'denied', 'migratest-login-6', '2026-01-03T00:00:00.000000Z', '2026-01-03T00:00:00.000000Z', 'user:someone');
