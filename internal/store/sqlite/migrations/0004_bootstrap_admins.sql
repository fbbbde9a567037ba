-- Initial admins by email (Postgres migration 0006).
ALTER TABLE organizations ADD COLUMN initial_admins TEXT NOT NULL DEFAULT '[]' CHECK (json_type(initial_admins) = 'array');
