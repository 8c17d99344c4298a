SELECT system_id, name, topology, topology_hash, version, created_at, updated_at
FROM equipment
WHERE owner_id = $1 AND ($2::text IS NULL OR name ILIKE '%' || $2 || '%') AND system_id > $3
ORDER BY system_id LIMIT $4
