-- Failures not retried yet (optionally one system's).
SELECT count(*) FROM scoring_failures WHERE retried_at IS NULL AND ($1::text IS NULL OR system_id = $1)
