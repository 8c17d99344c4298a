-- Acknowledges an alert of a system the user may see; the first ack stands.
UPDATE alerts SET acked_by = coalesce(acked_by, $2), acked_at = coalesce(acked_at, now())
WHERE alert_id = $1 AND system_id = ANY($3)
RETURNING alert_id, component_id, level, status, opened_window_start, opened_window_end, cleared_window_start,
          last_event, updated_at, acked_by, acked_at, system_id
