-- Readings without TimescaleDB: native daily range partitions, created ahead and dropped by the
-- store maintenance task. Narrow rows, no foreign key and no unique index: exactly-once comes from
-- the offsets, not from row checks.
CREATE TABLE readings (
    time      timestamptz NOT NULL,
    series_id integer NOT NULL,
    value     double precision NOT NULL
) PARTITION BY RANGE (time);
CREATE INDEX readings_series_time ON readings (series_id, time);

-- The 1-minute per-series aggregate for dashboards, kept by manifold in the ingest transaction.
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
