-- Readings with TimescaleDB (≥ 2.13, TSL license): a hypertable of daily chunks, compressed per
-- series, a retention policy (added, then kept in line with config, by the maintenance task) and
-- a continuous 1-minute aggregate.
CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE TABLE readings (
    time      timestamptz NOT NULL,
    series_id integer NOT NULL,
    value     double precision NOT NULL
);
-- Without the default index on (time DESC), COPY maintains one index, as on the native path.
SELECT create_hypertable('readings', by_range('time', INTERVAL '1 day'), create_default_indexes => false);
CREATE INDEX readings_series_time ON readings (series_id, time);
ALTER TABLE readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'series_id',
    timescaledb.compress_orderby = 'time'
);
SELECT add_compression_policy('readings', INTERVAL '2 days');

-- Real-time aggregation (materialized_only = false; off by default since 2.13): buckets past the
-- last refresh are computed from raw readings at query time, so fresh data shows at once.
CREATE MATERIALIZED VIEW readings_1m WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT series_id,
       time_bucket(INTERVAL '1 minute', time) AS bucket,
       count(*)   AS n,
       sum(value) AS sum,
       min(value) AS min,
       max(value) AS max
FROM readings
GROUP BY series_id, bucket
WITH NO DATA;
-- The policy keeps the last day materialized; readings up to 30 days late land below the
-- refreshed range, so ingest records the hours it touched and maintenance refreshes them.
SELECT add_continuous_aggregate_policy('readings_1m',
    start_offset => INTERVAL '1 day',
    end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '1 minute');

-- Hours ingest wrote readings into, one row per (chunk, hour): inserted without a key, so
-- concurrent ingest transactions never wait on each other; drained by maintenance.
CREATE TABLE readings_refresh (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hour timestamptz NOT NULL
);
