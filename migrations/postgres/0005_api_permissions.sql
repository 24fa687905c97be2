-- Your own APIs' permissions (the SQLite twin is migrations/sqlite/0005_api_permissions.sql).
--
-- The permissions a resource server declares: a JSON array of
-- {"name", "description"}, '' for none (its tokens then carry every
-- permission the account holds). Read in the token endpoint's and
-- introspection's one query, so a change holds on every replica at the
-- next request.
ALTER TABLE resource_servers ADD COLUMN permissions TEXT NOT NULL DEFAULT '';

-- The person a platform call was made for: a SaaS backend holding an
-- operator account names its own user in `Warden-On-Behalf-Of`, and the
-- audit event keeps it. NULL when the caller acted for itself.
ALTER TABLE audit_events ADD COLUMN on_behalf_of TEXT;
