-- The share of max_seats at which the provisioner warns the organisation's
-- admins that seats run out (seats.threshold-reached); 0 turns it off.
ALTER TABLE organizations ADD COLUMN seat_warning_percent smallint NOT NULL DEFAULT 90
    CHECK (seat_warning_percent BETWEEN 0 AND 100);

-- The notifier lists an organisation's admins.
CREATE INDEX users_org_role ON users (org_id, role) WHERE status = 'active';
