-- warden's initial schema (PostgreSQL). Times are integer Unix seconds; ids are
-- text. The SQLite twin of this file is migrations/sqlite/0001_init.sql.

-- Tenants. The id is the slug: immutable, unique, and what tokens carry in `org`.
CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
INSERT INTO orgs (id, name, created_at) VALUES ('default', 'Default', 0);

-- Custom roles per org. Built-in roles live in code and are not stored.
CREATE TABLE roles (
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    id           TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    permissions  TEXT NOT NULL,               -- space-separated
    created_at   BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    PRIMARY KEY (org_id, id)
);

CREATE TABLE service_accounts (
    id                TEXT PRIMARY KEY,
    org_id            TEXT NOT NULL REFERENCES orgs(id),
    kind              TEXT NOT NULL CHECK (kind IN ('credential', 'integration')),
    name              TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    client_id         TEXT UNIQUE,
    secret_hash       TEXT,                   -- Argon2id PHC string
    credential_epoch  BIGINT NOT NULL DEFAULT 0,
    integration       TEXT,
    roles             TEXT NOT NULL,          -- space-separated role ids
    allowed_ips       TEXT NOT NULL DEFAULT '', -- comma-separated CIDRs
    expires_at        BIGINT,
    status            TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at        BIGINT NOT NULL,
    created_by        TEXT NOT NULL,
    last_used_at      BIGINT,
    deleted_at        BIGINT,
    CHECK ((kind = 'credential') = (client_id IS NOT NULL))
);
CREATE INDEX service_accounts_org ON service_accounts (org_id, id);

-- Refresh tokens are sealed, self-describing values; only their use is
-- stored. The primary key is what makes each token single-use.
CREATE TABLE refresh_tokens_spent (
    jti         TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,             -- prunable after this
    spent_at    BIGINT NOT NULL
);

-- Families revoked by reuse detection or revocation.
CREATE TABLE refresh_families_revoked (
    family_id   TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    reason      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT NOT NULL
);

CREATE TABLE audit_events (
    id           BIGSERIAL PRIMARY KEY,
    org_id       TEXT,
    at           BIGINT NOT NULL,
    actor_type   TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    action       TEXT NOT NULL,
    target_type  TEXT,
    target_id    TEXT,
    source_ip    TEXT,
    details      TEXT NOT NULL DEFAULT '{}'   -- JSON; never a secret
);
CREATE INDEX audit_events_org_at ON audit_events (org_id, at);
CREATE INDEX audit_events_target ON audit_events (target_id);
