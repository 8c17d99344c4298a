-- Aggregates per bucket of $8 seconds (shorter than a minute, or not a whole number of
-- minutes) computed from the raw readings. Same filters and cursor as readings_raw.sql.
-- At most $9 + 1 rows are read: when the range holds more than $9, the answer is one row with
-- over_cap = true and no bucket (the API refuses the request rather than serve a page built
-- from part of the range). Otherwise over_cap is false on every row (one row of NULLs when
-- there is no bucket).
WITH scanned AS MATERIALIZED (
    SELECT s.sensor_id, r.time, r.value
    FROM series s JOIN readings r ON r.series_id = s.series_id
    WHERE s.system_id = $1
      AND ($4::text[] IS NULL OR s.sensor_id = ANY ($4))
      AND r.time >= $2 AND r.time < $3
      AND r.time >= date_bin(make_interval(secs => $8), $5::timestamptz, TIMESTAMPTZ '2000-01-01 00:00:00+00')
    LIMIT $9::int8 + 1
), verdict AS (
    SELECT count(*) > $9::int8 AS over_cap FROM scanned
)
SELECT b.sensor_id, b.bucket, b.n, b.mean, b.min, b.max, v.over_cap
FROM verdict v
LEFT JOIN LATERAL (
    SELECT sensor_id, bucket, n, mean, min, max FROM (
        SELECT sensor_id,
               date_bin(make_interval(secs => $8), time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
               count(*) AS n, avg(value) AS mean, min(value) AS min, max(value) AS max
        FROM scanned
        GROUP BY 1, 2
    ) g
    WHERE NOT v.over_cap AND (bucket, sensor_id) > ($5::timestamptz, $6::text)
    ORDER BY bucket, sensor_id
    LIMIT $7
) b ON true
ORDER BY b.bucket, b.sensor_id
