-- Every reading of a batch of windows in one query: per window (by ordinal) and sensor, the
-- values in time order. The readings of each (window, series) are fetched in a LATERAL
-- subquery, so each is an index range scan on (series_id, time) in the one partition it
-- touches; a plain join lets the planner, which cannot see the windows' ranges inside the
-- arrays, hash-join a sequential scan of all of `readings` (185 ms for 32 windows over 0.8M
-- rows, growing with the table; 30 ms this way, whatever its size).
SELECT w.i::int4 AS window_index, s.sensor_id, v.window_values
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY AS w(system_id, ws, we, i)
JOIN series s ON s.system_id = w.system_id
CROSS JOIN LATERAL (
    SELECT array_agg(r.value ORDER BY r.time) AS window_values
    FROM readings r
    WHERE r.series_id = s.series_id AND r.time >= w.ws AND r.time < w.we
) v
WHERE v.window_values IS NOT NULL
