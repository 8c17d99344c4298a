INSERT INTO users (user_id, email, name, role) VALUES ($1, $2, $3, $4)
RETURNING user_id, email, name, tier, role, created_at
