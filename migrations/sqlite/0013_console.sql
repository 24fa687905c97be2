-- The admin console (the twin is migrations/postgres/0013_console.sql).
--
-- People who sign in to the console, per org: known by the subject their
-- sign-in gave (an SSO provider's `sub`, or `link:<name>` for a sign-in
-- link), with roles like an account's (space-separated role ids), so the
-- same permission and grant rules bind them. An SSO sign-in sets the roles
-- its mapping rule gives; the console edits them, bound by the last-admin
-- rule (an org keeps a person able to manage it).
CREATE TABLE console_members (
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    subject       TEXT NOT NULL,
    email         TEXT,
    roles         TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER,
    PRIMARY KEY (org_id, subject)
);

-- One-time sign-in links (`warden console link`): only the SHA-256 of the
-- link's token is kept; `used_at` is set by the one redemption allowed.
CREATE TABLE console_links (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    subject     TEXT NOT NULL,
    roles       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);

-- Server-side sessions, so they hold across replicas and end when deleted:
-- the SHA-256 of the cookie's value, the CSRF token every change must echo.
CREATE TABLE console_sessions (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    csrf        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- Single sign-on in flight: the `state` sent to the provider, the
-- SHA-256 of the cookie binding it to the browser that started it, the
-- `nonce` the ID token must carry and the PKCE verifier. Taken (deleted)
-- by the one callback that may use it.
CREATE TABLE console_sso_states (
    state       TEXT PRIMARY KEY,
    browser     TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    verifier    TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);

-- A person acting through the console is named in the audit log by their
-- subject (actor_type `user`) and, when known, their email.
ALTER TABLE audit_events ADD COLUMN actor_email TEXT;
