-- Batches the API handed to Kafka (acknowledged by the broker), written in groups; a repeat
-- keeps the first time.
INSERT INTO submitted_batches (system_id, batch_id, readings)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[])
ON CONFLICT (system_id, batch_id) DO NOTHING
