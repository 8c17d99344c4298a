INSERT INTO api_keys (key_id, user_id, prefix, hash, name) VALUES ($1, $2, $3, $4, $5)
RETURNING key_id, prefix, name, created_at, last_used_at, revoked_at
