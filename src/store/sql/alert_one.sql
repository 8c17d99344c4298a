SELECT alert_id, component_id, level, status, opened_window_start, opened_window_end, cleared_window_start,
       last_event, updated_at, acked_by, acked_at, system_id
FROM alerts
WHERE alert_id = $1
