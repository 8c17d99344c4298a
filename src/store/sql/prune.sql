-- Retention of everything but readings; $1 = the cut-off time.
-- Run as one batch per maintenance pass; each table has an index on its time column.
WITH
  batches AS (DELETE FROM ingested_batches WHERE ingested_at < $1 RETURNING 1),
  submitted AS (DELETE FROM submitted_batches WHERE submitted_at < $1 RETURNING 1),
  letters AS (DELETE FROM dead_letters WHERE received_at < $1 RETURNING 1),
  -- Events the relay set aside stay unpublished; they go with their failure record.
  failed  AS (DELETE FROM outbox_failures WHERE failed_at < $1 RETURNING seq),
  events  AS (DELETE FROM outbox WHERE published_at < $1 OR seq IN (SELECT seq FROM failed) RETURNING 1),
  wins    AS (DELETE FROM windows WHERE window_end < $1 RETURNING 1),
  scores  AS (DELETE FROM anomaly_scores WHERE computed_at < $1 RETURNING 1),
  -- An alert still open stays, however old: pruning it would withdraw it and lose its ack.
  alerts  AS (DELETE FROM alerts WHERE updated_at < $1 AND status <> 'open' RETURNING 1),
  alert_events AS (DELETE FROM alert_events WHERE created_at < $1 RETURNING 1),
  usage   AS (DELETE FROM usage_daily WHERE day < $1::date RETURNING 1)
SELECT (SELECT count(*) FROM batches) + (SELECT count(*) FROM submitted) + (SELECT count(*) FROM letters) + (SELECT count(*) FROM events)
     + (SELECT count(*) FROM failed) + (SELECT count(*) FROM wins) + (SELECT count(*) FROM scores) + (SELECT count(*) FROM usage)
     + (SELECT count(*) FROM alerts) + (SELECT count(*) FROM alert_events)
