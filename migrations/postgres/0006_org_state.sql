-- An org's state (the twin is migrations/sqlite/0006_org_state.sql).
--
-- A disabled org acts like every account in it disabled, at once and
-- reversibly; an org's allowlist (CIDRs, as service_accounts.allowed_ips
-- stores them, '' for none) applies on top of each account's. Both are
-- read with the account in the hot paths' one query.
ALTER TABLE orgs ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE orgs ADD COLUMN allowed_ips TEXT NOT NULL DEFAULT '';
