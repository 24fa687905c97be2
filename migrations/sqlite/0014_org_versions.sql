-- Organizations get a version (the twin is migrations/postgres/0014_org_versions.sql).
--
-- Every change to an org's name, status or allowlist moves it by one, and
-- writes only if the org is still at the version it read: a rename racing
-- a disable can no longer write the old status back. The admin API shows
-- it as the org's ETag and takes it in If-Match.
ALTER TABLE orgs ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
