-- A system's alerts for the API: open ones first, then the most recent, at most $2.
SELECT alert_id, component_id, level, status, opened_window_start, opened_window_end, cleared_window_start,
       last_event, updated_at, acked_by, acked_at
FROM alerts
WHERE system_id = $1 AND status <> 'withdrawn'
ORDER BY (status = 'open') DESC, opened_window_start DESC
LIMIT $2
