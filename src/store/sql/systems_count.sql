SELECT count(*) FROM equipment WHERE owner_id = $1
