-- Refills the slot coverage of the open windows of system $1 from their stored readings at the
-- sampling rates now in `series` (the same quantization as window::SlotShape); returns those
-- windows, whose completeness is then checked again (windows_complete.sql).
WITH open AS (
    SELECT system_id, window_start, window_end FROM windows WHERE system_id = $1 AND ready_revision IS NULL
),
counted AS (
    -- Per (open window, series), its readings in a LATERAL subquery: an index range scan on
    -- (series_id, time) each, as in window_values.sql. A plain join lets the planner, which
    -- cannot see the windows' ranges, hash-join a sequential scan of all of `readings`.
    SELECT o.window_start, s.series_id, manifold_window_slot_len(s.sample_rate_hz, o.window_end - o.window_start) AS len, c.idx
    FROM open o
    JOIN series s ON s.system_id = o.system_id AND s.sample_rate_hz > 0
    CROSS JOIN LATERAL (
        SELECT array_agg(DISTINCT floor(extract(epoch FROM r.time - o.window_start)::float8 * s.sample_rate_hz + 1e-9)::integer) AS idx
        FROM readings r
        WHERE r.series_id = s.series_id AND r.time >= o.window_start AND r.time < o.window_end
    ) c
    WHERE c.idx IS NOT NULL
),
filled AS (
    INSERT INTO window_slots (system_id, window_start, series_id, slots)
    SELECT $1, window_start, series_id,
        (SELECT string_agg(CASE WHEN i = ANY (idx) THEN '1' ELSE '0' END, '' ORDER BY i) FROM generate_series(0, len - 1) AS i)::varbit
    FROM counted WHERE len > 0
)
SELECT system_id, window_start FROM open
