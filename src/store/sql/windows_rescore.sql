-- Opens a new revision of every announced window in [$1, $2) (optionally one system's), for
-- scoring with a new model; earlier revisions' scores are kept. Through windows_due: a window
-- whose end is still in the future (announced early before the rule existed) is left alone.
UPDATE windows_due w SET revision = w.ready_revision + 1, ready_revision = w.ready_revision + 1
WHERE w.ready_revision IS NOT NULL AND w.window_start >= $1 AND w.window_start < $2
  AND ($3::text IS NULL OR w.system_id = $3)
RETURNING w.system_id, w.window_start, w.window_end, w.revision, w.reading_count, w.sensors, w.trace_links
