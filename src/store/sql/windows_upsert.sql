-- Adds a chunk's readings to their windows, and ORs the chunk's per-sensor slot bitmaps
-- ($7..$10: system, window start, series, bits) into window_slots, one row per (window, sensor).
-- Late data for a window already announced opens a new revision (announced again once ready),
-- so a re-score replaces nothing silently; except that readings adding no new slot to a window
-- that was complete change nothing to score (a retried batch): its revision stays announced.
-- Every CTE reads the state before this chunk (one snapshot), which is what `grown` and
-- manifold_window_complete() must see; the foreign keys of window_slots are checked at statement end.
-- $6 is the chunk's traceparent while trace export is on (NULL otherwise): each window keeps
-- the 16 newest (telemetry::traces::MAX_LINKS), for its announce span to link to.
WITH d AS (
    SELECT s, ws, sid, bits::varbit AS bits FROM unnest($7::text[], $8::timestamptz[], $9::int4[], $10::text[]) AS d(s, ws, sid, bits)
),
grown AS (
    SELECT DISTINCT d.s, d.ws FROM d
    LEFT JOIN window_slots c ON c.system_id = d.s AND c.window_start = d.ws AND c.series_id = d.sid
    WHERE c.slots IS NULL OR length(c.slots) <> length(d.bits) OR (c.slots | d.bits) <> c.slots
),
merged AS (
    INSERT INTO window_slots AS c (system_id, window_start, series_id, slots)
    SELECT s, ws, sid, bits FROM d
    ON CONFLICT (system_id, window_start, series_id) DO UPDATE SET
        slots = CASE WHEN length(c.slots) = length(excluded.slots) THEN c.slots | excluded.slots ELSE excluded.slots END
)
INSERT INTO windows AS w (system_id, window_start, window_end, reading_count, sensors, last_reading_at, trace_links)
SELECT s, ws, we, n, string_to_array(sens, ','), now(), CASE WHEN $6::text IS NULL THEN '{}'::text[] ELSE ARRAY[$6::text] END
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::int8[], $5::text[]) AS d(s, ws, we, n, sens)
ON CONFLICT (system_id, window_start) DO UPDATE SET
    reading_count = w.reading_count + excluded.reading_count,
    sensors = ARRAY(SELECT DISTINCT x FROM unnest(w.sensors || excluded.sensors) AS x ORDER BY x),
    last_reading_at = now(),
    trace_links = CASE WHEN cardinality(excluded.trace_links) = 0 THEN w.trace_links
        ELSE (w.trace_links || excluded.trace_links)[greatest(1, cardinality(w.trace_links) + cardinality(excluded.trace_links) - 15):] END,
    revision = CASE WHEN w.ready_revision IS NULL THEN w.revision
        WHEN NOT EXISTS (SELECT 1 FROM grown g WHERE g.s = w.system_id AND g.ws = w.window_start)
            AND manifold_window_complete(w.system_id, w.window_start, w.window_end) THEN w.revision
        ELSE w.ready_revision + 1 END,
    ready_revision = CASE WHEN w.ready_revision IS NULL THEN NULL
        WHEN NOT EXISTS (SELECT 1 FROM grown g WHERE g.s = w.system_id AND g.ws = w.window_start)
            AND manifold_window_complete(w.system_id, w.window_start, w.window_end) THEN w.ready_revision
        ELSE NULL END
