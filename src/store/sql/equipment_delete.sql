DELETE FROM equipment WHERE owner_id = $1 AND system_id = $2
