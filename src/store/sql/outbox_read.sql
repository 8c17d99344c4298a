-- Rows commit in sequence order (see outbox_lock.sql), so reading past the last published
-- sequence never skips one that commits later. Events recorded in outbox_failures were set
-- aside for their content: a restart must not try them again.
SELECT o.seq, o.topic_role, o.message_key, o.payload, o.headers FROM outbox o
WHERE o.seq > $1 AND NOT EXISTS (SELECT 1 FROM outbox_failures f WHERE f.seq = o.seq)
ORDER BY o.seq LIMIT $2
