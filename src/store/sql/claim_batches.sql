-- Records batches as stored; a (system_id, batch_id) already there is not returned: a duplicate.
INSERT INTO ingested_batches (system_id, batch_id, readings)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[])
ON CONFLICT (system_id, batch_id) DO NOTHING
RETURNING system_id, batch_id
