-- Your own APIs' permissions (the PostgreSQL twin is migrations/postgres/0005_api_permissions.sql).
--
-- The permissions a resource server declares: a JSON array of
-- {"name", "description"}, '' for none (its tokens then carry every
-- permission the account holds). Read in the token endpoint's and
-- introspection's one query, so a change holds on every replica at the
-- next request.
ALTER TABLE resource_servers ADD COLUMN permissions TEXT NOT NULL DEFAULT '';
