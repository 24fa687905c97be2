-- Global roles and re-registrable audiences (the SQLite twin is
-- migrations/sqlite/0008_global_roles.sql).
--
-- Global roles: defined by the operator, visible in every org, held like
-- an org's custom roles. A role id is unique across built-in, global and
-- every org's custom roles (checked when a role is created).
CREATE TABLE global_roles (
    id           TEXT PRIMARY KEY,
    description  TEXT NOT NULL DEFAULT '',
    permissions  TEXT NOT NULL,               -- space-separated
    created_at   BIGINT NOT NULL,
    created_by   TEXT NOT NULL
);

-- A deleted resource server frees its audience for a new registration:
-- the audience is unique among live resource servers only.
ALTER TABLE resource_servers DROP CONSTRAINT resource_servers_audience_key;
CREATE UNIQUE INDEX resource_servers_live_audience
    ON resource_servers (audience) WHERE deleted_at IS NULL;

-- Rows a write locks first so that writes of one kind run one at a time
-- on every replica ('roles': no two scopes create one role id at once).
CREATE TABLE write_locks (name TEXT PRIMARY KEY);
INSERT INTO write_locks (name) VALUES ('roles');
