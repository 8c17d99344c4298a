-- Readings with TimescaleDB: a hypertable of daily chunks, compressed per series, with a
-- retention policy (set by the maintenance task from config) and a continuous 1-minute aggregate.
CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE TABLE readings (
    time      timestamptz NOT NULL,
    series_id integer NOT NULL,
    value     double precision NOT NULL
);
SELECT create_hypertable('readings', by_range('time', INTERVAL '1 day'));
CREATE INDEX readings_series_time ON readings (series_id, time);
ALTER TABLE readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'series_id',
    timescaledb.compress_orderby = 'time'
);
SELECT add_compression_policy('readings', INTERVAL '2 days');

CREATE MATERIALIZED VIEW readings_1m WITH (timescaledb.continuous) AS
SELECT series_id,
       time_bucket(INTERVAL '1 minute', time) AS bucket,
       count(*)   AS n,
       sum(value) AS sum,
       min(value) AS min,
       max(value) AS max
FROM readings
GROUP BY series_id, bucket
WITH NO DATA;
SELECT add_continuous_aggregate_policy('readings_1m',
    start_offset => INTERVAL '1 day',
    end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '1 minute');
