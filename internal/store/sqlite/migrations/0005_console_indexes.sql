-- Indexes for the console's reads (Postgres migration 0007; SQLite has no
-- trigram index: user search scans the organisation's users).
CREATE INDEX provisioning_decisions_org_external ON provisioning_decisions (org_id, external_id, decided_at DESC);
CREATE INDEX provisioning_decisions_org_user ON provisioning_decisions (org_id, user_id, decided_at DESC) WHERE user_id IS NOT NULL;
CREATE INDEX provisioning_decisions_org_day ON provisioning_decisions (org_id, decided_at, outcome);
CREATE INDEX admin_audit_org_target ON admin_audit (org_id, target, seq DESC);
