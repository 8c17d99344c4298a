-- The first chunk of a partition this group has never stored.
INSERT INTO ingest_offsets (consumer_group, topic, partition, next_offset)
VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING
