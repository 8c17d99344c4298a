SELECT coalesce((SELECT version FROM alert_versions WHERE system_id = $1), 0)
