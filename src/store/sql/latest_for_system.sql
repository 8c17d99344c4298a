-- Last value per sensor of a system, from the last-value table ingest keeps (no readings scan).
SELECT s.sensor_id, s.unit, s.component_id, l.time, l.value
FROM series s JOIN latest_readings l ON l.series_id = s.series_id
WHERE s.system_id = $1
ORDER BY s.sensor_id
