-- Written before the relay publishes past the event; a repeat (after a crash) changes nothing,
-- and RETURNING tells the relay whether this call recorded it, so it is counted once.
INSERT INTO outbox_failures (seq, topic_role, reason, message) VALUES ($1, $2, $3, $4)
ON CONFLICT (seq) DO NOTHING
RETURNING seq
