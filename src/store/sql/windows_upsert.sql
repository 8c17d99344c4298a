-- Adds a chunk's readings to their windows. Late data for a window already announced opens a
-- new revision (announced again once ready), so a re-score replaces nothing silently.
-- $6 is the chunk's traceparent while trace export is on (NULL otherwise): each window keeps
-- the 16 newest (telemetry::traces::MAX_LINKS), for its announce span to link to.
INSERT INTO windows AS w (system_id, window_start, window_end, reading_count, sensors, last_reading_at, trace_links)
SELECT s, ws, we, n, string_to_array(sens, ','), now(), CASE WHEN $6::text IS NULL THEN '{}'::text[] ELSE ARRAY[$6::text] END
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::int8[], $5::text[]) AS d(s, ws, we, n, sens)
ON CONFLICT (system_id, window_start) DO UPDATE SET
    reading_count = w.reading_count + excluded.reading_count,
    sensors = ARRAY(SELECT DISTINCT x FROM unnest(w.sensors || excluded.sensors) AS x ORDER BY x),
    last_reading_at = now(),
    trace_links = CASE WHEN cardinality(excluded.trace_links) = 0 THEN w.trace_links
        ELSE (w.trace_links || excluded.trace_links)[greatest(1, cardinality(w.trace_links) + cardinality(excluded.trace_links) - 15):] END,
    revision = CASE WHEN w.ready_revision IS NULL THEN w.revision ELSE w.ready_revision + 1 END,
    ready_revision = NULL
