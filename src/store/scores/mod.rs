//! Scoring's tables: what the inference worker reads to score a window (its readings, its
//! system, the history the baseline compares with) and opening new revisions to rescore, here;
//! the scores it writes (`write.rs`) and the API reads back (`read.rs`).

mod read;
mod write;

pub use read::ScoresQuery;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::windows::{self, ReadyWindow};
use super::{outbox, q, Store, StoreError};
use crate::domain::{CloseReason, Topology};

const WINDOW_VALUES: &str = include_str!("../sql/window_values.sql");
const SYSTEMS_INFO: &str = include_str!("../sql/systems_info.sql");
const MINUTE_MEANS: &str = include_str!("../sql/minute_means.sql");
const WINDOWS_RESCORE: &str = include_str!("../sql/windows_rescore.sql");

/// A system as the scorers see it: whose it is and how it is built (the topology is None when
/// the stored one no longer reads as one).
#[derive(Debug, Clone)]
pub struct SystemInfo {
    pub owner_id: Uuid,
    pub topology_hash: String,
    pub topology: Option<Topology>,
}


impl Store {
    /// Readings of each window (system, start, end): sensor id → values in time order.
    pub async fn window_values(
        &self,
        windows: &[(String, DateTime<Utc>, DateTime<Utc>)],
    ) -> Result<Vec<HashMap<String, Vec<f64>>>, StoreError> {
        let mut out = vec![HashMap::new(); windows.len()];
        if windows.is_empty() {
            return Ok(out);
        }
        let systems: Vec<&str> = windows.iter().map(|w| w.0.as_str()).collect();
        let starts: Vec<DateTime<Utc>> = windows.iter().map(|w| w.1).collect();
        let ends: Vec<DateTime<Utc>> = windows.iter().map(|w| w.2).collect();
        let client = self.client().await?;
        let statement = client.prepare_cached(WINDOW_VALUES).await.map_err(q("prepare window values"))?;
        for row in client.query(&statement, &[&systems, &starts, &ends]).await.map_err(q("load window values"))? {
            let index: i32 = row.get(0);
            if let Some(slot) = out.get_mut(index as usize - 1) {
                slot.insert(row.get(1), row.get(2));
            }
        }
        Ok(out)
    }

    pub async fn systems_info(&self, systems: &[&str]) -> Result<HashMap<String, SystemInfo>, StoreError> {
        let client = self.client().await?;
        let rows = client.query(SYSTEMS_INFO, &[&systems]).await.map_err(q("load systems"))?;
        Ok(rows
            .iter()
            .map(|r| {
                let topology: serde_json::Value = r.get(3);
                let info = SystemInfo { owner_id: r.get(1), topology_hash: r.get(2), topology: serde_json::from_value(topology).ok() };
                (r.get(0), info)
            })
            .collect())
    }

    /// 1-minute means per sensor in the `minutes` before `before`.
    pub async fn minute_means(&self, system_id: &str, before: DateTime<Utc>, minutes: i64) -> Result<BTreeMap<String, Vec<f64>>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(MINUTE_MEANS).await.map_err(q("prepare history"))?;
        let minutes = minutes.clamp(1, i64::from(i32::MAX)) as i32;
        let rows = client.query(&statement, &[&system_id, &before, &minutes]).await.map_err(q("load history"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// New revisions of announced windows in [from, to), announced for re-scoring.
    pub async fn rescore(&self, from: DateTime<Utc>, to: DateTime<Utc>, system: Option<&str>) -> Result<Vec<ReadyWindow>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(q("begin rescore"))?;
        outbox::lock(&tx).await?;
        let rows = tx.query(WINDOWS_RESCORE, &[&from, &to, &system]).await.map_err(q("open new revisions"))?;
        let windows = windows::ready_rows(rows);
        let _spans = windows::announce(&tx, &windows, CloseReason::Rescore).await?;
        tx.commit().await.map_err(q("commit rescore"))?;
        Ok(windows)
    }
}
