-- Raw readings of a system in [$2, $3), optionally some sensors ($4), in (time, sensor) order
-- after the cursor ($5, $6), one page ($7). Each series contributes at most a page from its
-- own index range, so a page costs (sensors × page) rows however long the range is.
SELECT s.sensor_id, r.time, r.value
FROM series s
CROSS JOIN LATERAL (
    SELECT r.time, r.value
    FROM readings r
    WHERE r.series_id = s.series_id
      AND r.time >= $2 AND r.time < $3
      AND r.time >= $5::timestamptz AND (r.time > $5::timestamptz OR s.sensor_id > $6::text)
    ORDER BY r.time
    LIMIT $7
) r
WHERE s.system_id = $1
  AND ($4::text[] IS NULL OR s.sensor_id = ANY ($4))
ORDER BY r.time, s.sensor_id
LIMIT $7
