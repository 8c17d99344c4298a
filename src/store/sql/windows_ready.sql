-- Marks the windows of these systems whose end the watermark has passed ($2 = lateness, µs).
-- The stored newest event time never exceeds the database clock of its chunk (see
-- watermarks_upsert.sql), so the watermark never runs ahead of now − lateness; windows_due
-- holds back any window whose end is still in the future all the same.
UPDATE windows_due w SET ready_revision = w.revision
FROM system_watermarks m
WHERE w.system_id = ANY($1) AND m.system_id = w.system_id AND w.ready_revision IS NULL
  AND w.window_end <= m.max_event_time - make_interval(secs => $2::int8 / 1000000.0)
RETURNING w.system_id, w.window_start, w.window_end, w.revision, w.reading_count, w.sensors, w.trace_links
