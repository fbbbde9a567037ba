-- Where a user's role came from (Postgres migration 0009), so that roles
-- follow the IdP: a role the IdP's claims gave ('idp') is taken away by a
-- later login that no longer carries it; a role an admin granted ('admin')
-- never is. A new column with its own check needs no rebuild.
ALTER TABLE users ADD COLUMN role_source TEXT NOT NULL DEFAULT 'idp' CHECK (role_source IN ('idp', 'admin'));

-- Existing users: every role an admin may have granted is kept, so that
-- no upgrade takes one away. 'admin' for a user
--  * created by an admin or the application;
--  * whose current role an admin set (user.change-role in the audit log)
--    or an approved role review gave;
--  * who signed in as one of the organisations file's initial admins;
--  * whose role is above the organisation's JIT ceiling (JIT never grants
--    one: an admin did, whatever the audit log still holds).
-- Every other user's role came from JIT: 'idp'.
UPDATE users SET role_source = 'admin'
WHERE created_by IN ('admin', 'app')
   OR EXISTS (SELECT 1 FROM admin_audit a
        WHERE a.org_id = users.org_id AND a.target = users.id
          AND ((a.action = 'user.change-role' AND json_extract(a.details, '$.to') = users.role)
               OR a.action = 'user.bootstrap-admin'))
   OR EXISTS (SELECT 1 FROM role_reviews r
        WHERE r.user_id = users.id AND r.status = 'approved' AND r.requested_role = users.role)
   OR EXISTS (SELECT 1 FROM organizations o, json_each(o.roles) AS held, json_each(o.roles) AS ceiling
        WHERE o.id = users.org_id AND held.value = users.role AND ceiling.value = o.jit_role_ceiling
          AND held.key > ceiling.key);
