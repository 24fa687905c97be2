-- Zero-downtime secret rotation: the previous secret keeps working until
-- its grace period ends. Secrets are told apart by their public prefix
-- (the first characters after arm_sk_), so checking a presented secret
-- still costs one Argon2 verification.
ALTER TABLE service_accounts ADD COLUMN secret_prefix TEXT;
ALTER TABLE service_accounts ADD COLUMN secret_created_at BIGINT;
ALTER TABLE service_accounts ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE service_accounts ADD COLUMN previous_secret_prefix TEXT;
ALTER TABLE service_accounts ADD COLUMN previous_secret_created_at BIGINT;
ALTER TABLE service_accounts ADD COLUMN previous_secret_expires_at BIGINT;
UPDATE service_accounts SET secret_created_at = created_at WHERE secret_hash IS NOT NULL;

CREATE INDEX audit_events_org_id ON audit_events (org_id, id);
