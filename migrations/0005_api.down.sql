DROP TRIGGER scores_written ON anomaly_scores;
DROP FUNCTION manifold_notify_scores();
DROP TABLE submitted_batches;
DROP INDEX ingested_batches_batch;
ALTER TABLE ingested_batches DROP COLUMN last_duplicate_at;
ALTER TABLE ingested_batches DROP COLUMN duplicates;
