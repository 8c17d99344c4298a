-- Views for Grafana's SQL panels: each names its series (system, sensor, component, unit), so a
-- panel filters on names and needs no join. Views read with their owner's privileges, so the
-- read-only role Grafana uses (`manifold grants grafana ROLE`) is granted these views and
-- nothing else: no API key hashes, no users, and readings partitions created later (or
-- TimescaleDB chunks) are covered without default privileges.

-- One row per series.
CREATE VIEW grafana_series AS
SELECT s.series_id, s.system_id, e.name AS system_name, s.sensor_id, s.kind, s.unit, s.component_id,
       s.sample_rate_hz, s.min_value, s.max_value
FROM series s
JOIN equipment e USING (system_id);

-- The 1-minute aggregate (a table kept by ingest, or TimescaleDB's continuous aggregate).
CREATE VIEW grafana_sensor_1m AS
SELECT a.bucket AS time, s.system_id, s.sensor_id, s.component_id, s.unit,
       a.n, a.sum / a.n AS mean, a.min, a.max
FROM readings_1m a
JOIN series s USING (series_id);

-- Raw readings, for short time ranges (readings_series_time serves system + time filters).
CREATE VIEW grafana_readings AS
SELECT r.time, s.system_id, s.sensor_id, s.component_id, s.unit, r.value
FROM readings r
JOIN series s USING (series_id);

-- The newest revision of each component's score per window. `condition` is the rig model's
-- predicted class (a number in the component's unit: cooler %, valve %, pump leakage,
-- accumulator bar), `condition_value` the same as a number for time-series panels; both are
-- NULL for the baseline scorer, which predicts no condition.
CREATE VIEW grafana_scores AS
SELECT a.system_id, a.component_id, a.window_start, a.window_end, a.revision, a.model_version,
       a.score::double precision AS score, a.class AS condition,
       CASE WHEN a.class ~ '^-?[0-9]+(\.[0-9]+)?$' THEN a.class::double precision END AS condition_value,
       a.computed_at
FROM anomaly_scores a
WHERE NOT EXISTS (
    SELECT 1 FROM anomaly_scores n
    WHERE n.system_id = a.system_id AND n.component_id = a.component_id
      AND n.window_start = a.window_start AND n.revision > a.revision
);

-- Dead letters without their payloads (raw device bytes are not for dashboards).
CREATE VIEW grafana_dead_letters AS
SELECT received_at AS time, system_id, error_kind AS reason, source_topic, source_partition, source_offset,
       batch_id, error_message, replayed_at
FROM dead_letters;
