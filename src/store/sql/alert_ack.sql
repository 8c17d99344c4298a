-- Acknowledges an alert of a system the user ($2) owns; the first ack stands. Withdrawn alerts
-- can still be acknowledged (someone may have seen them before they were withdrawn). An alert
-- already acknowledged is returned as it is, not written again: a repeated ack must not fire the
-- live feed's trigger each time.
WITH owned AS (
    SELECT a.alert_id FROM alerts a JOIN equipment e ON e.system_id = a.system_id AND e.owner_id = $2
    WHERE a.alert_id = $1
),
acked AS (
    UPDATE alerts a SET acked_by = $2, acked_at = now()
    FROM owned WHERE a.alert_id = owned.alert_id AND a.acked_at IS NULL
    RETURNING a.alert_id, a.component_id, a.level, a.status, a.opened_window_start, a.opened_window_end, a.cleared_window_start,
              a.last_event, a.updated_at, a.acked_by, a.acked_at, a.system_id
)
SELECT * FROM acked
UNION ALL
SELECT a.alert_id, a.component_id, a.level, a.status, a.opened_window_start, a.opened_window_end, a.cleared_window_start,
       a.last_event, a.updated_at, a.acked_by, a.acked_at, a.system_id
FROM alerts a JOIN owned ON owned.alert_id = a.alert_id
WHERE NOT EXISTS (SELECT 1 FROM acked)
