-- Held sign-ups (as GitLab's user cap): per organisation, whether a new
-- person is held for an admin's approval (new_people: hold) and what
-- happens to them when no seat is free (when_full: refuse or hold). A held
-- person is a user with status held: their identity is linked, they take
-- no seat and are never signed in until an admin approves them.
ALTER TABLE organizations
    ADD COLUMN new_people text NOT NULL DEFAULT 'active' CHECK (new_people IN ('active', 'hold')),
    ADD COLUMN when_full text NOT NULL DEFAULT 'refuse' CHECK (when_full IN ('refuse', 'hold'));

ALTER TABLE users DROP CONSTRAINT users_status_check;
ALTER TABLE users ADD CONSTRAINT users_status_check
    CHECK (status IN ('active', 'suspended', 'deprovisioned', 'held'));

-- Admins list the held people of an organisation, oldest first.
CREATE INDEX users_org_held ON users (org_id, created_at) WHERE status = 'held';
