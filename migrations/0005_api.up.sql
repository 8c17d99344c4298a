-- What the HTTP API needs beyond the pipeline: batch status for device teams, live score
-- notifications for WebSocket clients.

-- A repeated batch is skipped by ingest; counting it lets `GET /ingestion/batches/{id}` say so.
ALTER TABLE ingested_batches ADD COLUMN duplicates integer NOT NULL DEFAULT 0;
ALTER TABLE ingested_batches ADD COLUMN last_duplicate_at timestamptz;
CREATE INDEX ingested_batches_batch ON ingested_batches (batch_id);

-- Batches the API handed to Kafka: "pending" until ingest stores or dead-letters them.
CREATE TABLE submitted_batches (
    system_id    text NOT NULL,
    batch_id     text NOT NULL,
    readings     integer NOT NULL,
    submitted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system_id, batch_id)
);
CREATE INDEX submitted_batches_batch ON submitted_batches (batch_id);
CREATE INDEX submitted_batches_time ON submitted_batches (submitted_at);

-- One notification per scored window revision (NOTIFY folds identical payloads within a
-- transaction, so the per-component rows of a window become one message).
CREATE FUNCTION manifold_notify_scores() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('manifold_scores', json_build_object(
        'system_id', NEW.system_id, 'window_start', NEW.window_start, 'revision', NEW.revision)::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER scores_written AFTER INSERT OR UPDATE ON anomaly_scores
    FOR EACH ROW EXECUTE FUNCTION manifold_notify_scores();
