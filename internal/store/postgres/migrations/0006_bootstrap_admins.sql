-- The organisations file can name initial admins by email: such a person
-- gets the organisation's admin role at their first sign-in (with an email
-- their IdP vouches for), the only way JIT grants that role.
ALTER TABLE organizations ADD COLUMN initial_admins text[] NOT NULL DEFAULT '{}';
