-- Compare-and-set: only the consumer that read next_offset = $4 may move it.
UPDATE ingest_offsets SET next_offset = $5, updated_at = now()
WHERE consumer_group = $1 AND topic = $2 AND partition = $3 AND next_offset = $4
