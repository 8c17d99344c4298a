-- Batches the API submitted between $2 and $1 ago that ingest has neither stored nor
-- dead-lettered: a sign that ingest is stalled. Bounded, so readiness stays cheap.
SELECT count(*) FROM (
    SELECT 1 FROM submitted_batches s
    WHERE s.submitted_at < now() - make_interval(secs => $1) AND s.submitted_at > now() - make_interval(secs => $2)
      AND NOT EXISTS (SELECT 1 FROM ingested_batches b WHERE b.system_id = s.system_id AND b.batch_id = s.batch_id)
      AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.batch_id = s.batch_id AND d.system_id = s.system_id)
    LIMIT 10
) stalled
