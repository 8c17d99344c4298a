-- The user with this email, created on the free tier when absent.
WITH created AS (
    INSERT INTO users (user_id, email, name) VALUES ($1, $2, $3)
    ON CONFLICT (lower(email)) DO NOTHING
    RETURNING user_id
)
SELECT user_id FROM created
UNION ALL
SELECT user_id FROM users WHERE lower(email) = lower($2)
LIMIT 1
