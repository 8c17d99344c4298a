-- Per-sensor 1-minute means of a system before a window: the baseline scorer's history.
SELECT s.sensor_id, array_agg(m.sum / m.n ORDER BY m.bucket) AS means
FROM readings_1m m JOIN series s ON s.series_id = m.series_id
WHERE s.system_id = $1 AND m.bucket >= $2::timestamptz - make_interval(mins => $3::int4) AND m.bucket < $2::timestamptz AND m.n > 0
GROUP BY s.sensor_id
