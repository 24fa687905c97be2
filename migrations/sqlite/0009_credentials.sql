-- Credentials besides the secret (the twin is migrations/postgres/0009_credentials.sql).
--
-- An account's public keys (private_key_jwt, RFC 7523 §2.2) and, later,
-- its federated trusts: each with its own expiry and last use. The
-- secret stays in service_accounts. A removed credential is deleted; the
-- audit log keeps what it was.
CREATE TABLE credentials (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES service_accounts(id),
    kind          TEXT NOT NULL CHECK (kind IN ('public_key', 'federated')),
    jwk           TEXT,                 -- public_key: the public JWK, as JSON
    jwks_uri      TEXT,
    issuer        TEXT,                 -- federated
    subject       TEXT,
    audience      TEXT,
    claims        TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    expires_at    INTEGER,
    last_used_at  INTEGER,
    last_used_ip  TEXT
);
CREATE INDEX credentials_account ON credentials (account_id);

-- Client assertions already spent, by client and jti, until they expire:
-- the primary key makes each single-use on every replica.
CREATE TABLE spent_assertions (
    client_id   TEXT NOT NULL,
    jti         TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX spent_assertions_expiry ON spent_assertions (expires_at);
