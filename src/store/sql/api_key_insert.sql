INSERT INTO api_keys (key_id, user_id, prefix, hash, name) VALUES ($1, $2, $3, $4, $5)
