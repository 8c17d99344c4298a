INSERT INTO equipment (system_id, owner_id, name, topology, topology_hash)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (system_id) DO NOTHING
RETURNING version
