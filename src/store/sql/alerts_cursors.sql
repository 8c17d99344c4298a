-- Where each component of a system stands in alert derivation (see 0012_alert_cursors).
SELECT component_id, cursor FROM alert_cursors WHERE system_id = $1
