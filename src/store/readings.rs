//! Readings: written by the ingest transaction (binary COPY, the last-value table and, without a
//! continuous aggregate, the 1-minute aggregate; with one, the hours to refresh), served to the API as last values, raw pages and time
//! buckets.

use std::collections::HashMap;
use std::pin::pin;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde::Serialize;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use utoipa::ToSchema;

use super::pgtime::PgTimestamp;
use super::{StorageEngine, Store, StoreError, q};
use crate::domain::Row;

const LATEST_FOR_SYSTEM: &str = include_str!("sql/latest_for_system.sql");
const READINGS_RAW: &str = include_str!("sql/readings_raw.sql");
const READINGS_BUCKETS_1M: &str = include_str!("sql/readings_buckets_1m.sql");
const READINGS_BUCKETS_RAW: &str = include_str!("sql/readings_buckets_raw.sql");
const COPY_READINGS: &str = include_str!("sql/copy_readings.sql");
const UPSERT_LATEST: &str = include_str!("sql/upsert_latest.sql");
const UPSERT_MINUTE: &str = include_str!("sql/upsert_minute.sql");
const RECORD_REFRESH: &str = include_str!("sql/record_refresh.sql");

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LatestReading {
    pub sensor_id: String,
    pub unit: String,
    pub component_id: Option<String>,
    pub time: DateTime<Utc>,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RawReading {
    pub sensor_id: String,
    pub time: DateTime<Utc>,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BucketReading {
    pub sensor_id: String,
    /// Start of the bucket.
    pub time: DateTime<Utc>,
    pub count: i64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// Which readings, in which range, after which (time, sensor) cursor.
#[derive(Debug, Clone)]
pub struct ReadingsQuery {
    pub system_id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub sensors: Option<Vec<String>>,
    pub after: (DateTime<Utc>, String),
    pub limit: i64,
}

impl Store {
    pub async fn latest_readings(&self, system_id: &str) -> Result<Vec<LatestReading>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(LATEST_FOR_SYSTEM).await.map_err(q("prepare latest readings"))?;
        let rows = client.query(&statement, &[&system_id]).await.map_err(q("read latest readings"))?;
        Ok(rows
            .iter()
            .map(|r| LatestReading { sensor_id: r.get(0), unit: r.get(1), component_id: r.get(2), time: r.get(3), value: r.get(4) })
            .collect())
    }

    pub async fn raw_readings(&self, query: &ReadingsQuery) -> Result<Vec<RawReading>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(READINGS_RAW).await.map_err(q("prepare readings"))?;
        let q_ = query;
        let rows = client
            .query(&statement, &[&q_.system_id, &q_.from, &q_.to, &q_.sensors, &q_.after.0, &q_.after.1, &q_.limit])
            .await
            .map_err(q("read readings"))?;
        Ok(rows.iter().map(|r| RawReading { sensor_id: r.get(0), time: r.get(1), value: r.get(2) }).collect())
    }

    /// Buckets of `bucket_seconds`; whole minutes come from the 1-minute aggregate. Other
    /// lengths are computed from raw readings, reading at most `max_scanned` of them: `None`
    /// when the range holds more (nothing is served from part of a range).
    pub async fn bucketed_readings(&self, query: &ReadingsQuery, bucket_seconds: i64, max_scanned: i64) -> Result<Option<Vec<BucketReading>>, StoreError> {
        let client = self.client().await?;
        let seconds = bucket_seconds as f64;
        let q_ = query;
        let bucket = |r: &tokio_postgres::Row| BucketReading { sensor_id: r.get(0), time: r.get(1), count: r.get(2), mean: r.get(3), min: r.get(4), max: r.get(5) };
        if bucket_seconds % 60 == 0 {
            let statement = client.prepare_cached(READINGS_BUCKETS_1M).await.map_err(q("prepare bucketed readings"))?;
            let rows = client
                .query(&statement, &[&q_.system_id, &q_.from, &q_.to, &q_.sensors, &q_.after.0, &q_.after.1, &q_.limit, &seconds])
                .await
                .map_err(q("read bucketed readings"))?;
            return Ok(Some(rows.iter().map(bucket).collect()));
        }
        let statement = client.prepare_cached(READINGS_BUCKETS_RAW).await.map_err(q("prepare bucketed readings"))?;
        let rows = client
            .query(&statement, &[&q_.system_id, &q_.from, &q_.to, &q_.sensors, &q_.after.0, &q_.after.1, &q_.limit, &seconds, &max_scanned])
            .await
            .map_err(q("read bucketed readings"))?;
        if rows.first().is_some_and(|r| r.get::<_, bool>(6)) {
            return Ok(None);
        }
        Ok(Some(rows.iter().filter(|r| r.get::<_, Option<String>>(0).is_some()).map(bucket).collect()))
    }
}

/// Binary COPY of accepted rows in the caller's transaction; returns how many were copied.
/// [`summarise`] keeps the tables derived from them.
pub(super) async fn write(tx: &Transaction<'_>, rows: &[&Row]) -> Result<u64, StoreError> {
    copy_rows(tx, rows).await
}

/// The last-value table and, without a continuous aggregate, the 1-minute aggregate (with one,
/// the hours to refresh) of rows just copied. The two statements are independent: polled
/// together they are sent together and cost the transaction one round trip instead of two.
pub(super) async fn summarise(tx: &Transaction<'_>, engine: StorageEngine, rows: &[&Row]) -> Result<(), StoreError> {
    let aggregate = async {
        if engine.keeps_aggregate() { upsert_minutes(tx, rows).await } else { record_refresh(tx, rows).await }
    };
    futures_util::future::try_join(upsert_latest(tx, rows), aggregate).await?;
    Ok(())
}

/// The hours this chunk wrote into, for the continuous aggregate's refresh (maintenance): one
/// insert per chunk, no key, so concurrent ingest transactions do not wait on each other.
async fn record_refresh(tx: &Transaction<'_>, rows: &[&Row]) -> Result<(), StoreError> {
    const HOUR_US: i64 = 3_600_000_000;
    let mut hours: Vec<i64> = rows.iter().map(|r| r.time_us.div_euclid(HOUR_US) * HOUR_US).collect();
    hours.sort_unstable();
    hours.dedup();
    let hours: Vec<DateTime<Utc>> = hours.into_iter().map(micros_to_time).collect();
    let statement = tx.prepare_cached(RECORD_REFRESH).await.map_err(q("prepare the refresh record"))?;
    tx.execute(&statement, &[&hours]).await.map_err(q("record the hours to refresh"))?;
    Ok(())
}

/// Binary COPY of rows into `readings`; also the physical-limit baseline of the load benchmark.
pub async fn copy_rows<R: std::borrow::Borrow<Row> + Sync>(tx: &tokio_postgres::Transaction<'_>, rows: &[R]) -> Result<u64, StoreError> {
    let sink = tx.copy_in(COPY_READINGS).await.map_err(q("start COPY"))?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &[Type::TIMESTAMPTZ, Type::INT4, Type::FLOAT8]));
    for row in rows {
        let row = row.borrow();
        let time = PgTimestamp(row.time_us);
        writer.as_mut().write(&[&time, &row.series_id, &row.value]).await.map_err(q("COPY readings"))?;
    }
    writer.as_mut().finish().await.map_err(q("finish COPY"))
}

async fn upsert_latest(tx: &Transaction<'_>, rows: &[&Row]) -> Result<(), StoreError> {
    let mut latest: HashMap<i32, (i64, f64)> = HashMap::new();
    for row in rows {
        let entry = latest.entry(row.series_id).or_insert((row.time_us, row.value));
        if row.time_us >= entry.0 {
            *entry = (row.time_us, row.value);
        }
    }
    let series: Vec<i32> = latest.keys().copied().collect();
    let times: Vec<DateTime<Utc>> = series.iter().map(|s| micros_to_time(latest[s].0)).collect();
    let values: Vec<f64> = series.iter().map(|s| latest[s].1).collect();
    let statement = tx.prepare_cached(UPSERT_LATEST).await.map_err(q("prepare latest upsert"))?;
    tx.execute(&statement, &[&series, &times, &values]).await.map_err(q("upsert latest readings"))?;
    Ok(())
}

#[derive(Clone, Copy)]
struct MinuteAggregate {
    n: i64,
    sum: f64,
    min: f64,
    max: f64,
}

async fn upsert_minutes(tx: &Transaction<'_>, rows: &[&Row]) -> Result<(), StoreError> {
    const MINUTE_US: i64 = 60_000_000;
    let mut buckets: HashMap<(i32, i64), MinuteAggregate> = HashMap::new();
    for row in rows {
        let bucket = row.time_us.div_euclid(MINUTE_US) * MINUTE_US;
        let agg = buckets
            .entry((row.series_id, bucket))
            .or_insert(MinuteAggregate { n: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY });
        agg.n += 1;
        // Validation bounds |value| to Sensor::MAX_MAGNITUDE (1e9), so n × 1e9 ≤ 9.2e27 never
        // overflows; saturating anyway keeps a wider value from becoming +inf, which the
        // database would then add to without complaint and serve as a mean forever.
        agg.sum = (agg.sum + row.value).clamp(-f64::MAX, f64::MAX);
        agg.min = agg.min.min(row.value);
        agg.max = agg.max.max(row.value);
    }
    // A stable order keeps concurrent upserts from deadlocking on the same buckets.
    let mut keys: Vec<(i32, i64)> = buckets.keys().copied().collect();
    keys.sort_unstable();
    let series: Vec<i32> = keys.iter().map(|k| k.0).collect();
    let starts: Vec<DateTime<Utc>> = keys.iter().map(|k| micros_to_time(k.1)).collect();
    let aggs: Vec<MinuteAggregate> = keys.iter().map(|k| buckets[k]).collect();
    let n: Vec<i64> = aggs.iter().map(|a| a.n).collect();
    let sum: Vec<f64> = aggs.iter().map(|a| a.sum).collect();
    let min: Vec<f64> = aggs.iter().map(|a| a.min).collect();
    let max: Vec<f64> = aggs.iter().map(|a| a.max).collect();
    let statement = tx.prepare_cached(UPSERT_MINUTE).await.map_err(q("prepare minute upsert"))?;
    tx.execute(&statement, &[&series, &starts, &n, &sum, &min, &max]).await.map_err(q("upsert the 1-minute aggregate"))?;
    Ok(())
}

fn micros_to_time(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::MIN_UTC)
}
