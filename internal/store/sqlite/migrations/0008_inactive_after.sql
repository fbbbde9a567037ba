-- Expiry without SCIM (Postgres migration 0010): organisations'
-- inactive_after, why a user is suspended, and whether SCIM manages them.
-- Only columns are added (no check constraint of an existing column
-- changes), so no table is rebuilt.

-- The organisation's inactive_after in seconds; 0 suspends nobody.
ALTER TABLE organizations ADD COLUMN inactive_after_seconds INTEGER NOT NULL DEFAULT 0
    CHECK (inactive_after_seconds >= 0);

-- Why a suspended user is suspended: '' (by an admin, who alone lifts it)
-- or 'inactive' (by the sweep, lifted by the person's next sign-in).
ALTER TABLE users ADD COLUMN suspended_reason TEXT NOT NULL DEFAULT ''
    CHECK (suspended_reason IN ('', 'inactive'));
-- SCIM-managed users follow their IdP's deactivations; the sweep leaves
-- them alone. SCIM sets it.
ALTER TABLE users ADD COLUMN scim_managed INTEGER NOT NULL DEFAULT 0 CHECK (scim_managed IN (0, 1));

-- The sweep's candidates: an organisation's active people created by JIT.
CREATE INDEX users_org_jit_active ON users (org_id, created_at) WHERE status = 'active' AND created_by = 'jit';
