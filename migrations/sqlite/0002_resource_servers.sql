-- Resource servers (the product's APIs) and revoked access tokens.
-- The PostgreSQL twin is migrations/postgres/0002_resource_servers.sql.

-- A resource server is registered by the operator. Its audience is what
-- tokens carry in `aud`; its credentials authenticate introspection and
-- revocation calls. It is not scoped to an org: it sees every org's tokens
-- and enforces tenancy with the `org` claim.
CREATE TABLE resource_servers (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    audience     TEXT NOT NULL UNIQUE,
    client_id    TEXT NOT NULL UNIQUE,
    secret_hash  TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at   INTEGER NOT NULL,
    created_by   TEXT NOT NULL,
    deleted_at   INTEGER
);

-- Access tokens revoked before their expiry (RFC 7009), by `jti`. A row is
-- prunable once `expires_at` has passed: the token is dead anyway.
CREATE TABLE revoked_access_tokens (
    jti          TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER NOT NULL
);
