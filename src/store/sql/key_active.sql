-- Whether a key still authenticates its user (not revoked, user not disabled), and the owner of
-- a system: what a long-lived session re-checks.
SELECT EXISTS (
    SELECT 1 FROM api_keys k JOIN users u ON u.user_id = k.user_id
    JOIN equipment e ON e.owner_id = u.user_id AND e.system_id = $2
    WHERE k.key_id = $1 AND k.revoked_at IS NULL AND u.disabled_at IS NULL
)
