-- Exactly the rows read: one inserted meanwhile (even with a lower id, committed late) stays.
DELETE FROM readings_refresh WHERE id = ANY($1)
