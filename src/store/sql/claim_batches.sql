-- Records batches as stored. A (system_id, batch_id) already there is a duplicate: it is
-- counted on the stored row (for batch status) and reported with inserted = false.
INSERT INTO ingested_batches AS b (system_id, batch_id, readings)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[])
ON CONFLICT (system_id, batch_id) DO UPDATE
    SET duplicates = b.duplicates + 1, last_duplicate_at = now()
RETURNING system_id, batch_id, (xmax = 0) AS inserted
