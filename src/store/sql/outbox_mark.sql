-- Bookkeeping only (status pages, retention): Kafka's position record is the source of truth.
UPDATE outbox SET published_at = now() WHERE seq <= $1 AND published_at IS NULL
