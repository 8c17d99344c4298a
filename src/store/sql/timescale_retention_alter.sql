-- Changes drop_after in place: the job keeps its id, schedule and statistics.
SELECT alter_job(job_id, config => jsonb_set(config, '{drop_after}', to_jsonb($2::text::interval)))
FROM timescaledb_information.jobs
WHERE job_id = $1
