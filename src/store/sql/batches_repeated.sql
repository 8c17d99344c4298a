-- Copies of a batch repeated within one chunk: counted on its row like later duplicates.
UPDATE ingested_batches b SET duplicates = b.duplicates + r.copies, last_duplicate_at = now()
FROM (SELECT system_id, batch_id, count(*)::int AS copies
      FROM unnest($1::text[], $2::text[]) AS t (system_id, batch_id) GROUP BY 1, 2) r
WHERE b.system_id = r.system_id AND b.batch_id = r.batch_id
