-- The key's owner, if the key exists, is not revoked and the user is not disabled.
SELECT u.user_id, u.email, u.name, u.tier, u.role, u.created_at, k.hash, k.key_id
FROM api_keys k JOIN users u ON u.user_id = k.user_id
WHERE k.prefix = $1 AND k.revoked_at IS NULL AND u.disabled_at IS NULL
