-- Each secret's last use (the twin is migrations/postgres/0010_secret_uses.sql):
-- by account and the secret's public prefix, so that during a rotation the
-- old secret's last use shows when nothing uses it any more. Written by the
-- bookkeeper in batches; a secret's row outlives it harmlessly (a prefix is
-- never reused by the same account in practice, and the list shows only
-- the secrets that work).
CREATE TABLE secret_uses (
    account_id    TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    last_used_at  INTEGER NOT NULL,
    last_used_ip  TEXT,
    PRIMARY KEY (account_id, prefix)
);
