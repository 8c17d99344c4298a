-- Every reading of a batch of windows in one query: per window (by ordinal) and sensor, the
-- values in time order.
SELECT w.i::int4 AS window_index, s.sensor_id, array_agg(r.value ORDER BY r.time) AS window_values
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY AS w(system_id, ws, we, i)
JOIN series s ON s.system_id = w.system_id
JOIN readings r ON r.series_id = s.series_id AND r.time >= w.ws AND r.time < w.we
GROUP BY w.i, s.sensor_id
