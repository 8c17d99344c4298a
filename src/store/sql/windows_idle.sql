-- Processing-time fallback: windows without new data for $1 µs close anyway.
UPDATE windows w SET ready_revision = w.revision
WHERE w.ready_revision IS NULL AND w.last_reading_at < now() - make_interval(secs => $1::int8 / 1000000.0)
RETURNING w.system_id, w.window_start, w.window_end, w.revision, w.reading_count, w.sensors
