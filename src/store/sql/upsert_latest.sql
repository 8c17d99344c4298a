-- Last value per series; an older reading arriving late never replaces a newer one.
INSERT INTO latest_readings AS l (series_id, time, value)
SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::float8[])
ON CONFLICT (series_id) DO UPDATE SET time = excluded.time, value = excluded.value
WHERE excluded.time >= l.time
