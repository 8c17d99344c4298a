-- Makes a system's series match its topology's sensors: new ones get a series id, existing ones
-- keep theirs (readings refer to it) with updated metadata, removed ones are deleted.
WITH wanted AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[], $8::float8[])
        AS w(sensor_id, kind, unit, component_id, sample_rate_hz, min_value, max_value)
),
removed AS (
    DELETE FROM series s WHERE s.system_id = $1 AND s.sensor_id NOT IN (SELECT sensor_id FROM wanted)
)
INSERT INTO series (system_id, sensor_id, kind, unit, component_id, sample_rate_hz, min_value, max_value)
SELECT $1, sensor_id, kind, unit, component_id, sample_rate_hz, min_value, max_value FROM wanted
ON CONFLICT (system_id, sensor_id) DO UPDATE SET
    kind = excluded.kind, unit = excluded.unit, component_id = excluded.component_id,
    sample_rate_hz = excluded.sample_rate_hz, min_value = excluded.min_value, max_value = excluded.max_value
