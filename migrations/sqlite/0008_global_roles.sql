-- Global roles and re-registrable audiences (the PostgreSQL twin is
-- migrations/postgres/0008_global_roles.sql).
--
-- Global roles: defined by the operator, visible in every org, held like
-- an org's custom roles. A role id is unique across built-in, global and
-- every org's custom roles (checked when a role is created).
CREATE TABLE global_roles (
    id           TEXT PRIMARY KEY,
    description  TEXT NOT NULL DEFAULT '',
    permissions  TEXT NOT NULL,               -- space-separated
    created_at   INTEGER NOT NULL,
    created_by   TEXT NOT NULL
);

-- A deleted resource server frees its audience for a new registration:
-- the audience is unique among live resource servers only. SQLite cannot
-- drop a column's UNIQUE, so the table is rebuilt with the same columns.
CREATE TABLE resource_servers_new (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    audience          TEXT NOT NULL,
    client_id         TEXT NOT NULL UNIQUE,
    secret_hash       TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at        INTEGER NOT NULL,
    created_by        TEXT NOT NULL,
    deleted_at        INTEGER,
    secret_prefix     TEXT,
    previous_secrets  TEXT NOT NULL DEFAULT '',
    permissions       TEXT NOT NULL DEFAULT ''
);
INSERT INTO resource_servers_new
    (id, name, audience, client_id, secret_hash, status, created_at, created_by,
     deleted_at, secret_prefix, previous_secrets, permissions)
SELECT id, name, audience, client_id, secret_hash, status, created_at, created_by,
       deleted_at, secret_prefix, previous_secrets, permissions
FROM resource_servers;
DROP TABLE resource_servers;
ALTER TABLE resource_servers_new RENAME TO resource_servers;
CREATE UNIQUE INDEX resource_servers_live_audience
    ON resource_servers (audience) WHERE deleted_at IS NULL;

-- Rows a write locks first so that writes of one kind run one at a time
-- on every replica ('roles': no two scopes create one role id at once).
CREATE TABLE write_locks (name TEXT PRIMARY KEY);
INSERT INTO write_locks (name) VALUES ('roles');
