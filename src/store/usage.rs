//! Usage per user and day: requests and readings, added in batches from the API's memory.

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Store, StoreError, q};

const USAGE_FLUSH: &str = include_str!("sql/usage_flush.sql");
const USAGE_READ: &str = include_str!("sql/usage_read.sql");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UsageDay {
    pub day: NaiveDate,
    pub requests: i64,
    pub readings: i64,
}

/// Counters to add: user, day, requests, readings.
pub type UsageDelta = (Uuid, NaiveDate, i64, i64);

impl Store {
    pub async fn add_usage(&self, deltas: &[UsageDelta]) -> Result<(), StoreError> {
        if deltas.is_empty() {
            return Ok(());
        }
        let users: Vec<Uuid> = deltas.iter().map(|d| d.0).collect();
        let days: Vec<NaiveDate> = deltas.iter().map(|d| d.1).collect();
        let requests: Vec<i64> = deltas.iter().map(|d| d.2).collect();
        let readings: Vec<i64> = deltas.iter().map(|d| d.3).collect();
        let client = self.client().await?;
        client.execute(USAGE_FLUSH, &[&users, &days, &requests, &readings]).await.map_err(q("flush usage"))?;
        Ok(())
    }

    pub async fn usage(&self, user_id: Uuid, from: NaiveDate, to: NaiveDate) -> Result<Vec<UsageDay>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(USAGE_READ).await.map_err(q("prepare usage"))?;
        let rows = client.query(&statement, &[&user_id, &from, &to]).await.map_err(q("read usage"))?;
        Ok(rows.iter().map(|r| UsageDay { day: r.get(0), requests: r.get(1), readings: r.get(2) }).collect())
    }
}
