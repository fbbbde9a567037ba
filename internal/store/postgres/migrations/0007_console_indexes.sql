-- Indexes for the console's and the admin API's reads on large
-- organisations (measured by BenchmarkConsoleQueries in internal/admin:
-- 100,000 users, 1,000,000 decisions).

-- A person's decisions (the user page, "why was Bob refused?").
CREATE INDEX provisioning_decisions_org_external ON provisioning_decisions (org_id, external_id, decided_at DESC);
CREATE INDEX provisioning_decisions_org_user ON provisioning_decisions (org_id, user_id, decided_at DESC) WHERE user_id IS NOT NULL;
-- The dashboard's decisions per day and outcome: a finished day is counted
-- once (decision_days, with decision_days_done marking the days counted,
-- those without decisions included) and today is counted from the index.
CREATE INDEX provisioning_decisions_org_day ON provisioning_decisions (org_id, decided_at, outcome);
CREATE TABLE decision_days (
    org_id  text NOT NULL,
    day     date NOT NULL,
    outcome text NOT NULL,
    count   integer NOT NULL CHECK (count > 0),
    PRIMARY KEY (org_id, day, outcome)
);
CREATE TABLE decision_days_done (
    org_id text NOT NULL,
    day    date NOT NULL,
    PRIMARY KEY (org_id, day)
);
-- The admin actions on one user.
CREATE INDEX admin_audit_org_target ON admin_audit (org_id, target, seq DESC);

-- Searching users by any part of their email or name takes trigram
-- indexes (pg_trgm, shipped with PostgreSQL and trusted: a database owner
-- may create it). Where the migrating role may not, search still works,
-- without these indexes: slower on large organisations.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX users_email_trgm ON users USING gin (lower(coalesce(email, '')) gin_trgm_ops);
    CREATE INDEX users_name_trgm ON users USING gin (lower(given_name || ' ' || family_name || ' ' || display_name) gin_trgm_ops);
EXCEPTION WHEN insufficient_privilege OR undefined_file OR feature_not_supported THEN
    RAISE NOTICE 'pg_trgm is not available (%): user search works without its trigram indexes, slower on large organisations', SQLERRM;
END
$$;
