-- Creates or replaces a system's equipment row; version counts changes (the API's ETag).
INSERT INTO equipment (system_id, owner_id, name, topology, topology_hash)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (system_id) DO UPDATE SET
    name = excluded.name,
    topology = excluded.topology,
    topology_hash = excluded.topology_hash,
    version = equipment.version + 1,
    updated_at = now()
WHERE equipment.owner_id = excluded.owner_id
RETURNING version
