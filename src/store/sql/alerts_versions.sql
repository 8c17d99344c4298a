-- The alert versions of the given systems (a system without a row is at 0).
SELECT system_id, version FROM alert_versions WHERE system_id = ANY ($1::text[])
