-- A derivation's verdict on one alert. The ack columns are left alone: an ack survives a
-- revision of the same alert.
INSERT INTO alerts AS a (alert_id, system_id, component_id, level, status, opened_window_start, opened_window_end,
                         cleared_window_start, last_event, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
ON CONFLICT (alert_id) DO UPDATE SET
    level = excluded.level, status = excluded.status, opened_window_start = excluded.opened_window_start,
    opened_window_end = excluded.opened_window_end, cleared_window_start = excluded.cleared_window_start,
    last_event = excluded.last_event, updated_at = now()
