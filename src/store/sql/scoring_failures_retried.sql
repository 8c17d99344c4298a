-- The failures of the re-opened windows: their new revisions are scored afresh.
UPDATE scoring_failures s SET retried_at = now()
FROM unnest($1::text[], $2::timestamptz[]) AS r(system_id, window_start)
WHERE s.retried_at IS NULL AND s.system_id = r.system_id AND s.window_start = r.window_start
