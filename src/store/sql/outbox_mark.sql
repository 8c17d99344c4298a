-- Bookkeeping only (status pages, retention): Kafka's position record is the source of truth.
-- Events set aside stay unpublished; retention removes them with their failure record.
UPDATE outbox o SET published_at = now() WHERE o.seq <= $1 AND o.published_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM outbox_failures f WHERE f.seq = o.seq)
