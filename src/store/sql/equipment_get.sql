SELECT system_id, name, topology, topology_hash, version, created_at, updated_at
FROM equipment WHERE owner_id = $1 AND system_id = $2
