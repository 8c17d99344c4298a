-- Acknowledges an alert of a system the user ($2) owns; the first ack stands. Withdrawn alerts
-- can still be acknowledged (someone may have seen them before they were withdrawn).
UPDATE alerts a SET acked_by = coalesce(a.acked_by, $2), acked_at = coalesce(a.acked_at, now())
FROM equipment e
WHERE a.alert_id = $1 AND e.system_id = a.system_id AND e.owner_id = $2
RETURNING a.alert_id, a.component_id, a.level, a.status, a.opened_window_start, a.opened_window_end, a.cleared_window_start,
          a.last_event, a.updated_at, a.acked_by, a.acked_at, a.system_id
