-- Optimistic concurrency: only the version the client read may be replaced ($6 NULL: any).
UPDATE equipment SET name = $3, topology = $4, topology_hash = $5, version = version + 1, updated_at = now()
WHERE owner_id = $1 AND system_id = $2 AND ($6::int8 IS NULL OR version = $6)
RETURNING version
