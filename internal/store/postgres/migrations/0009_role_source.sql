-- Where a user's role came from, so that roles follow the IdP: a role the
-- IdP's claims gave ('idp') is taken away by a later login that no longer
-- carries it; a role an admin granted ('admin') never is.
ALTER TABLE users
    ADD COLUMN role_source text NOT NULL DEFAULT 'idp' CHECK (role_source IN ('idp', 'admin'));

-- Existing users: every role an admin may have granted is kept, so that
-- no upgrade takes one away. 'admin' for a user
--  * created by an admin or the application;
--  * whose current role an admin set (user.change-role in the audit log)
--    or an approved role review gave;
--  * who signed in as one of the organisations file's initial admins;
--  * whose role is above the organisation's JIT ceiling (JIT never grants
--    one: an admin did, whatever the audit log still holds).
-- Every other user's role came from JIT: 'idp'.
UPDATE users AS u SET role_source = 'admin'
FROM organizations AS o
WHERE o.id = u.org_id AND (
    u.created_by IN ('admin', 'app')
    OR EXISTS (SELECT 1 FROM admin_audit a
        WHERE a.org_id = u.org_id AND a.target = u.id::text
          AND ((a.action = 'user.change-role' AND a.details->>'to' = u.role)
               OR a.action = 'user.bootstrap-admin'))
    OR EXISTS (SELECT 1 FROM role_reviews r
        WHERE r.user_id = u.id AND r.status = 'approved' AND r.requested_role = u.role)
    OR coalesce(array_position(o.roles, u.role), 0) > coalesce(array_position(o.roles, o.jit_role_ceiling), 0)
);
