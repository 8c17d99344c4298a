//! Readings as the API serves them: last values, raw pages and time buckets.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Store, StoreError, q};

const LATEST_FOR_SYSTEM: &str = include_str!("sql/latest_for_system.sql");
const READINGS_RAW: &str = include_str!("sql/readings_raw.sql");
const READINGS_BUCKETS_1M: &str = include_str!("sql/readings_buckets_1m.sql");
const READINGS_BUCKETS_RAW: &str = include_str!("sql/readings_buckets_raw.sql");

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
