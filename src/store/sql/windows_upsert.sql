-- Adds a chunk's readings to their windows. Late data for a window already announced opens a
-- new revision (announced again once ready), so a re-score replaces nothing silently.
INSERT INTO windows AS w (system_id, window_start, window_end, reading_count, sensors, last_reading_at)
SELECT s, ws, we, n, string_to_array(sens, ','), now()
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::int8[], $5::text[]) AS d(s, ws, we, n, sens)
ON CONFLICT (system_id, window_start) DO UPDATE SET
    reading_count = w.reading_count + excluded.reading_count,
    sensors = ARRAY(SELECT DISTINCT x FROM unnest(w.sensors || excluded.sensors) AS x ORDER BY x),
    last_reading_at = now(),
    revision = CASE WHEN w.ready_revision IS NULL THEN w.revision ELSE w.ready_revision + 1 END,
    ready_revision = NULL
