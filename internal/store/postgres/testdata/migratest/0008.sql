-- Test data written right after migration 0008, in that version's schema:
-- users whose role an admin granted in each way an admin can, and users
-- whose role came from JIT, for migration 0009 to tell apart
-- (role_source). TestMigrations/StepByStep reads it back; never edit this
-- file.
INSERT INTO users (id, org_id, email, role, status, created_by) VALUES
    -- Created by an admin, by the application: admin.
    ('00000008-0000-4000-8000-000000000001', 'migratest', 'bob@migratest.example', 'viewer', 'active', 'admin'),
    ('00000008-0000-4000-8000-000000000002', 'migratest', 'carol@migratest.example', 'viewer', 'active', 'app'),
    -- An admin set the role they hold: admin.
    ('00000008-0000-4000-8000-000000000003', 'migratest', 'cleo@migratest.example', 'editor', 'active', 'jit'),
    -- An admin set a role that a sign-in changed since: idp.
    ('00000008-0000-4000-8000-000000000004', 'migratest', 'fay@migratest.example', 'editor', 'active', 'jit'),
    -- An approved role review gave the role they hold: admin.
    ('00000008-0000-4000-8000-000000000005', 'migratest', 'dan@migratest.example', 'editor', 'active', 'jit'),
    -- A denied review: idp.
    ('00000008-0000-4000-8000-000000000006', 'migratest', 'gus@migratest.example', 'viewer', 'active', 'jit'),
    -- Above the JIT ceiling, nothing in the audit log: admin.
    ('00000008-0000-4000-8000-000000000007', 'migratest', 'eve@migratest.example', 'admin', 'active', 'jit'),
    -- An initial admin's first sign-in: admin.
    ('00000008-0000-4000-8000-000000000008', 'migratest', 'hal@migratest.example', 'admin', 'active', 'jit'),
    -- The ceiling role, by JIT: idp.
    ('00000008-0000-4000-8000-000000000009', 'migratest', 'ivy@migratest.example', 'editor', 'active', 'jit');

INSERT INTO admin_audit (org_id, actor_type, actor_id, action, target, details) VALUES
    ('migratest', 'user', 'someone', 'user.change-role', '00000008-0000-4000-8000-000000000003', '{"from": "viewer", "to": "editor"}'),
    ('migratest', 'user', 'someone', 'user.change-role', '00000008-0000-4000-8000-000000000004', '{"from": "editor", "to": "viewer"}'),
    ('migratest', 'system', 'initial-admins', 'user.bootstrap-admin', '00000008-0000-4000-8000-000000000008', '{"role": "admin"}'),
    -- Another organisation's entry names nobody here.
    ('', 'token', 'ops', 'user.change-role', '00000008-0000-4000-8000-000000000009', '{"to": "editor"}');

INSERT INTO role_reviews (id, org_id, user_id, held_role, requested_role, status, login_id, decided_at, decided_by) VALUES
    ('00000008-0000-4000-8000-0000000000a5', 'migratest', '00000008-0000-4000-8000-000000000005', 'viewer', 'editor',
     'approved', 'migratest-login-5', now(), 'user:someone'),
    ('00000008-0000-4000-8000-0000000000a6', 'migratest', '00000008-0000-4000-8000-000000000006', 'viewer', 'editor',
     'denied', 'migratest-login-6', now(), 'user:someone');
