-- The retention job of a hypertable or continuous aggregate ($1), and whether its drop_after
-- differs from the configured one ($2, an interval as text).
SELECT job_id, (config->>'drop_after')::interval IS DISTINCT FROM $2::text::interval AS differs
FROM timescaledb_information.jobs
WHERE proc_name = 'policy_retention' AND hypertable_schema = current_schema() AND hypertable_name = $1
ORDER BY job_id
LIMIT 1
