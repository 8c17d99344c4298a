-- Opens a new revision of each window whose scoring failed and was not retried yet (optionally
-- one system's). Failures without a known window, or whose window is no longer stored, stay open.
-- Through windows_due, like every announcing statement: never a window whose end is ahead.
WITH failed AS (
    SELECT DISTINCT system_id, window_start FROM scoring_failures
    WHERE retried_at IS NULL AND system_id IS NOT NULL AND window_start IS NOT NULL
      AND ($1::text IS NULL OR system_id = $1)
)
UPDATE windows_due w SET revision = w.ready_revision + 1, ready_revision = w.ready_revision + 1
FROM failed f
WHERE w.system_id = f.system_id AND w.window_start = f.window_start AND w.ready_revision IS NOT NULL
RETURNING w.system_id, w.window_start, w.window_end, w.revision, w.reading_count, w.sensors, w.trace_links
