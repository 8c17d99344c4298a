-- Aggregates per bucket of $8 seconds (shorter than a minute, or not a whole number of
-- minutes) computed from the raw readings. Same filters and cursor as readings_raw.sql.
SELECT sensor_id, bucket, n, mean, min, max FROM (
    SELECT s.sensor_id,
           date_bin(make_interval(secs => $8), r.time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
           count(*) AS n, avg(r.value) AS mean, min(r.value) AS min, max(r.value) AS max
    FROM series s JOIN readings r ON r.series_id = s.series_id
    WHERE s.system_id = $1
      AND ($4::text[] IS NULL OR s.sensor_id = ANY ($4))
      AND r.time >= $2 AND r.time < $3
      AND r.time >= date_bin(make_interval(secs => $8), $5::timestamptz, TIMESTAMPTZ '2000-01-01 00:00:00+00')
    GROUP BY 1, 2
) b
WHERE (bucket, sensor_id) > ($5::timestamptz, $6::text)
ORDER BY bucket, sensor_id
LIMIT $7
