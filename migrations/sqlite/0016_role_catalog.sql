-- Neutral built-ins and role catalogs (the PostgreSQL twin is
-- migrations/postgres/0016_role_catalog.sql).
--
-- warden's built-in roles now hold only the admin plane's permissions
-- (`domain::roles`). A product's own roles and permissions come from a
-- role catalog (`WARDEN_ROLE_CATALOG`, `manage::catalog`), stored here:
--
-- catalog_permissions: permissions usable in any role and for the
-- default audience, as the admin plane's own are (`scopes_supported`).
CREATE TABLE catalog_permissions (
    name         TEXT PRIMARY KEY,
    description  TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    created_by   TEXT NOT NULL
);

-- role_additions: permissions a catalog adds to a built-in role
-- (`admin`, `viewer`, `operator`), space-separated; read with the
-- account in the hot paths' one query (`context_columns!`).
CREATE TABLE role_additions (
    role         TEXT PRIMARY KEY,
    permissions  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   TEXT NOT NULL
);

-- A database in use before this migration keeps every role and grant it
-- had: the roles and permissions that were built in until now (exactly
-- examples/catalogs/risk-platform.toml) become catalog permissions,
-- global roles and additions to the built-in roles. A database nothing
-- was ever created in (no account, person, role or API) starts neutral,
-- as a fresh one does: no grant of it can change.
CREATE TEMP TABLE legacy_in_use AS
    SELECT 1 AS yes WHERE EXISTS (SELECT 1 FROM service_accounts)
        OR EXISTS (SELECT 1 FROM console_members)
        OR EXISTS (SELECT 1 FROM roles)
        OR EXISTS (SELECT 1 FROM global_roles)
        OR EXISTS (SELECT 1 FROM resource_servers);

INSERT INTO catalog_permissions (name, description, created_at, created_by)
SELECT p.name, p.description, CAST(strftime('%s', 'now') AS INTEGER), 'migration:0016'
FROM (SELECT 'risks:read' AS name, 'Read risks' AS description
      UNION ALL SELECT 'risks:write', 'Change risks'
      UNION ALL SELECT 'incidents:read', 'Read incidents'
      UNION ALL SELECT 'incidents:write', 'Change incidents') p
WHERE EXISTS (SELECT 1 FROM legacy_in_use);

INSERT INTO global_roles (id, description, permissions, created_at, created_by)
SELECT r.id, r.description, r.permissions, CAST(strftime('%s', 'now') AS INTEGER), 'migration:0016'
FROM (SELECT 'editor' AS id, 'Read and change risks and incidents' AS description,
             'incidents:read incidents:write org:read risks:read risks:write' AS permissions
      UNION ALL SELECT 'risk-viewer', 'Read risks', 'risks:read'
      UNION ALL SELECT 'risk-editor', 'Read and change risks', 'risks:read risks:write'
      UNION ALL SELECT 'incident-viewer', 'Read incidents', 'incidents:read'
      UNION ALL SELECT 'incident-editor', 'Read and change incidents',
                       'incidents:read incidents:write') r
WHERE EXISTS (SELECT 1 FROM legacy_in_use)
ON CONFLICT (id) DO NOTHING;

INSERT INTO role_additions (role, permissions, created_at, created_by)
SELECT r.role, r.permissions, CAST(strftime('%s', 'now') AS INTEGER), 'migration:0016'
FROM (SELECT 'admin' AS role,
             'incidents:read incidents:write risks:read risks:write' AS permissions
      UNION ALL SELECT 'viewer', 'incidents:read risks:read'
      UNION ALL SELECT 'operator',
                       'incidents:read incidents:write risks:read risks:write') r
WHERE EXISTS (SELECT 1 FROM legacy_in_use);

DROP TABLE legacy_in_use;

-- The default org was inserted with created_at 0 (shown as 1970): it was
-- created when the database was, at its first migration.
UPDATE orgs SET created_at = COALESCE(
    (SELECT CAST(strftime('%s', installed_on) AS INTEGER) FROM _sqlx_migrations WHERE version = 1),
    CAST(strftime('%s', 'now') AS INTEGER))
WHERE id = 'default' AND created_at = 0;
