-- Raw readings of a system in [$2, $3), optionally some sensors ($4), in (time, sensor) order
-- after the cursor ($5, $6), one page ($7).
SELECT s.sensor_id, r.time, r.value
FROM series s JOIN readings r ON r.series_id = s.series_id
WHERE s.system_id = $1
  AND ($4::text[] IS NULL OR s.sensor_id = ANY ($4))
  AND r.time >= $2 AND r.time < $3 AND r.time >= $5::timestamptz
  AND (r.time, s.sensor_id) > ($5::timestamptz, $6::text)
ORDER BY r.time, s.sensor_id
LIMIT $7
