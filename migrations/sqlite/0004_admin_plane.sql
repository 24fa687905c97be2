-- Admin-plane safety (the PostgreSQL twin is migrations/postgres/0004_admin_plane.sql).
--
-- `version` moves on with every change an admin or the operator makes to
-- an account (not with bookkeeping such as last use). Writes are
-- conditional on the version they read, so no change is lost between a
-- read and a write, and it is the account's ETag.
ALTER TABLE service_accounts ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- Rotated-out secrets, each with its own grace period: a JSON array of
-- {"prefix", "hash", "created_at", "expires_at"}, '' for none. Replaces the
-- single previous_secret_* slot, which a second rotation overwrote.
ALTER TABLE service_accounts ADD COLUMN previous_secrets TEXT NOT NULL DEFAULT '';
UPDATE service_accounts
   SET previous_secrets = json_array(json_object(
         'prefix', previous_secret_prefix,
         'hash', previous_secret_hash,
         'created_at', previous_secret_created_at,
         'expires_at', previous_secret_expires_at))
 WHERE previous_secret_hash IS NOT NULL
   AND previous_secret_prefix IS NOT NULL
   AND previous_secret_expires_at IS NOT NULL;
ALTER TABLE service_accounts DROP COLUMN previous_secret_hash;
ALTER TABLE service_accounts DROP COLUMN previous_secret_prefix;
ALTER TABLE service_accounts DROP COLUMN previous_secret_created_at;
ALTER TABLE service_accounts DROP COLUMN previous_secret_expires_at;

-- A revoked refresh-token family must stay revoked while any of its tokens
-- can still be presented, whatever the refresh TTL was when they were
-- issued: revocations are now kept for the longest TTL warden accepts (90
-- days). Rows written before were kept only for the TTL of the day.
UPDATE refresh_families_revoked SET expires_at = revoked_at + 7776000
 WHERE expires_at < revoked_at + 7776000;

-- Per-account usage, kept whatever the audit setting: tokens issued,
-- refreshed and failed authentications per hour, and the address of the
-- last use. `hour` is the Unix time of the hour's start.
CREATE TABLE account_usage (
    account_id  TEXT NOT NULL,
    hour        INTEGER NOT NULL,
    issued      INTEGER NOT NULL DEFAULT 0,
    refreshed   INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, hour)
);
CREATE INDEX account_usage_hour ON account_usage (hour);
ALTER TABLE service_accounts ADD COLUMN last_used_ip TEXT;

-- Resource servers rotate secrets like accounts: the current secret's
-- public prefix, and rotated-out secrets each with its own grace period.
ALTER TABLE resource_servers ADD COLUMN secret_prefix TEXT;
ALTER TABLE resource_servers ADD COLUMN previous_secrets TEXT NOT NULL DEFAULT '';
