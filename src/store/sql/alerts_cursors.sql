-- Where each component of the given systems stands in alert derivation (0012_alert_cursors).
SELECT system_id, component_id, cursor FROM alert_cursors WHERE system_id = ANY ($1::text[])
