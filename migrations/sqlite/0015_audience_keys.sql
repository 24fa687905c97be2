-- One resource, one registration (the twin is migrations/postgres/0015_audience_keys.sql).
--
-- A resource server's audience is matched by its RFC 3986 normalized form
-- (`domain::audience::audience_key`): `https://api.example.com` and
-- `https://api.example.com/` name one resource, so at most one live
-- resource server may hold either. The key is computed by warden (rows
-- from before this migration get theirs right after it, in
-- `Db::migrate`); tokens still carry the registered spelling.
ALTER TABLE resource_servers ADD COLUMN audience_key TEXT;
CREATE UNIQUE INDEX resource_servers_live_audience_key
    ON resource_servers (audience_key) WHERE deleted_at IS NULL;
