-- Chunks of readings entirely older than $1 (the Apache build has no retention policy).
SELECT count(*) FROM drop_chunks('readings', older_than => $1::timestamptz)
