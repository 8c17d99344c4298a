-- An admin's change to a user; NULL leaves a field as it is.
UPDATE users SET
    tier = coalesce($2, tier),
    role = coalesce($3, role),
    disabled_at = CASE WHEN $4::boolean IS NULL THEN disabled_at
                       WHEN $4 THEN coalesce(disabled_at, now()) ELSE NULL END
WHERE user_id = $1
RETURNING user_id, email, name, tier, role, created_at
