-- Federated credentials found by the external token's issuer and subject
-- (the twin is migrations/sqlite/0011_federated_lookup.sql): the token
-- endpoint's jwt-bearer and token-exchange grants read them in one query.
CREATE INDEX credentials_federated ON credentials (issuer, subject) WHERE kind = 'federated';
