-- Rows commit in sequence order (see outbox_lock.sql), so reading past the last published
-- sequence never skips one that commits later. Events recorded in outbox_failures were set
-- aside for their content: a restart must not try them again.
-- At most $2 events and about $3 bytes of payload (always at least one event), so a run of
-- maximal dead letters does not take the relay's memory. `fetched` is how many events the
-- count limit let through, before the byte limit.
SELECT seq, topic_role, message_key, payload, headers, fetched FROM (
    SELECT l.*, sum(octet_length(l.payload)) OVER (ORDER BY l.seq) AS running, count(*) OVER () AS fetched
    FROM (
        SELECT o.seq, o.topic_role, o.message_key, o.payload, o.headers FROM outbox o
        WHERE o.seq > $1 AND NOT EXISTS (SELECT 1 FROM outbox_failures f WHERE f.seq = o.seq)
        ORDER BY o.seq LIMIT $2
    ) l
) r
WHERE running - octet_length(payload) < $3
ORDER BY seq
