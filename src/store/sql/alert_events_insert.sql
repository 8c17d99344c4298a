INSERT INTO alert_events (event_id, system_id, alert_id, kind, cause_start, cause_revision, alert)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (event_id) DO NOTHING
