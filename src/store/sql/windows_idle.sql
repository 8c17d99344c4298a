-- Processing-time fallback: windows without new data for $1 µs close anyway, but only once
-- their end has passed (windows_due): a device clock ahead must not close a window early.
UPDATE windows_due w SET ready_revision = w.revision
WHERE w.ready_revision IS NULL AND w.last_reading_at < now() - make_interval(secs => $1::int8 / 1000000.0)
RETURNING w.system_id, w.window_start, w.window_end, w.revision, w.reading_count, w.sensors, w.trace_links
