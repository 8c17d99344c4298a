SELECT e.system_id, e.owner_id, s.sensor_id, s.series_id, s.min_value, s.max_value
FROM equipment e JOIN series s ON s.system_id = e.system_id
WHERE e.system_id = $1
