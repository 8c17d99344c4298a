-- A system's alerts as last derived, from $2 on (withdrawn ones are no longer alerts).
SELECT alert_id, component_id, level, opened_window_start, opened_window_end, cleared_window_start
FROM alerts
WHERE system_id = $1 AND status <> 'withdrawn' AND opened_window_start >= $2
