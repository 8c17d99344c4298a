//! What the inference worker reads (window readings, equipment) and writes (scores).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::windows::{self, ReadyWindow};
use super::{outbox, q, Store, StoreError};
use crate::domain::{CloseReason, Topology};

const WINDOW_VALUES: &str = include_str!("sql/window_values.sql");
const SYSTEMS_INFO: &str = include_str!("sql/systems_info.sql");
const MINUTE_MEANS: &str = include_str!("sql/minute_means.sql");
const SCORES_UPSERT: &str = include_str!("sql/scores_upsert.sql");
const WINDOWS_RESCORE: &str = include_str!("sql/windows_rescore.sql");

#[derive(Debug, Clone)]
pub struct SystemInfo {
    pub owner_id: Uuid,
    pub topology_hash: String,
    pub topology: Option<Topology>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    pub system_id: String,
    pub component_id: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub revision: i32,
    pub model_version: String,
    pub score: f32,
    pub class: Option<String>,
    pub class_probs: serde_json::Value,
    pub features: serde_json::Value,
    pub computed_at: DateTime<Utc>,
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

    pub async fn upsert_scores(&self, rows: &[ScoreRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let col = |f: fn(&ScoreRow) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
        let systems = col(|r| &r.system_id);
        let components = col(|r| &r.component_id);
        let versions = col(|r| &r.model_version);
        let starts: Vec<DateTime<Utc>> = rows.iter().map(|r| r.window_start).collect();
        let ends: Vec<DateTime<Utc>> = rows.iter().map(|r| r.window_end).collect();
        let revisions: Vec<i32> = rows.iter().map(|r| r.revision).collect();
        let scores: Vec<f32> = rows.iter().map(|r| r.score).collect();
        let classes: Vec<Option<&str>> = rows.iter().map(|r| r.class.as_deref()).collect();
        let probs: Vec<&serde_json::Value> = rows.iter().map(|r| &r.class_probs).collect();
        let features: Vec<&serde_json::Value> = rows.iter().map(|r| &r.features).collect();
        let computed: Vec<DateTime<Utc>> = rows.iter().map(|r| r.computed_at).collect();
        let client = self.client().await?;
        let statement = client.prepare_cached(SCORES_UPSERT).await.map_err(q("prepare score upsert"))?;
        client
            .execute(&statement, &[&systems, &components, &starts, &ends, &revisions, &versions, &scores, &classes, &probs, &features, &computed])
            .await
            .map_err(q("upsert scores"))?;
        Ok(())
    }

    /// New revisions of announced windows in [from, to), announced for re-scoring.
    pub async fn rescore(&self, from: DateTime<Utc>, to: DateTime<Utc>, system: Option<&str>) -> Result<Vec<ReadyWindow>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(q("begin rescore"))?;
        outbox::lock(&tx).await?;
        let rows = tx.query(WINDOWS_RESCORE, &[&from, &to, &system]).await.map_err(q("open new revisions"))?;
        let windows = windows::ready_rows(rows);
        windows::announce(&tx, &windows, CloseReason::Rescore).await?;
        tx.commit().await.map_err(q("commit rescore"))?;
        Ok(windows)
    }
}
