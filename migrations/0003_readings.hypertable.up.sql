-- Readings with an Apache-licensed TimescaleDB (timescaledb.license = 'apache'), which refuses
-- compression, continuous aggregates and policies: a hypertable of daily chunks whose expired
-- chunks maintenance drops with drop_chunks, and the 1-minute aggregate kept by manifold in the
-- ingest transaction, as on the native path.
CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE TABLE readings (
    time      timestamptz NOT NULL,
    series_id integer NOT NULL,
    value     double precision NOT NULL
);
-- Without the default index on (time DESC), COPY maintains one index, as on the native path.
SELECT create_hypertable('readings', by_range('time', INTERVAL '1 day'), create_default_indexes => false);
CREATE INDEX readings_series_time ON readings (series_id, time);

CREATE TABLE readings_1m (
    series_id integer NOT NULL,
    bucket    timestamptz NOT NULL,
    n         bigint NOT NULL,
    sum       double precision NOT NULL,
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    PRIMARY KEY (series_id, bucket)
);
CREATE INDEX readings_1m_bucket ON readings_1m (bucket);
