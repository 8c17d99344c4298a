-- The events caused by the given scored window revisions, in the order they were made.
SELECT e.event_id, e.kind, e.alert, e.cause_start, e.cause_revision
FROM alert_events e
JOIN unnest($1::text[], $2::timestamptz[], $3::int4[]) AS c(system_id, start, revision)
  ON e.system_id = c.system_id AND e.cause_start = c.start AND e.cause_revision = c.revision
ORDER BY e.seq
