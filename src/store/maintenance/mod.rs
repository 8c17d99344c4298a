//! The storage maintenance task: partitions ahead, expired data out, on a fixed interval; on
//! TimescaleDB its retention policies and the continuous aggregate's late refreshes.

mod partitions;
mod timescale;

pub use partitions::{PartitionChanges, PartitionPolicy};
pub use timescale::{TimescaleChanges, refresh_windows};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::instrument;

use super::{StorageEngine, Store, StoreError, migrate};
use crate::config::{DatabaseConfig, StorageConfig};
use crate::telemetry::Metrics;

const PRUNE: &str = include_str!("../sql/prune.sql");
const PRUNE_AGGREGATE: &str = include_str!("../sql/prune_aggregate.sql");

#[derive(Debug, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    pub partitions: PartitionChanges,
    pub timescale: TimescaleChanges,
    /// Rows removed from tables other than readings.
    pub pruned_rows: i64,
}

#[derive(Clone)]
pub struct Maintenance {
    database: DatabaseConfig,
    storage: StorageConfig,
    metrics: Metrics,
}

impl Maintenance {
    pub fn new(database: DatabaseConfig, storage: StorageConfig, metrics: Metrics) -> Self {
        Self { database, storage, metrics }
    }

    /// One pass. Uses a connection of its own: DETACH … CONCURRENTLY and
    /// refresh_continuous_aggregate cannot run in a transaction, and the pass changes session
    /// settings.
    #[instrument(skip_all, fields(now = %now))]
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<MaintenanceReport, StoreError> {
        let client = Store::dedicated(&self.database).await?;
        let mut report = MaintenanceReport::default();
        let readings_cutoff = now - chrono::Duration::days(i64::from(self.storage.retention_days));
        match migrate::storage_engine(&client).await? {
            None => {
                return Err(StoreError::Unavailable("the schema is not migrated yet: run `manifold migrate`".into()));
            }
            Some(StorageEngine::Native) => {
                report.partitions = partitions::maintain(&client, self.policy(), now).await?;
                client
                    .execute(PRUNE_AGGREGATE, &[&readings_cutoff])
                    .await
                    .map_err(|e| StoreError::query("prune the 1-minute aggregate", e))?;
            }
            Some(StorageEngine::Timescale) => {
                let days = self.storage.retention_days;
                for relation in ["readings", "readings_1m"] {
                    if timescale::ensure_retention(&client, relation, days).await? {
                        report.timescale.retention_set.push(relation.to_owned());
                    }
                }
                timescale::refresh_touched(&client, now, days, &mut report.timescale).await?;
            }
            Some(StorageEngine::TimescaleApache) => {
                report.timescale.chunks_dropped = timescale::drop_expired_chunks(&client, readings_cutoff).await?;
                client
                    .execute(PRUNE_AGGREGATE, &[&readings_cutoff])
                    .await
                    .map_err(|e| StoreError::query("prune the 1-minute aggregate", e))?;
            }
        }
        let aux_cutoff = now - chrono::Duration::days(i64::from(self.storage.aux_retention_days));
        report.pruned_rows = client
            .query_one(PRUNE, &[&aux_cutoff])
            .await
            .map_err(|e| StoreError::query("prune expired rows", e))?
            .get(0);
        self.count(&report);
        Ok(report)
    }

    /// Runs a pass now and then every interval until `shutdown` is cancelled. A failed pass is
    /// logged and retried at the next tick: maintenance must never take the process down.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.storage.maintenance_interval_seconds);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            match self.run_once(Utc::now()).await {
                Ok(report) => tracing::info!(
                    created = report.partitions.created.len(),
                    dropped = report.partitions.dropped.len(),
                    deferred = report.partitions.deferred.len(),
                    pruned_rows = report.pruned_rows,
                    refreshed = report.timescale.refreshed.len(),
                    chunks_dropped = report.timescale.chunks_dropped,
                    "storage maintenance done"
                ),
                Err(err) => {
                    self.metrics.maintenance.runs_total.with_label_values(&["error"]).inc();
                    tracing::warn!(error = %err, "storage maintenance failed; retrying at the next interval");
                }
            }
        }
    }

    pub fn policy(&self) -> PartitionPolicy {
        PartitionPolicy {
            retention_days: self.storage.retention_days,
            future_skew: self.storage.future_skew_hours,
            lock_timeout: self.storage.lock_timeout_ms,
        }
    }

    fn count(&self, report: &MaintenanceReport) {
        let m = &self.metrics.maintenance;
        m.runs_total.with_label_values(&["ok"]).inc();
        m.actions_total.with_label_values(&["partition_created"]).inc_by(report.partitions.created.len() as u64);
        m.actions_total.with_label_values(&["partition_dropped"]).inc_by(report.partitions.dropped.len() as u64);
        m.actions_total.with_label_values(&["partition_deferred"]).inc_by(report.partitions.deferred.len() as u64);
        m.actions_total.with_label_values(&["rows_pruned"]).inc_by(report.pruned_rows.max(0) as u64);
        let ts = &report.timescale;
        m.actions_total.with_label_values(&["retention_set"]).inc_by(ts.retention_set.len() as u64);
        m.actions_total.with_label_values(&["aggregate_refreshed"]).inc_by(ts.refreshed.len() as u64);
        m.actions_total.with_label_values(&["chunk_dropped"]).inc_by(ts.chunks_dropped.max(0) as u64);
    }
}
