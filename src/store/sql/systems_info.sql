SELECT system_id, owner_id, topology_hash, topology FROM equipment WHERE system_id = ANY($1)
