-- Resource servers' public keys (the twin is migrations/sqlite/0012_resource_server_keys.sql):
-- a resource server may authenticate to introspection and revocation with
-- a client assertion signed by one of them (private_key_jwt) instead of
-- its secret. A JSON array of public JWKs; '' for none.
ALTER TABLE resource_servers ADD COLUMN jwks TEXT NOT NULL DEFAULT '';
