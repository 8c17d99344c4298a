-- Aggregates per bucket of $8 seconds (a multiple of 60) rolled up from the 1-minute aggregate:
-- the raw readings are not scanned. Same filters and cursor as readings_raw.sql.
SELECT sensor_id, bucket, n, mean, min, max FROM (
    SELECT s.sensor_id,
           date_bin(make_interval(secs => $8), m.bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
           sum(m.n)::bigint AS n, sum(m.sum) / sum(m.n) AS mean, min(m.min) AS min, max(m.max) AS max
    FROM series s JOIN readings_1m m ON m.series_id = s.series_id
    WHERE s.system_id = $1
      AND ($4::text[] IS NULL OR s.sensor_id = ANY ($4))
      AND m.bucket >= $2 AND m.bucket < $3
      AND m.bucket >= date_bin(make_interval(secs => $8), $5::timestamptz, TIMESTAMPTZ '2000-01-01 00:00:00+00')
    GROUP BY 1, 2
) b
WHERE (bucket, sensor_id) > ($5::timestamptz, $6::text)
ORDER BY bucket, sensor_id
LIMIT $7
