-- What became of a batch id in the systems of owner $1: stored (with duplicates seen),
-- dead letters (of the batch or of its rejected part), or submitted and still pending.
SELECT 'stored' AS source, b.system_id, b.readings, b.ingested_at AS at, b.duplicates,
       NULL::text AS kind, NULL::text AS message
FROM ingested_batches b JOIN equipment e ON e.system_id = b.system_id
WHERE b.batch_id = $2 AND e.owner_id = $1
UNION ALL
SELECT 'dead_letter', d.system_id, NULL, d.received_at, 0, d.error_kind, d.error_message
FROM dead_letters d JOIN equipment e ON e.system_id = d.system_id
WHERE d.batch_id IN ($2, $2 || '~rejected') AND e.owner_id = $1
UNION ALL
SELECT 'submitted', s.system_id, s.readings, s.submitted_at, 0, NULL, NULL
FROM submitted_batches s JOIN equipment e ON e.system_id = s.system_id
WHERE s.batch_id = $2 AND e.owner_id = $1
ORDER BY at
LIMIT 100
