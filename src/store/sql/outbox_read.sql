-- Rows commit in sequence order (see outbox_lock.sql), so reading past the last published
-- sequence never skips one that commits later.
SELECT seq, topic_role, message_key, payload, headers FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2
