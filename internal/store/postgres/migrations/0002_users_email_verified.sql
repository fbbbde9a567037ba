-- Whether the IdP vouched for the user's email; an unverified email is never
-- used to link a login to an existing account.
ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false;
