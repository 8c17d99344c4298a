-- A batch the API handed to Kafka (acknowledged by the broker); a repeat keeps the first time.
INSERT INTO submitted_batches (system_id, batch_id, readings) VALUES ($1, $2, $3)
ON CONFLICT (system_id, batch_id) DO NOTHING
