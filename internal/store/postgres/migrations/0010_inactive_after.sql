-- Expiry without SCIM (issue 14): people the IdP forgot — created by JIT,
-- not managed by SCIM, no sign-in for the organisation's inactive_after —
-- are suspended by the provisioner's inactivity sweep, their seat freed;
-- their next sign-in reactivates them if a seat is free.

-- The organisation's inactive_after in seconds; 0 suspends nobody.
ALTER TABLE organizations ADD COLUMN inactive_after_seconds bigint NOT NULL DEFAULT 0
    CHECK (inactive_after_seconds >= 0);

-- Why a suspended user is suspended: '' (by an admin, who alone lifts it)
-- or 'inactive' (by the sweep, lifted by the person's next sign-in).
-- Cleared whenever the status changes otherwise.
ALTER TABLE users ADD COLUMN suspended_reason text NOT NULL DEFAULT ''
    CHECK (suspended_reason IN ('', 'inactive'));
-- SCIM-managed users follow their IdP's deactivations; the sweep leaves
-- them alone. SCIM sets it.
ALTER TABLE users ADD COLUMN scim_managed boolean NOT NULL DEFAULT false;

-- The sweep's candidates: an organisation's active people created by JIT.
CREATE INDEX users_org_jit_active ON users (org_id, created_at) WHERE status = 'active' AND created_by = 'jit';
