-- A system and everything kept under its id, in one statement: the id may be registered again,
-- by anyone, and must start empty (scores, batch ids, watermarks would otherwise be inherited).
-- Readings are keyed by series ids, which are never reused; retention removes them.
WITH gone AS (
    DELETE FROM equipment WHERE owner_id = $1 AND system_id = $2 RETURNING system_id
),
latest AS (DELETE FROM latest_readings WHERE series_id IN (SELECT series_id FROM series WHERE system_id IN (SELECT system_id FROM gone))),
scores AS (DELETE FROM anomaly_scores WHERE system_id IN (SELECT system_id FROM gone)),
wins AS (DELETE FROM windows WHERE system_id IN (SELECT system_id FROM gone)),
marks AS (DELETE FROM system_watermarks WHERE system_id IN (SELECT system_id FROM gone)),
stored AS (DELETE FROM ingested_batches WHERE system_id IN (SELECT system_id FROM gone)),
submitted AS (DELETE FROM submitted_batches WHERE system_id IN (SELECT system_id FROM gone)),
letters AS (DELETE FROM dead_letters WHERE system_id IN (SELECT system_id FROM gone)),
-- Alerts carry who acknowledged them: the next owner of the id must not see or ack them.
alerts AS (DELETE FROM alerts WHERE system_id IN (SELECT system_id FROM gone)),
alert_events AS (DELETE FROM alert_events WHERE system_id IN (SELECT system_id FROM gone)),
alert_versions AS (DELETE FROM alert_versions WHERE system_id IN (SELECT system_id FROM gone)),
alert_cursors AS (DELETE FROM alert_cursors WHERE system_id IN (SELECT system_id FROM gone))
SELECT count(*) FROM gone
