SELECT key_id, prefix, name, created_at, last_used_at, revoked_at
FROM api_keys WHERE user_id = $1
ORDER BY created_at, key_id
