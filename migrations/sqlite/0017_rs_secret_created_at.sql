-- When a resource server's current secret was made, shown beside its
-- prefix as an account's is (`secret_created_at`). Backfilled from the
-- last secret reset or rotation in the audit log, else the registration.
ALTER TABLE resource_servers ADD COLUMN secret_created_at INTEGER;
UPDATE resource_servers SET secret_created_at = COALESCE(
    (SELECT MAX(e.at) FROM audit_events e
      WHERE e.target_id = resource_servers.id
        AND e.action IN ('resource_server.secret_reset', 'resource_server.secret_rotated')),
    created_at);
