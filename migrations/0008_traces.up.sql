-- Traces (telemetry.otlp_endpoint): the ingest chunks that wrote a window's readings, as W3C
-- traceparents, so the span that announces the window can link to them. Written only while
-- trace export is on; at most the 16 newest (windows_upsert.sql keeps the bound), so a window
-- fed by many small chunks stays small. The announce span's own context goes into the outbox
-- row's existing `headers` (as `traceparent`), which the relay already carries to Kafka.
ALTER TABLE windows ADD COLUMN trace_links text[] NOT NULL DEFAULT '{}';

-- Every announcing statement returns the links through this view (a view's column list is
-- fixed when it is created: a new column is added at its end).
CREATE OR REPLACE VIEW windows_due AS
SELECT system_id, window_start, window_end, reading_count, sensors, revision, ready_revision, last_reading_at, trace_links
FROM windows
WHERE window_end <= now();
